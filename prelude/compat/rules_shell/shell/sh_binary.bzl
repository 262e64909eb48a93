"""`@rules_shell//shell:sh_binary.bzl` for BUILD files written for Bazel: the prelude's sh_binary."""

load("@prelude//sh:rules.bzl", _sh_binary = "sh_binary")

sh_binary = _sh_binary
