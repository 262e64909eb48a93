"""A custom rule with label-list, label and string attributes."""

load(":common.bzl", "DEFAULT_MODE")

def _bundle_impl(ctx):
    return []

bundle = rule(
    implementation = _bundle_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = True),
        "deps": attr.label_list(),
        "main": attr.label(allow_single_file = True),
        "mode": attr.string(default = DEFAULT_MODE),
    },
)
