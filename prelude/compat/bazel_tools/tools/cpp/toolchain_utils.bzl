"""`@bazel_tools//tools/cpp:toolchain_utils.bzl`: how rules find the C++ toolchain."""

load("@prelude//cc:providers.bzl", "cc_toolchain_info")

_TYPE = "@bazel_tools//tools/cpp:toolchain_type"

def find_cpp_toolchain(ctx, mandatory = True):
    """The C++ toolchain (cc_common.CcToolchainInfo): from the rule's `_cc_toolchain`
    attribute (`@bazel_tools//tools/cpp:current_cc_toolchain`), or the toolchain the rule
    asked for (`toolchains = use_cpp_toolchain()`)."""
    if hasattr(ctx.attr, "_cc_toolchain") and ctx.attr._cc_toolchain != None:
        return ctx.attr._cc_toolchain[cc_common.CcToolchainInfo]
    if _TYPE in ctx.toolchains:
        return cc_toolchain_info(ctx.toolchains[_TYPE])
    if mandatory:
        fail("find_cpp_toolchain: the rule has no '_cc_toolchain' attribute and asks for " +
             "no C++ toolchain; add toolchains = use_cpp_toolchain()")
    return None

def use_cpp_toolchain(mandatory = False):
    """The toolchain types a rule that uses find_cpp_toolchain declares."""
    return [_TYPE]
