"""`@rules_python//python:py_test.bzl` (rules_python's file per rule) for BUILD files written for Bazel: the prelude's py_test."""

load("@prelude//python:rules.bzl", _py_test = "py_test")

py_test = _py_test
