"""Analysis of `cc_binary` targets; the attributes and docs are declared in rules.bzl."""

def cc_binary_impl(ctx):
    """Declared now; implemented with analysis."""
    return []
