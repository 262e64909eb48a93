"""Analysis of `sh_toolchain` targets; the attributes and docs are declared in rules.bzl."""

def sh_toolchain_impl(ctx):
    """The shell as a `ToolchainInfo(path = ...)` for sh_binary and sh_test."""
    return [ToolchainInfo(path = ctx.attr.path)]
