"""The Python rules of the prelude (prelude/python/): analysis results, the launcher they
write, and their errors. Analysis runs in-process through the Python API; the launcher's
code runs in-process too, with `os.execv`/`os.execvp` replaced by fakes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from buildpy.analysis.analyzer import AnalysisResult, Analyzer
from buildpy.config.configuration import BuildOptions
from buildpy.config.configured import ConfiguredGraph
from buildpy.core.errors import BpError
from buildpy.core.label import parse_label
from buildpy.loading.graph import GraphLoader
from buildpy.session import open_session

from conftest import REPO_ROOT

MONOREPO = REPO_ROOT / "examples" / "monorepo"


def analyze(root: Path, *labels: str) -> tuple[AnalysisResult, list]:
    """Analyzes `labels` in the workspace at `root`, as `bp aquery` does."""
    session = open_session(str(root))
    graph = GraphLoader(session.loader)
    errors = graph.add([parse_label(label) for label in labels])
    if errors:
        raise errors[0]
    settings = session.loader.workspace_settings()
    configured = ConfiguredGraph(graph, BuildOptions(), settings)
    keys = [configured.key(parse_label(label), configured.top) for label in labels]
    return Analyzer(configured, settings.name).analyze(keys), keys


def analysis_error(root: Path, label: str) -> list[str]:
    with pytest.raises(BpError) as info:
        analyze(root, label)
    return info.value.render().splitlines()


def launcher_of(result: AnalysisResult, key) -> str:
    """The content of the launcher the target's only action writes."""
    actions = [a for a in result.actions.actions if a.owner == str(key)]
    assert [(a.mnemonic, a.kind.value) for a in actions] == [("FileWrite", "write")]
    target = result.targets[key]
    assert actions[0].outputs == (target.executable,)
    assert actions[0].is_executable
    return actions[0].content


def load_launcher(content: str) -> dict:
    """The launcher's functions and constants, without running its main()."""
    namespace = {"__name__": "bp_launcher"}
    exec(compile(content, "<launcher>", "exec"), namespace)
    return namespace


# ---- the example workspace ------------------------------------------------------------------


def test_py_binary_writes_an_executable_launcher_for_main():
    result, [key] = analyze(MONOREPO, "//tools/py:fmt")
    target = result.targets[key]
    assert target.executable.endswith("/bin/tools/py/fmt")
    assert target.files == (target.executable,)
    content = launcher_of(result, key)
    lines = content.splitlines()
    assert lines[0] == "#!/usr/bin/env python3"
    assert 'LABEL = "//tools/py:fmt"' in lines
    assert 'WORKSPACE = "monorepo"  # the main workspace, the first import root' in lines
    assert 'MAIN = "monorepo/tools/py/fmt.py"' in lines
    assert "IMPORTS = []  # more import roots, from the `imports` attributes" in lines
    assert 'INTERPRETER = "python3"  # a command or an absolute path ...' in lines
    assert "INTERPRETER_IN_RUNFILES = False  # ... or, if True, a runfiles path" in lines
    for essential in ('"RUNFILES_DIR", "TEST_SRCDIR"', 'path + ".runfiles"',
                      'os.environ["PYTHONPATH"]', "os.execv(interpreter, argv)"):
        assert essential in content


def test_py_binary_runfiles_are_launcher_sources_and_deps():
    result, [key] = analyze(MONOREPO, "//tools/py:fmt")
    target = result.targets[key]
    assert target.runfiles == (target.executable, "tools/py/textfmt.py", "tools/py/fmt.py")


def test_py_test_runfiles_include_data_from_another_package():
    result, [key] = analyze(MONOREPO, "//tools/py:textfmt_test")
    target = result.targets[key]
    assert target.executable.endswith("/bin/tools/py/textfmt_test")
    assert target.runfiles == (target.executable, "tools/py/textfmt.py",
                               "tools/py/textfmt_test.py", "gen/data/fruits.txt")
    assert 'MAIN = "monorepo/tools/py/textfmt_test.py"' in launcher_of(result, key).splitlines()


def test_py_library_files_are_its_sources():
    result, [key] = analyze(MONOREPO, "//tools/py:textfmt")
    assert result.targets[key].files == ("tools/py/textfmt.py",)
    assert result.targets[key].executable is None
    assert [a for a in result.actions.actions if a.owner == str(key)] == []


# ---- the launcher at run time ----------------------------------------------------------------


