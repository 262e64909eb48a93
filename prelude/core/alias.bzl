"""Analysis of `alias` targets; the attributes are declared in rules.bzl."""

load("<builtins>", "bp_target_providers")

def alias_impl(ctx):
    """Forwards every provider of `actual`."""
    return bp_target_providers(ctx.attr.actual).values()
