"""The provider Python targets hand to the Python targets that depend on them; no rule here."""

PyInfo = provider(
    doc = "The Python code of a target and of everything it imports.",
    fields = {
        "transitive_sources": "depset of Files: the .py sources of the target and of its " +
                              "transitive `deps`.",
        "imports": "depset of strings: import roots (from `imports` attributes), relative " +
                   "to the runfiles root, e.g. `my_ws/third_party/six`; launchers put each " +
                   "on `PYTHONPATH` after the workspace root.",
    },
)