@pytest.fixture
def fmt_launcher(tmp_path, monkeypatch):
    """The //tools/py:fmt launcher and a runfiles tree beside it, laid out as Bazel does."""
    result, [key] = analyze(MONOREPO, "//tools/py:fmt")
    launcher = tmp_path / "bin" / "tools" / "py" / "fmt"
    main = tmp_path / "bin" / "tools" / "py" / "fmt.runfiles" / "monorepo" / "tools" / "py"
    main.mkdir(parents=True)
    (main / "fmt.py").write_text("")
    launcher.write_text(launcher_of(result, key))
    for name in ("RUNFILES_DIR", "TEST_SRCDIR", "PYTHONPATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "argv", [str(launcher), "--width", "3"])
    return load_launcher(launcher.read_text()), launcher


def test_launcher_finds_the_runfiles_beside_it(fmt_launcher):
    code, launcher = fmt_launcher
    assert code["find_runfiles"]() == f"{launcher}.runfiles"


def test_launcher_trusts_runfiles_dir_only_if_it_holds_main(fmt_launcher, tmp_path,
                                                            monkeypatch):
    code, launcher = fmt_launcher
    monkeypatch.setenv("RUNFILES_DIR", str(tmp_path))
    assert code["find_runfiles"]() == f"{launcher}.runfiles"
    other = tmp_path / "elsewhere.runfiles"
    (other / "monorepo" / "tools" / "py").mkdir(parents=True)
    (other / "monorepo" / "tools" / "py" / "fmt.py").write_text("")
    monkeypatch.setenv("TEST_SRCDIR", str(other))
    assert code["find_runfiles"]() == str(other)


def test_launcher_inside_a_runfiles_tree_and_through_a_symlink(fmt_launcher, tmp_path,
                                                               monkeypatch):
    code, launcher = fmt_launcher
    runfiles = Path(f"{launcher}.runfiles")
    inside = runfiles / "monorepo" / "tools" / "py" / "fmt"
    inside.symlink_to(launcher)
    monkeypatch.setattr(sys, "argv", [str(inside)])
    assert code["find_runfiles"]() == str(runfiles)
    link = tmp_path / "fmt_link"
    link.symlink_to(launcher)
    monkeypatch.setattr(sys, "argv", [str(link)])
    assert code["find_runfiles"]() == str(runfiles)


def test_launcher_without_runfiles_says_what_to_do(fmt_launcher, tmp_path, monkeypatch,
                                                    capsys):
    code, _ = fmt_launcher
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "copy")])
    with pytest.raises(SystemExit) as info:
        code["find_runfiles"]()
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        f"//tools/py:fmt: cannot find the runfiles tree (a directory holding "
        f"monorepo/tools/py/fmt.py) next to {tmp_path / 'copy'};\n"
        "build the target with bp, or set RUNFILES_DIR to its runfiles directory\n")


def test_launcher_execs_the_interpreter_on_main(fmt_launcher, monkeypatch):
    code, launcher = fmt_launcher
    runfiles = f"{launcher}.runfiles"
    calls = []
    monkeypatch.setattr(os, "execvp", lambda program, argv: calls.append((program, argv)))
    monkeypatch.setenv("PYTHONPATH", "/inherited")
    code["main"]()
    assert calls == [("python3", ["python3", "-B", f"{runfiles}/monorepo/tools/py/fmt.py",
                                  "--width", "3"])]
    assert os.environ["PYTHONPATH"] == f"{runfiles}/monorepo{os.pathsep}/inherited"
    assert os.environ["RUNFILES_DIR"] == runfiles


# ---- scratch workspaces ----------------------------------------------------------------------

IMPORTS_WS = {
    "WORKSPACE": 'workspace(name = "pyws")\nregister_toolchains("//rt:tc")\n',
    "rt/BUILD": """
        py_runtime(name = "rt", interpreter = "mypython", stub_shebang = "#!/usr/bin/python3")
        toolchain(name = "tc", toolchain = ":rt",
                  toolchain_type = "@toolchains//python:toolchain_type")
        """,
    "rt/mypython": "#!/bin/sh\nexec python3 \"$@\"\n",
    "lib/BUILD": """
        py_library(name = "mypkg", srcs = ["src/mypkg/__init__.py"], imports = ["src"],
                   data = ["greeting.txt"], visibility = ["//visibility:public"])
        """,
    "lib/src/mypkg/__init__.py": "",
    "lib/greeting.txt": "hi\n",
    "app/BUILD": """
        py_binary(name = "app", srcs = ["app.py"], deps = ["//lib:mypkg"])
        py_binary(name = "nomain", srcs = ["a.py", "b.py"])
        py_binary(name = "badmain", srcs = ["a.py"], main = "b.py")
        py_binary(name = "old", srcs = ["app.py"], main = "app.py", python_version = "PY2")
        py_library(name = "escapes", srcs = ["a.py"], imports = ["../.."])
        """,
    "app/app.py": "", "app/a.py": "", "app/b.py": "",
}


