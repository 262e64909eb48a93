"""Analysis of `sh_toolchain` targets; the attributes and docs are declared in rules.bzl."""

def sh_toolchain_impl(ctx):
    """Declared now; implemented with analysis."""
    return []
