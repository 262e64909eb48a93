"""`@rules_cc//cc:cc_import.bzl` (rules_cc's file per rule) for BUILD files written for Bazel: the prelude's cc_import."""

load("@prelude//cc:rules.bzl", _cc_import = "cc_import")

cc_import = _cc_import
