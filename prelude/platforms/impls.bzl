"""Analysis of the configuration and platform rules; attributes and docs are in rules.bzl."""

def config_setting_impl(ctx):
    """Declared now; implemented with analysis."""
    return []

def constraint_setting_impl(ctx):
    """Declared now; implemented with analysis."""
    return []

def constraint_value_impl(ctx):
    """Declared now; implemented with analysis."""
    return []

def platform_impl(ctx):
    """Declared now; implemented with analysis."""
    return []

def toolchain_type_impl(ctx):
    """Declared now; implemented with analysis."""
    return []

def toolchain_impl(ctx):
    """Declared now; implemented with analysis."""
    return []
