"""Analysis of `py_runtime` targets; the attributes and docs are declared in rules.bzl.

Knows how to describe one interpreter; not which programs use it (py.bzl does).
"""

def py_runtime_impl(ctx):
    """The interpreter as a `ToolchainInfo` for py_binary and py_test launchers.

    Fields: `interpreter_path` (a command or absolute path, or None), `interpreter` (a File
    in the build, or None), `python_version` ("PY2" or "PY3") and `stub_shebang` (the
    launcher's first line). Exactly one of `interpreter_path` and `interpreter` is set.
    """
    repo = "@" + ctx.label.workspace_name if ctx.label.workspace_name else ""
    where = "py_runtime `%s//%s:%s`" % (repo, ctx.label.package, ctx.label.name)
    path = ctx.attr.interpreter_path
    interpreter = ctx.file.interpreter
    if path and interpreter != None:
        fail(("%s sets both 'interpreter_path' and 'interpreter'; keep one: " +
              "the path of an installed Python, or a Python file in the build") %
             where)
    if not path and interpreter == None:
        fail(("%s needs 'interpreter_path' (e.g. \"python3\") or 'interpreter' " +
              "(a label)") % where)
    runfiles = ctx.runfiles(files = [interpreter] if interpreter != None else [])
    return [
        DefaultInfo(files = depset([interpreter] if interpreter != None else []),
                    runfiles = runfiles),
        ToolchainInfo(
            interpreter_path = path or None,
            interpreter = interpreter,
            python_version = ctx.attr.python_version,
            stub_shebang = ctx.attr.stub_shebang,
        ),
    ]
