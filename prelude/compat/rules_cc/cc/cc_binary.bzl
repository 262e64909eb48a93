"""`@rules_cc//cc:cc_binary.bzl` (rules_cc's file per rule) for BUILD files written for Bazel: the prelude's cc_binary."""

load("@prelude//cc:rules.bzl", _cc_binary = "cc_binary")

cc_binary = _cc_binary
