"""`@rules_shell//shell:sh_library.bzl` for BUILD files written for Bazel: the prelude's sh_library."""

load("@prelude//sh:rules.bzl", _sh_library = "sh_library")

sh_library = _sh_library
