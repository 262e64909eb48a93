"""Declarations of the shell rules (sh_binary, sh_library, sh_test, sh_toolchain); no build
logic here."""

load(":sh.bzl", "sh_binary_impl", "sh_library_impl", "sh_test_impl")
load(":sh_toolchain.bzl", "sh_toolchain_impl")

# The toolchain type the runnable shell rules find their shell through.
_SH_TOOLCHAIN_TYPE = "@toolchains//sh:toolchain_type"

def _runnable_attrs():
    """Attributes shared by the shell rules that produce something to run."""
    return {
        "srcs": attr.label_list(
            mandatory = True,
            allow_files = True,
            doc = "The one script to run; it must be executable.",
        ),
        "deps": attr.label_list(
            doc = "`sh_library` targets whose files the script needs at run time.",
        ),
        "data": attr.label_list(
            allow_files = True,
            doc = "Files the script reads at run time; they appear in its runfiles.",
        ),
        "toolchains": attr.label_list(
            doc = "Targets that supply Make variables for expansion in `args` and `env`.",
        ),
    }

def _binary_attrs():
    """Attributes of `sh_binary`: those of a runnable script, plus its output licenses."""
    attrs = _runnable_attrs()
    attrs.update({
        "output_licenses": attr.string_list(
            doc = "Licenses that apply to the outputs when the binary is used as a tool.",
        ),
    })
    return attrs

sh_binary = rule(
    implementation = sh_binary_impl,
    executable = True,
    doc = "A shell script that can be run with `bp run` or used as a tool by other rules.",
    attrs = _binary_attrs(),
    toolchains = [_SH_TOOLCHAIN_TYPE],
)

sh_library = rule(
    implementation = sh_library_impl,
    doc = "Groups shell scripts and their data so that binaries and tests can depend on them.",
    attrs = {
        "srcs": attr.label_list(
            allow_files = True,
            doc = "Scripts that belong to the library.",
        ),
        "deps": attr.label_list(
            doc = "Other `sh_library` targets this one uses.",
        ),
        "data": attr.label_list(
            allow_files = True,
            doc = "Files the scripts read at run time; they appear in the runfiles of " +
                  "anything that depends on the library.",
        ),
    },
)

sh_test = rule(
    implementation = sh_test_impl,
    test = True,
    doc = "A shell script run as a test by `bp test`; exit code zero means it passed.",
    attrs = _runnable_attrs(),
    toolchains = [_SH_TOOLCHAIN_TYPE],
)

sh_toolchain = rule(
    implementation = sh_toolchain_impl,
    doc = "The shell that runs `sh_binary` and `sh_test` scripts on one kind of platform. " +
          "Register it with `toolchain()` under `@toolchains//sh:toolchain_type`.",
    attrs = {
        "path": attr.string(
            default = "/bin/sh",
            doc = "Absolute path (or command) of a POSIX shell on the machine that runs the " +
                  "scripts.",
        ),
    },
)
