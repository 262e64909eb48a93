"""Analysis of the Python rules' targets; the attributes and docs are declared in rules.bzl."""

def py_library_impl(ctx):
    """Declared now; implemented with analysis."""
    return []

def py_binary_impl(ctx):
    """Declared now; implemented with analysis."""
    return []

def py_test_impl(ctx):
    """Declared now; implemented with analysis."""
    return []
