"""Analysis of `cc_toolchain` targets; the attributes and docs are declared in rules.bzl."""

def cc_toolchain_impl(ctx):
    """Declared now; implemented with analysis."""
    return []
