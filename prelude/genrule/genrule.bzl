"""Analysis of `genrule` targets; the attributes and docs are declared in rules.bzl."""

def genrule_impl(ctx):
    """Declared now; implemented with analysis."""
    return []
