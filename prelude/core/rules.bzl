"""Declarations of the language-free rules (filegroup, alias, test_suite); no build logic here."""

load("<builtins>", "bp_label_setting")
load(":alias.bzl", "alias_impl", "label_setting_impl")
load(":filegroup.bzl", "filegroup_impl")
load(":test_suite.bzl", "test_suite_impl")

filegroup = rule(
    implementation = filegroup_impl,
    doc = "Gives a single name to a set of files, so other targets can depend on them as one.",
    attrs = {
        "srcs": attr.label_list(
            allow_files = True,
            doc = "Files and targets whose default outputs make up the group.",
        ),
        "data": attr.label_list(
            allow_files = True,
            doc = "Files needed at run time by whatever depends on the group; added to its " +
                  "runfiles, not to its outputs.",
        ),
        "output_group": attr.string(
            doc = "If set, take this named output group from each target in `srcs` instead " +
                  "of its default outputs.",
        ),
    },
)

alias = rule(
    implementation = alias_impl,
    doc = "A second name for another target; depending on the alias is the same as " +
          "depending on the target it names.",
    attrs = {
        "actual": attr.label(
            mandatory = True,
            allow_files = True,
            doc = "The target (or file) this name stands for.",
        ),
    },
)

label_flag = rule(
    implementation = label_setting_impl,
    build_setting = bp_label_setting(flag = True),
    doc = "A build setting whose value is a target, which it stands for: depending on " +
          "it is depending on that target. `--//pkg:flag=//other:target` or a transition " +
          "sets it; otherwise it is `build_setting_default`.",
)

label_setting = rule(
    implementation = label_setting_impl,
    build_setting = bp_label_setting(flag = False),
    doc = "Like label_flag, but only transitions may set it, not the command line.",
)

test_suite = rule(
    implementation = test_suite_impl,
    doc = "A named set of tests, so they can be run together with one label.",
    attrs = {
        "tests": attr.label_list(
            configurable = False,   # as in Bazel: suites are expanded unconfigured
            doc = "Tests and other suites to include. If empty, the suite holds every test " +
                  "rule of its package whose tags match the suite's `tags` (manual tests " +
                  "excluded).",
        ),
        "testonly": attr.bool(
            default = True,
            doc = "A suite only groups tests, so it is testonly unless set otherwise.",
        ),
    },
)
