"""bp: a Bazel-like build tool for monorepos (package `buildpy`)."""

__version__ = "0.1.0"
