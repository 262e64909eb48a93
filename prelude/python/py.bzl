"""Analysis of the Python rules' targets; the attributes and docs are declared in rules.bzl.

A library hands on its sources and import roots (`PyInfo`) and its runfiles; a binary or
test also writes a launcher (launcher.bzl) that runs its main file with the interpreter of
the Python toolchain. Nothing is compiled: Python sources are used as they are.
"""

load(":launcher.bzl", "launcher_content", "runfiles_path")
load(":providers.bzl", "PyInfo")

_PY_TOOLCHAIN_TYPE = "@toolchains//python:toolchain_type"

def py_library_impl(ctx):
    """Sources for binaries, tests and other libraries: files, runfiles and `PyInfo`."""
    return [
        DefaultInfo(files = depset(ctx.files.srcs), runfiles = _runfiles(ctx, [])),
        _py_info(ctx),
    ]

def py_binary_impl(ctx):
    """A program: a launcher for `main`, with its sources and data in the runfiles."""
    return _executable(ctx, "py_binary")

def py_test_impl(ctx):
    """A test: like py_binary; `bp test` runs it."""
    return _executable(ctx, "py_test")

# ---- shared -----------------------------------------------------------------------------

def _label_text(label):
    repo = "@" + label.workspace_name if label.workspace_name else ""
    return "%s//%s:%s" % (repo, label.package, label.name)

def _quoted(label):
    """The label as error messages show it: in backticks."""
    return "`%s`" % _label_text(label)

def _repo_dir(ctx):
    """The directory of this target's workspace below the runfiles root."""
    return ctx.label.workspace_name or ctx.workspace_name

def _runfiles(ctx, extra):
    """`extra`, `srcs` and `data`, plus the runfiles of `deps` and `data`."""
    runfiles = ctx.runfiles(files = extra + ctx.files.srcs + ctx.files.data)
    return runfiles.merge_all([d[DefaultInfo].runfiles for d in ctx.attr.deps + ctx.attr.data])

def _py_info(ctx):
    deps = [d[PyInfo] for d in ctx.attr.deps if PyInfo in d]
    return PyInfo(
        transitive_sources = depset(ctx.files.srcs,
                                    transitive = [d.transitive_sources for d in deps]),
        imports = depset([_import_root(ctx, i) for i in ctx.attr.imports],
                         transitive = [d.imports for d in deps]),
    )

def _import_root(ctx, directory):
    """`directory` (relative to the package) as a path below the runfiles root."""
    if directory.startswith("/"):
        fail("%s: imports entry '%s' is absolute; give it relative to the package" %
             (_quoted(ctx.label), directory))
    base = _repo_dir(ctx)
    parts = [base] + ([ctx.label.package] if ctx.label.package else []) + [directory]
    normal = []
    for part in "/".join(parts).split("/"):
        if part == "..":
            if len(normal) <= 1:
                fail(("%s: imports entry '%s' leaves the workspace; import roots must be " +
                      "inside it") % (_quoted(ctx.label), directory))
            normal.pop()
        elif part and part != ".":
            normal.append(part)
    return "/".join(normal)

# ---- binaries and tests -----------------------------------------------------------------

def _executable(ctx, kind):
    toolchain = _toolchain(ctx, kind)
    main = _main_file(ctx, kind)
    info = _py_info(ctx)
    workspace = ctx.workspace_name  # the main workspace's directory in the runfiles
    interpreter = toolchain.interpreter
    launcher = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.write(
        output = launcher,
        content = launcher_content(
            label = _label_text(ctx.label),
            workspace_name = workspace,
            shebang = toolchain.stub_shebang,
            main = runfiles_path(workspace, main),
            imports = info.imports.to_list(),
            interpreter = (runfiles_path(workspace, interpreter) if interpreter != None
                           else toolchain.interpreter_path),
            interpreter_in_runfiles = interpreter != None,
        ),
        is_executable = True,
    )
    runfiles = ctx.runfiles(
        files = [launcher] + ([interpreter] if interpreter != None else []),
        transitive_files = info.transitive_sources,
    ).merge(_runfiles(ctx, []))
    return [
        DefaultInfo(files = depset([launcher]), executable = launcher, runfiles = runfiles),
        info,
    ]

def _toolchain(ctx, kind):
    toolchain = ctx.toolchains[_PY_TOOLCHAIN_TYPE]
    if type(toolchain) != "struct" or not hasattr(toolchain, "stub_shebang"):
        fail(("%s %s: the toolchain registered for `%s` is not a py_runtime (it returns " +
              "no ToolchainInfo with an interpreter)") %
             (kind, _quoted(ctx.label), _PY_TOOLCHAIN_TYPE))
    if toolchain.python_version != ctx.attr.python_version:
        fail(("%s %s has python_version = \"%s\", but the Python toolchain runs %s; " +
              "register a py_runtime with python_version = \"%s\", or change the " +
              "target's python_version") %
             (kind, _quoted(ctx.label), ctx.attr.python_version,
              toolchain.python_version, ctx.attr.python_version))
    return toolchain

def _main_file(ctx, kind):
    """The `main` file, which must be one of `srcs`; else the source named `<name>.py`."""
    srcs = ctx.files.srcs
    listed = ", ".join([f.short_path for f in srcs]) or "none"
    if ctx.file.main != None:
        main = ctx.file.main
        if main.path not in [f.path for f in srcs]:
            fail("%s %s: main '%s' is not one of its srcs (%s); add it to srcs" %
                 (kind, _quoted(ctx.label), main.short_path, listed))
        return main
    wanted = ctx.label.name + ".py"
    found = [f for f in srcs if ("/" + f.short_path).endswith("/" + wanted)]
    if len(found) != 1:
        problem = "none" if not found else "more than one"
        fail(("%s %s has no 'main' and %s of its srcs is named '%s' (srcs: %s); set " +
              "'main' to the file to run") %
             (kind, _quoted(ctx.label), problem, wanted, listed))
    return found[0]
