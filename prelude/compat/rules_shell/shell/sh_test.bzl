"""`@rules_shell//shell:sh_test.bzl` for BUILD files written for Bazel: the prelude's sh_test."""

load("@prelude//sh:rules.bzl", _sh_test = "sh_test")

sh_test = _sh_test
