"""The provider C and C++ libraries hand to what depends on them; no build logic here.

Users load it as `load("@prelude//cc:providers.bzl", "CcInfo")` to write rules that
produce or consume C++ libraries.
"""

CcInfo = provider(
    doc = "What compiling against and linking with a C or C++ library needs.",
    fields = {
        "headers": "depset of Files: every header the library's dependents may reach " +
                   "through an #include (public, private and textual headers, of the " +
                   "library and of its dependencies); compile actions take them as inputs.",
        "include_dirs": "depset of strings: directories for `-I`, each in its source " +
                        "form and its generated-file form (under the bin directory).",
        "defines": "depset of strings: `NAME` or `NAME=value` macros for `-D`, the " +
                   "library's own `defines` and its dependencies'.",
        "libraries": "depset of Files in link order, dependents before dependencies " +
                     "(`order = \"topological\"`): static archives (`.a`, or `.lo` for " +
                     "`alwayslink` ones, linked whole) and prebuilt libraries.",
        "linkopts": "depset of tuples in link order (`order = \"topological\"`): each " +
                    "library's linker flags, kept together so that repeated pairs such " +
                    "as `-framework X` survive deduplication.",
        "uses_cxx": "True when C++ code is linked in with the library (its own sources " +
                    "or a dependency's): binaries then link with the toolchain's `cxx`, " +
                    "which brings in the C++ runtime.",
    },
)
