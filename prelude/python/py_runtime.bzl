"""Analysis of `py_runtime` targets; the attributes and docs are declared in rules.bzl."""

def py_runtime_impl(ctx):
    """Declared now; implemented with analysis."""
    return []
