"""Analysis of `alias`, `label_flag` and `label_setting` targets; the attributes are
declared in rules.bzl."""

load("<builtins>", "bp_target_providers")

def alias_impl(ctx):
    """Forwards every provider of `actual`."""
    return bp_target_providers(ctx.attr.actual).values()

def label_setting_impl(ctx):
    """Forwards every provider of the target that the setting's value names (the
    configuration's, or `build_setting_default`), as Bazel's label_flag does."""
    return bp_target_providers(ctx.attr.build_setting_default).values()
