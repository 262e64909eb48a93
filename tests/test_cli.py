"""The `bp` command line: help, version, query output, rc files, exit codes."""

from __future__ import annotations

import subprocess
import sys

from buildpy import __version__
from conftest import REPO_ROOT

TWO_PACKAGES = {
    "a/BUILD": 'filegroup(name = "a1")\nfilegroup(name = "a2")',
    "a/sub/BUILD": 'filegroup(name = "s")',
    "b/BUILD": 'filegroup(name = "b")',
}


def test_version_and_help(bp):
    result = bp("--version")
    assert (result.code, result.out) == (0, f"bp {__version__}\n")
    result = bp("help")
    assert result.code == 0 and "Commands:" in result.out and "query" in result.out
    result = bp("help", "query")
    assert result.code == 0 and "Usage: bp query [OPTIONS] [EXPRESSION]..." in result.out
    assert bp("query", "--help").out == result.out
    result = bp("help", "qeury")
    assert (result.code, result.err) == (
        2, "ERROR: unknown command 'qeury'; did you mean 'query'?\n"
           "hint: 'bp help' lists the commands\n")


def test_unknown_command_and_flag_exit_2(bp):
    assert bp("nope").code == 2
    assert bp("query", "--bogus", "//...").code == 2


def test_completion_script(bp):
    result = bp("completion", "bash")
    assert result.code == 0 and "_BP_COMPLETE" in result.out


def test_query_prints_sorted_labels(bp, ws):
    root = ws(TWO_PACKAGES)
    result = bp("-C", str(root), "query", "//...")
    assert (result.code, result.out) == (0, "//a:a1\n//a:a2\n//a/sub:s\n//b:b\n")


def test_query_subtraction(bp, ws):
    root = ws(TWO_PACKAGES)
    result = bp("-C", str(root), "query", "--", "//...", "-//a/...")
    assert result.out == "//b:b\n"
    result = bp("-C", str(root), "query", "--", "//a/...", "-//a/sub/...", "+", "//a/sub:s")
    assert result.out == "//a:a1\n//a:a2\n//a/sub:s\n"


def test_relative_patterns_from_a_subdirectory(bp, ws):
    root = ws(TWO_PACKAGES)
    assert bp("query", "...", cwd=root / "a").out == "//a:a1\n//a:a2\n//a/sub:s\n"
    assert bp("query", ":a1", cwd=root / "a").out == "//a:a1\n"
    assert bp("query", "sub/...", cwd=root / "a").out == "//a/sub:s\n"
    assert bp("query", "sub:all", cwd=root / "a").out == "//a/sub:s\n"
    assert bp("query", "a2", cwd=root / "a").out == "//a:a2\n"


def test_outside_a_workspace(bp, tmp_path):
    result = bp("query", "//...", cwd=tmp_path)
    assert result.code == 2
    assert result.err == (
        f"ERROR: not inside a workspace: no WORKSPACE, WORKSPACE.bazel or MODULE.bazel file in "
        f"'{tmp_path.resolve()}' or any directory above it\n"
        "hint: create an empty file named WORKSPACE at the root of your source tree "
        "(see WORKSPACE.example), or point bp at one with -C DIR\n")


def test_malformed_patterns(bp, ws):
    root = ws(TWO_PACKAGES)
    result = bp("-C", str(root), "query", "//a::b")
    assert (result.code, result.err) == (
        2, "ERROR: <query>:1:1: invalid target pattern '//a::b': target name ':b' "
           "may not start with ':'\n"
           "1 | //a::b\n"
           "  | ^\n"
           "hint: a label has a single ':' between the package and the target name\n")
    result = bp("-C", str(root), "query", "deps(//a/../b)")
    assert result.err.startswith(
        "ERROR: <query>:1:6: invalid target pattern '//a/../b': package name 'a/../b' "
        "contains a '..' segment\n")
    result = bp("-C", str(root), "query", "//nope/...")
    assert result.err == ("ERROR: <query>:1:1: no targets found beneath 'nope' (pattern "
                          "'//nope/...')\n"
                          "1 | //nope/...\n"
                          "  | ^\n"
                          "hint: check the path; directories listed in .bazelignore or "
                          ".bpignore are skipped\n")


def test_keep_going_prints_partial_result_and_exits_3(bp, ws):
    root = ws({**TWO_PACKAGES, "bad/BUILD": "filegroup(\n"})
    result = bp("-C", str(root), "query", "//...")
    assert result.code == 2 and result.out == ""
    result = bp("-C", str(root), "query", "--keep_going", "//...")
    assert result.code == 3
    assert result.out == "//a:a1\n//a:a2\n//a/sub:s\n//b:b\n"
    assert result.err.startswith("ERROR: error loading package '//bad':\n")