def test_imports_and_an_interpreter_from_the_build(ws):
    root = ws(IMPORTS_WS)
    result, [key] = analyze(root, "//app:app")
    target = result.targets[key]
    assert target.runfiles == (target.executable, "rt/mypython", "lib/src/mypkg/__init__.py",
                               "app/app.py", "lib/greeting.txt")
    lines = launcher_of(result, key).splitlines()
    assert lines[0] == "#!/usr/bin/python3"
    assert 'IMPORTS = ["pyws/lib/src"]  # more import roots, from the `imports` attributes' \
        in lines
    assert 'INTERPRETER = "pyws/rt/mypython"  # a command or an absolute path ...' in lines
    assert "INTERPRETER_IN_RUNFILES = True  # ... or, if True, a runfiles path" in lines


def test_missing_main_names_the_target_and_what_to_do(ws):
    lines = analysis_error(ws(IMPORTS_WS), "//app:nomain")
    assert ("error: fail: py_binary `//app:nomain` has no 'main' and none of its srcs is "
            "named 'nomain.py' (srcs: app/a.py, app/b.py); set 'main' to the file to "
            "run") in lines


def test_main_must_be_one_of_srcs(ws):
    lines = analysis_error(ws(IMPORTS_WS), "//app:badmain")
    assert ("error: fail: py_binary `//app:badmain`: main 'app/b.py' is not one of its "
            "srcs (app/a.py); add it to srcs") in lines


def test_python_version_must_match_the_toolchain(ws):
    lines = analysis_error(ws(IMPORTS_WS), "//app:old")
    assert ("error: fail: py_binary `//app:old` has python_version = \"PY2\", but the "
            "Python toolchain runs PY3; register a py_runtime with python_version = "
            "\"PY2\", or change the target's python_version") in lines


def test_imports_may_not_leave_the_workspace(ws):
    lines = analysis_error(ws(IMPORTS_WS), "//app:escapes")
    assert ("error: fail: `//app:escapes`: imports entry '../..' leaves the workspace; "
            "import roots must be inside it") in lines


def test_py_runtime_needs_exactly_one_interpreter(ws):
    root = ws({"rt/BUILD": """
        py_runtime(name = "both", interpreter = "mypython", interpreter_path = "python3")
        py_runtime(name = "neither")
        """, "rt/mypython": ""})
    assert ("error: fail: py_runtime `//rt:both` sets both 'interpreter_path' and "
            "'interpreter'; keep one: the path of an installed Python, or a Python file in "
            "the build") in analysis_error(root, "//rt:both")
    assert ("error: fail: py_runtime `//rt:neither` needs 'interpreter_path' (e.g. "
            "\"python3\") or 'interpreter' (a label)") in analysis_error(root, "//rt:neither")


def test_sh_toolchain_gives_its_path(ws):
    root = ws({
        "defs.bzl": """
            def _impl(ctx):
                out = ctx.actions.declare_file("shell.txt")
                ctx.actions.write(out, ctx.toolchains["@toolchains//sh:toolchain_type"].path)
                return [DefaultInfo(files = depset([out]))]
            shell_path = rule(implementation = _impl,
                              toolchains = ["@toolchains//sh:toolchain_type"])
            """,
        "BUILD": 'load(":defs.bzl", "shell_path")\nshell_path(name = "shell")\n',
    })
    result, _ = analyze(root, "//:shell")
    assert [a.content for a in result.actions.actions] == ["/bin/sh"]


def test_a_name_holding_a_template_key_or_a_quote_runs(ws, bp):
    """Target names may hold `%{main}` and quotes (Bazel allows them): the launcher's
    text is substituted in one pass, so a value is never substituted again."""
    name = """x%{main}'"y"""
    root = ws({"p/BUILD": f'''
        py_binary(name = {name!r}, srcs = ["m.py"], main = "m.py")
        ''', "p/m.py": "import sys\nsys.exit(7)\n"})
    result = bp("-C", str(root), "run", f"//p:{name}")
    assert result.code == 7, result.err   # the launcher ran m.py
