"""Declarations of the Python rules (py_library, py_binary, py_test, py_runtime); no build
logic here."""

load(":py.bzl", "py_binary_impl", "py_library_impl", "py_test_impl")
load(":py_runtime.bzl", "py_runtime_impl")

# The toolchain type the runnable Python rules find their interpreter through.
_PY_TOOLCHAIN_TYPE = "@toolchains//python:toolchain_type"

_PY_SOURCES = [".py", ".py3"]

_SRCS_VERSIONS = ["PY2AND3", "PY2", "PY3", "PY2ONLY", "PY3ONLY"]

def _library_attrs():
    """Attributes shared by every Python rule."""
    return {
        "srcs": attr.label_list(
            allow_files = _PY_SOURCES,
            doc = "Python source files of this target.",
        ),
        "deps": attr.label_list(
            doc = "Other Python targets (usually `py_library`) whose code this one imports.",
        ),
        "data": attr.label_list(
            allow_files = True,
            doc = "Files read at run time; they appear in the runfiles of this target and of " +
                  "whatever depends on it.",
        ),
        "imports": attr.string_list(
            doc = "Directories, relative to the package, added to `sys.path` (via " +
                  "`PYTHONPATH`) for this target and its dependents.",
        ),
        "srcs_version": attr.string(
            default = "PY2AND3",
            values = _SRCS_VERSIONS,
            doc = "Which Python major versions the sources are written for; accepted for " +
                  "Bazel compatibility, neither checked nor used to pick an interpreter.",
        ),
    }

def _runnable_attrs(stamp):
    """Attributes of the Python rules that produce a program to run."""
    attrs = _library_attrs()
    attrs.update({
        "main": attr.label(
            allow_single_file = _PY_SOURCES,
            doc = "The entry point, one of `srcs`; if unset, the source named after the " +
                  "target (`<name>.py`).",
        ),
        "python_version": attr.string(
            default = "PY3",
            values = ["PY2", "PY3"],
            doc = "Which Python major version runs the program.",
        ),
        "legacy_create_init": attr.int(
            default = -1,
            values = [-1, 0, 1],
            doc = "Bazel creates empty `__init__.py` files in the runfiles tree when this is " +
                  "1 (or -1, by default); bp accepts the attribute but creates none, so " +
                  "packages without `__init__.py` import as namespace packages (Python 3).",
        ),
        "stamp": attr.int(
            default = stamp,
            values = [-1, 0, 1],
            doc = "Whether to embed build information: 1 always, 0 never, -1 only when " +
                  "built with `--stamp`. Accepted for Bazel compatibility; bp stamps nothing " +
                  "into Python programs yet.",
        ),
        "toolchains": attr.label_list(
            doc = "Targets that supply Make variables for expansion in `args` and `env`.",
        ),
    })
    return attrs

def _binary_attrs():
    """Attributes of `py_binary`: stamping follows `--stamp`."""
    attrs = _runnable_attrs(stamp = -1)
    attrs.update({
        "output_licenses": attr.string_list(
            doc = "Licenses that apply to the outputs when the binary is used as a tool.",
        ),
    })
    return attrs

py_library = rule(
    implementation = py_library_impl,
    doc = "Python modules and their data, for binaries, tests and other libraries to import. " +
          "Returns `PyInfo` (providers.bzl): its sources and import roots, transitively.",
    attrs = _library_attrs(),
)

py_binary = rule(
    implementation = py_binary_impl,
    executable = True,
    doc = "A Python program: its sources, the libraries it imports, and a launcher " +
          "(`<name>`, see launcher.bzl) that finds the runfiles tree and starts `main` with " +
          "the workspace root and every `imports` root on `PYTHONPATH`.",
    attrs = _binary_attrs(),
    toolchains = [_PY_TOOLCHAIN_TYPE],
)

py_test = rule(
    implementation = py_test_impl,
    test = True,
    doc = "A Python program run as a test by `bp test`; exit code zero means it passed.",
    attrs = _runnable_attrs(stamp = 0),
    toolchains = [_PY_TOOLCHAIN_TYPE],
)

py_runtime = rule(
    implementation = py_runtime_impl,
    doc = "A Python interpreter for `py_binary` and `py_test` to run with: either a command " +
          "on the machine (`interpreter_path`) or a file in the build (`interpreter`). " +
          "Register it with `toolchain()` under `@toolchains//python:toolchain_type`.",
    attrs = {
        "interpreter_path": attr.string(
            doc = "The interpreter as a command or absolute path on the machine that runs " +
                  "the program, e.g. `python3` or `/usr/bin/python3`. Set this or " +
                  "`interpreter`, not both.",
        ),
        "interpreter": attr.label(
            allow_single_file = True,
            doc = "The interpreter as a file in the build (a checked-in or downloaded " +
                  "Python). Set this or `interpreter_path`, not both.",
        ),
        "python_version": attr.string(
            default = "PY3",
            values = ["PY2", "PY3"],
            doc = "The Python major version of the interpreter; programs are matched to it " +
                  "by their own `python_version`.",
        ),
        "stub_shebang": attr.string(
            default = "#!/usr/bin/env python3",
            doc = "The first line of the launcher script that bp writes for each program.",
        ),
    },
)
