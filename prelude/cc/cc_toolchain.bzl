"""Analysis of `cc_toolchain` targets: the tool commands and flags as providers; the
attributes and docs are declared in rules.bzl. Runs no action: tools are commands."""

load(":providers.bzl", "cc_toolchain_info")

def current_cc_toolchain_impl(ctx):
    """Bazel's `@bazel_tools//tools/cpp:current_cc_toolchain`: the resolved C++ toolchain
    as cc_common.CcToolchainInfo, for rules' `_cc_toolchain` attributes."""
    toolchain = ctx.toolchains["@toolchains//cc:toolchain_type"]
    return [cc_toolchain_info(toolchain), toolchain]

def cc_toolchain_impl(ctx):
    """`ToolchainInfo` for the C++ rules, and `$(CC)`, `$(CXX)`, `$(AR)` for genrules."""
    attr = ctx.attr
    for name in ("cc", "cxx", "ar"):
        if not getattr(attr, name):
            fail("'%s' must name a command" % name)
    return [
        ToolchainInfo(
            cc = attr.cc,
            cxx = attr.cxx,
            ar = attr.ar,
            ld = attr.ld,
            strip = attr.strip,
            compile_flags = list(attr.compile_flags),
            link_flags = list(attr.link_flags),
            cpu = attr.cpu,
            os = attr.os,
        ),
        TemplateVariableInfo(variables = {"CC": attr.cc, "CXX": attr.cxx, "AR": attr.ar}),
    ]
