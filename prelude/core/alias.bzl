"""Analysis of `alias` targets; the attributes are declared in rules.bzl."""

def alias_impl(ctx):
    """Forwards every provider of `actual`."""
    actual = ctx.attr.actual
    return [actual[key] for key in actual if type(key) == "function"]