def test_bprc_defaults_and_command_line_wins(bp, ws):
    root = ws({**TWO_PACKAGES, "bad/BUILD": "filegroup(\n",
               ".bprc": "# defaults\nquery --keep_going\ncommon --color=no\n"
                        "query:strict --nokeep_going\n"})
    assert bp("-C", str(root), "query", "//...").code == 3
    assert bp("-C", str(root), "query", "--nokeep_going", "//...").code == 2
    assert bp("-C", str(root), "query", "--config=strict", "//...").code == 2
    result = bp("-C", str(root), "query", "--config=fast", "//...")
    assert (result.code, result.err) == (
        2, "ERROR: config value 'fast' is not defined in any .bprc file\n"
           "hint: add lines such as 'query:fast --flag' to .bprc\n")


def test_home_bprc_is_read_after_the_workspace_one(bp, ws, tmp_path, monkeypatch):
    root = ws({**TWO_PACKAGES, "bad/BUILD": "filegroup(\n",
               ".bprc": "query --keep_going\n"})
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bprc").write_text("query --nokeep_going\n")
    monkeypatch.setenv("HOME", str(home))
    assert bp("-C", str(root), "query", "//...").code == 2
    assert bp("--nohome_rc", "-C", str(root), "query", "//...").code == 3


def test_bazelrc_is_read_before_bprc_and_its_unknown_flags_are_warnings(bp, ws):
    """Real repositories carry a .bazelrc written for Bazel: bp reads it first (.bprc
    wins), and a flag bp does not know is dropped with a warning at its line (with its
    value, when that is the next word), not an error."""
    root = ws({**TWO_PACKAGES, "bad/BUILD": "filegroup(\n",
               ".bazelrc": "startup --host_jvm_args=-Xmx2g\n"
                           "query --keep_going\n"
                           "query --experimental_x --host_javabase @jdk//:jdk\n"})
    result = bp("-C", str(root), "query", "//...")
    assert result.code == 3, result.err
    assert f"WARNING: {root / '.bazelrc'}:3:7: bp query does not know the option " \
        "'--experimental_x'; ignoring it" in result.err
    assert f"WARNING: {root / '.bazelrc'}:3:24: bp query does not know the option " \
        "'--host_javabase'; ignoring it" in result.err
    assert not [line for line in result.err.splitlines() if "jdk" in line and
                not line.startswith("WARNING")]   # the value went with its flag
    (root / ".bprc").write_text("query --nokeep_going\n")
    assert bp("-C", str(root), "query", "//...").code == 2
    assert bp("--noworkspace_rc", "-C", str(root), "query", "//...").code == 2


def test_python_dash_m_and_the_example_workspace():
    """The installed entry points run the README's quickstart command."""
    result = subprocess.run(
        [sys.executable, "-m", "buildpy", "-C", str(REPO_ROOT / "examples/monorepo"),
         "query", "//..."], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    labels = result.stdout.split()
    assert "//app:hello" in labels and "//codegen:banner_text" in labels
    assert len(labels) >= 20


def test_the_command_exits_with_its_code_and_all_its_output(tmp_path):
    """`entry_point()` leaves with os._exit: the exit code and the buffered output must survive,
    and a reader that stops early (`| head`) gets no traceback."""
    (tmp_path / "WORKSPACE").write_text("")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "BUILD").write_text("".join(
        f'filegroup(name = "t{i}")\n' for i in range(3000)))
    bad = subprocess.run([sys.executable, "-m", "buildpy", "-C", str(tmp_path), "query",
                          "//p:nope"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.startswith("ERROR: <query>:1:1: no such target '//p:nope'")
    full = subprocess.run([sys.executable, "-m", "buildpy", "-C", str(tmp_path), "query",
                           "//p:all"], capture_output=True, text=True, timeout=60)
    assert full.returncode == 0 and len(full.stdout.split()) == 3000
    head = subprocess.run(f"'{sys.executable}' -m buildpy -C '{tmp_path}' query //p:all | head -1",
                          shell=True, capture_output=True, text=True, timeout=60)
    assert head.stdout == "//p:t0\n" and head.stderr == ""


def test_main_turns_the_collector_back_on_and_entry_point_leaves_it_off(bp, monkeypatch):
    """In-process (tests, a future --watch) the cyclic collector must come back; at the
    end of the `bp` process its first pass would only visit everything once more."""
    import gc
    import os

    from buildpy.cli import entry_point

    assert gc.isenabled()
    assert bp("--version").code == 0
    assert gc.isenabled()
    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    monkeypatch.setattr(sys, "argv", ["bp", "--version"])
    try:
        entry_point()
        assert exits == [0] and not gc.isenabled()
    finally:
        gc.enable()


def test_a_rust_panic_nobody_caught_is_reported_as_a_bug_of_ours(bp, ws, monkeypatch):
    """A PanicException is a BaseException: it used to escape every handler."""
    class PanicException(BaseException):   # as pyo3 names it
        pass

    def panic(*args, **kwargs):
        raise PanicException("called `Option::unwrap()` on a `None` value")

    monkeypatch.setattr("buildpy.session.open_session", panic)
    result = bp("-C", str(ws()), "query", "//...")
    assert result.code == 37
    assert result.err.startswith("INTERNAL ERROR (a bug in bp; please report it with this "
                                 "output):\n")
    assert result.err.rstrip().endswith(
        "PanicException: called `Option::unwrap()` on a `None` value")
