"""Analysis of `test_suite` targets; the attributes are declared in rules.bzl."""

def test_suite_impl(ctx):
    """Returns no providers, deliberately: a suite builds nothing of its own.

    The test runner expands a suite into its tests (the listed `tests`, or the package's
    test rules whose tags match) before building, and runs those; the suite's dependency
    edges only make sure its tests are loaded and analyzed.
    """
    return []
