"""`@rules_python//python:defs.bzl` for BUILD files written for Bazel: the prelude's Python rules."""

load(
    "@prelude//python:rules.bzl",
    _py_binary = "py_binary",
    _py_library = "py_library",
    _py_test = "py_test",
)

py_binary = _py_binary
py_library = _py_library
py_test = _py_test
