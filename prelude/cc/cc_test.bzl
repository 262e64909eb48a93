"""Analysis of `cc_test` targets: built like `cc_binary`, run by `bp test`; the
attributes and docs are declared in rules.bzl."""

load(":cc_binary.bzl", "cc_executable")

def cc_test_impl(ctx):
    """A test program: see cc_executable; exit code zero means it passed."""
    return cc_executable(ctx)
