"""Analysis of `cc_library` targets; the attributes and docs are declared in rules.bzl."""

def cc_library_impl(ctx):
    """Declared now; implemented with analysis."""
    return []
