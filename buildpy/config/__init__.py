"""Configuration: platforms, select() resolution, toolchains, the configured graph."""
