"""The Starlark bridge: evaluating BUILD and .bzl files with starlark-pyo3."""
