"""`@rules_cc//cc:defs.bzl` for BUILD files written for Bazel: the prelude's C++ rules."""

load(
    "@prelude//cc:rules.bzl",
    _cc_binary = "cc_binary",
    _cc_import = "cc_import",
    _cc_library = "cc_library",
    _cc_test = "cc_test",
)

cc_binary = _cc_binary
cc_import = _cc_import
cc_library = _cc_library
cc_test = _cc_test
