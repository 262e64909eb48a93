"""Analysis of `alias` targets; the attributes are declared in rules.bzl."""

def alias_impl(ctx):
    """Declared now; implemented with analysis."""
    return []
