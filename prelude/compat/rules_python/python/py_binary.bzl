"""`@rules_python//python:py_binary.bzl` (rules_python's file per rule) for BUILD files written for Bazel: the prelude's py_binary."""

load("@prelude//python:rules.bzl", _py_binary = "py_binary")

py_binary = _py_binary
