"""`@rules_python//python:py_library.bzl` (rules_python's file per rule) for BUILD files written for Bazel: the prelude's py_library."""

load("@prelude//python:rules.bzl", _py_library = "py_library")

py_library = _py_library
