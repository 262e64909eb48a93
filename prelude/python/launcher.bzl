"""The launcher script py_binary and py_test write for each program; knows nothing of rules.

`launcher_content` fills in the template below: a small Python program (run by the
toolchain's `stub_shebang`) that finds the runfiles tree, puts the import roots on
`PYTHONPATH` and execs the interpreter on the main file. It is written for Python 2.7 and
3 alike, since the shebang may name either.

The runfiles tree it expects is Bazel's: the exec layout, one directory per workspace,
next to the launcher:

    bp-out/<config>/bin/<pkg>/<name>                            the launcher
    bp-out/<config>/bin/<pkg>/<name>.runfiles/                  the runfiles root
        <workspace name>/<pkg>/<file>.py                        files of the main workspace
        <repo>/<pkg>/<file>                                     files of repository @<repo>

A File's place under the runfiles root is `runfiles_path(workspace_name, file)`: its
`short_path` below `<workspace name>/`, or `../<repo>/...` made `<repo>/...`.
"""

_TEMPLATE = r'''%{shebang}
# Launcher of %{label}, written by bp (prelude/python/launcher.bzl).
# It finds the runfiles tree of the program, puts the import roots on PYTHONPATH and runs
# the main file with the interpreter of the Python toolchain. Paths below are relative to
# the runfiles root, `<this file>.runfiles`, laid out as the exec root with one directory
# per workspace: `%{workspace}/<pkg>/<file>.py`, `<repo>/<pkg>/<file>` for @<repo>.

import os
import sys

LABEL = %{label_literal}
WORKSPACE = %{workspace_literal}  # the main workspace, the first import root
MAIN = %{main}
IMPORTS = %{imports}  # more import roots, from the `imports` attributes
INTERPRETER = %{interpreter}  # a command or an absolute path ...
INTERPRETER_IN_RUNFILES = %{interpreter_in_runfiles}  # ... or, if True, a runfiles path


def holds_main(directory):
    """Is `directory` our runfiles root, i.e. does it hold our main file?"""
    return bool(directory) and os.path.isfile(os.path.join(directory, MAIN))


def find_runfiles():
    # 1. What whoever runs us says (`bp test` sets TEST_SRCDIR, a parent launcher
    #    RUNFILES_DIR), if it holds our main file: a parent's tree holds ours when we are
    #    one of its data dependencies.
    for name in ("RUNFILES_DIR", "TEST_SRCDIR"):
        if holds_main(os.environ.get(name)):
            return os.environ[name]
    # 2. Beside the launcher (`<name>.runfiles`), or around it when the launcher is itself
    #    inside a runfiles tree; then the same for each symlink the launcher path is.
    path = os.path.abspath(sys.argv[0])
    for _ in range(40):
        if holds_main(path + ".runfiles"):
            return path + ".runfiles"
        marker = ".runfiles" + os.sep
        start = path.find(marker)
        while start >= 0:
            candidate = path[:start + len(".runfiles")]
            if holds_main(candidate):
                return candidate
            start = path.find(marker, start + 1)
        if not os.path.islink(path):
            break
        path = os.path.abspath(os.path.join(os.path.dirname(path), os.readlink(path)))
    sys.stderr.write(
        "%s: cannot find the runfiles tree (a directory holding %s) next to %s;\n"
        "build the target with bp, or set RUNFILES_DIR to its runfiles directory\n"
        % (LABEL, MAIN, sys.argv[0]))
    sys.exit(2)


def main():
    runfiles = find_runfiles()
    roots = [os.path.join(runfiles, WORKSPACE)]
    roots += [os.path.join(runfiles, root) for root in IMPORTS]
    inherited = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(roots + ([inherited] if inherited else []))
    os.environ["RUNFILES_DIR"] = runfiles  # for the programs this one starts
    interpreter = INTERPRETER
    if INTERPRETER_IN_RUNFILES:
        interpreter = os.path.join(runfiles, INTERPRETER)
    # -B: the runfiles tree is a build output; do not write __pycache__ into it.
    argv = [interpreter, "-B", os.path.join(runfiles, MAIN)] + sys.argv[1:]
    try:
        if os.sep in interpreter:
            os.execv(interpreter, argv)
        else:
            os.execvp(interpreter, argv)
    except OSError as error:
        sys.stderr.write("%s: cannot run the Python interpreter %s: %s\n"
                         % (LABEL, interpreter, error.strerror))
        sys.exit(2)


if __name__ == "__main__":
    main()
'''

def runfiles_path(workspace_name, file):
    """Where `file` sits below the runfiles root (see the module docstring)."""
    if file.short_path.startswith("../"):
        return file.short_path[len("../"):]
    return workspace_name + "/" + file.short_path

def launcher_content(label, workspace_name, shebang, main, imports, interpreter,
                     interpreter_in_runfiles):
    """The launcher's text. `label` is for messages; `main`, `imports` (a list) and, if
    `interpreter_in_runfiles`, `interpreter` are paths below the runfiles root."""
    substitutions = {
        "%{shebang}": shebang,
        "%{label}": label,
        "%{label_literal}": repr(label),
        "%{workspace_literal}": repr(workspace_name),
        "%{workspace}": workspace_name,
        "%{main}": repr(main),
        "%{imports}": repr(imports),
        "%{interpreter_in_runfiles}": repr(interpreter_in_runfiles),
        "%{interpreter}": repr(interpreter),
    }
    return _substitute(_TEMPLATE, substitutions)

def _substitute(template, substitutions):
    """`template` with each `%{key}` replaced in one pass: a value (a label may hold
    `%{main}`) is never substituted again."""
    pieces = template.split("%{")
    out = [pieces[0]]
    for piece in pieces[1:]:
        name, closed, rest = piece.partition("}")
        value = substitutions.get("%{" + name + "}") if closed else None
        out.append(value + rest if value != None else "%{" + piece)
    return "".join(out)
