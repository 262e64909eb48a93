"""`@rules_cc//cc:cc_test.bzl` (rules_cc's file per rule) for BUILD files written for Bazel: the prelude's cc_test."""

load("@prelude//cc:rules.bzl", _cc_test = "cc_test")

cc_test = _cc_test
