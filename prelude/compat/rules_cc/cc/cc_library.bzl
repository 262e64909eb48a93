"""`@rules_cc//cc:cc_library.bzl` (rules_cc's file per rule) for BUILD files written for Bazel: the prelude's cc_library."""

load("@prelude//cc:rules.bzl", _cc_library = "cc_library")

cc_library = _cc_library
