"""Analysis of `cc_test` targets; the attributes and docs are declared in rules.bzl."""

def cc_test_impl(ctx):
    """Declared now; implemented with analysis."""
    return []
