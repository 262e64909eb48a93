"""Analysis of the configuration and platform rules; attributes and docs are in rules.bzl."""

def config_setting_impl(ctx):
    """Declared now; implemented with analysis."""
    return []

def constraint_setting_impl(ctx):
    """Configuration reads constraint settings from the target graph."""
    return []

def constraint_value_impl(ctx):
    """Its ConstraintValueInfo, for ctx.target_platform_has_constraint()."""
    return [platform_common.ConstraintValueInfo(label = ctx.label)]

def platform_impl(ctx):
    """Its PlatformInfo (configuration reads platforms from the target graph)."""
    return [platform_common.PlatformInfo(label = ctx.label)]

def toolchain_type_impl(ctx):
    """Declared now; implemented with analysis."""
    return []

def toolchain_impl(ctx):
    """Declared now; implemented with analysis."""
    return []
