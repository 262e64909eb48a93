"""Incremental = from scratch: a short seeded differential run (tests/differential.py;
`scripts/differential` runs it longer), and small deterministic tests for the
incremental-build bugs it was written to catch."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path


from tests import differential

SHORT_STEPS = int(os.environ.get("BP_DIFFERENTIAL_STEPS", "10"))
SHORT_SEED = int(os.environ.get("BP_DIFFERENTIAL_SEED", "15"))


def test_a_short_seeded_differential_run_finds_no_mismatch():
    lines: list[str] = []
    started = time.monotonic()
    failures = differential.run(SHORT_STEPS, SHORT_SEED, out=lines.append)
    assert not failures, "\n".join(lines) + "\n" + "\n".join(map(str, failures))
    assert len([line for line in lines if line.startswith("step")]) == SHORT_STEPS + 1
    print(f"{SHORT_STEPS} steps in {time.monotonic() - started:.1f}s")


SERVED_STEPS = int(os.environ.get("BP_DIFFERENTIAL_SERVED_STEPS", "8"))


def test_a_short_seeded_run_through_the_analysis_server_finds_no_mismatch():
    """Every incremental build asks the workspace's analysis server (buildpy/server.py),
    which analyzes the BUILD, .bzl and flag edits again in its kept state."""
    lines: list[str] = []
    failures = differential.run(SERVED_STEPS, SHORT_SEED + 1, out=lines.append, served=True)
    assert not failures, "\n".join(lines) + "\n" + "\n".join(map(str, failures))


WATCH_STEPS = int(os.environ.get("BP_DIFFERENTIAL_WATCH_STEPS", "3"))


def test_a_short_seeded_watch_session_matches_from_scratch_builds():
    """One `bp build --watch //...` through random edits (source, BUILD attributes, .bzl
    code, added and removed targets...): after each iteration, the outputs of a
    from-scratch build."""
    lines: list[str] = []
    failures = differential.run_watch(WATCH_STEPS, SHORT_SEED, out=lines.append)
    assert not failures, "\n".join(lines) + "\n" + "\n".join(map(str, failures))
    assert len([line for line in lines if line.startswith("step")]) == WATCH_STEPS + 1


def test_the_comparison_sees_bytes_modes_and_missing_and_stale_files(tmp_path):
    a = {"x": (b"one", 0o444), "y": (b"y", 0o555), "only_a": (b"", 0o444)}
    b = {"x": (b"two", 0o444), "y": (b"y", 0o444), "only_b": (b"", 0o444)}
    problems = differential.compare(a, b, tmp_path, tmp_path)
    assert differential.compare(a, b, tmp_path, tmp_path, stale_ok=True) == [
        p for p in problems if "only in the incremental" not in p]
    assert any(p.startswith("x: content differs") for p in problems)
    assert any(p.startswith("y: mode differs: incremental 555") for p in problems)
    assert "only_a: only in the incremental build" in problems
    assert "only_b: only in the from-scratch build" in problems
    assert differential.compare(a, dict(a), tmp_path, tmp_path) == []


def test_every_edit_kind_keeps_the_workspace_buildable(tmp_path):
    """Each kind once, then one from-scratch comparison: harness errors show up here."""
    import random
    state = differential.State(root=tmp_path / "ws", model=differential.initial_model())
    differential.make_workspace(state.root, state.model)
    rng = random.Random(0)
    for kind in differential.KINDS + ["remove_target", "delete_source"]:
        differential.random_edit(state, rng, [kind])
    assert differential.check_step(state.root, tmp_path / "cache", state.flags, tmp_path) == []


# ---------------------------------------------------------------------------------------
# Deterministic tests for the known bugs (in-process, fast).

RULES = {
    "rules/BUILD": "",
    "rules/defs.bzl": '''
        def _w_impl(ctx):
            out = ctx.actions.declare_file(ctx.label.name + ".txt")
            ctx.actions.write(out, ctx.attr.text)
            return [DefaultInfo(files = depset([out]))]

        w = rule(implementation = _w_impl, attrs = {"text": attr.string()})

        def _tree_impl(ctx):
            out = ctx.actions.declare_directory(ctx.label.name + ".d")
            ctx.actions.run_shell(outputs = [out],
                                  command = "echo one > $1/f1 && mkdir -p $1/sub && echo two > $1/sub/f2",
                                  arguments = [out.path])
            return [DefaultInfo(files = depset([out]))]

        tree = rule(implementation = _tree_impl)
        ''',
}


def build(bp, root: Path, *args: str, code: int = 0):
    result = bp("-C", str(root), "build", *args)
    assert result.code == code, result.err
    return result


def out(root: Path, rel: str) -> Path:
    return root / "bp-bin" / rel


def test_changing_a_write_rules_text_in_build_changes_its_output_also_after_clean(bp, ws):
    root = ws(dict(RULES, **{"p/BUILD": 'load("//rules:defs.bzl", "w")\nw(name = "x", text = "one")\n'}))
    build(bp, root, "//p:x")
    assert out(root, "p/x.txt").read_text() == "one"
    (root / "p/BUILD").write_text('load("//rules:defs.bzl", "w")\nw(name = "x", text = "two")\n')
    build(bp, root, "//p:x")
    assert out(root, "p/x.txt").read_text() == "two"
    assert bp("-C", str(root), "clean").code == 0
    build(bp, root, "//p:x")
    assert out(root, "p/x.txt").read_text() == "two"
    (root / "p/BUILD").write_text('load("//rules:defs.bzl", "w")\nw(name = "x", text = "one")\n')
    build(bp, root, "//p:x")   # back to a cached entry: its own bytes, not the last ones
    assert out(root, "p/x.txt").read_text() == "one"


def test_a_declared_directory_written_without_mkdir_builds_and_is_a_clean_cache_hit(bp, ws):
    root = ws(dict(RULES, **{"p/BUILD": '''
        load("//rules:defs.bzl", "tree")
        tree(name = "t")
        genrule(name = "use", srcs = [":t"], outs = ["use.txt"],
                cmd = "cat $(location :t)/f1 $(location :t)/sub/f2 > $@")
        '''}))
    build(bp, root, "//p:use")
    assert out(root, "p/t.d/f1").read_text() == "one\n"
    assert out(root, "p/t.d/sub/f2").read_text() == "two\n"
    assert out(root, "p/use.txt").read_text() == "one\ntwo\n"
    assert bp("-C", str(root), "clean").code == 0
    again = build(bp, root, "//p:use")
    assert "damaged" not in again.err
    assert "0 executed" in again.err, again.err
    assert out(root, "p/t.d/f1").read_text() == "one\n"
    assert out(root, "p/t.d/sub/f2").read_text() == "two\n"
    assert out(root, "p/use.txt").read_text() == "one\ntwo\n"


def test_a_failing_genrule_leaves_no_partial_output(bp, ws):
    root = ws({"p/BUILD": '''
        genrule(name = "bad", outs = ["bad.txt"], cmd = "echo partial > $@; exit 1")
        '''})
    build(bp, root, "//p:bad", code=1)
    bad = root / "bp-out"
    assert not any(path.name == "bad.txt" for path in bad.rglob("*")), \
        [str(p) for p in bad.rglob("bad.txt")]


def test_a_directory_where_an_output_file_belongs_does_not_break_the_build(bp, ws):
    root = ws({"p/BUILD": 'genrule(name = "g", outs = ["g.txt"], cmd = "echo fine > $@")\n'})
    build(bp, root, "//p:g")
    target = out(root, "p/g.txt").resolve()
    assert bp("-C", str(root), "clean").code == 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.mkdir()
    (target / "junk").write_text("junk")
    build(bp, root, "//p:g")
    assert out(root, "p/g.txt").is_file() and out(root, "p/g.txt").read_text() == "fine\n"
    # and the same with a cache miss: a new command, a directory in the way
    assert bp("-C", str(root), "clean").code == 0
    target.mkdir(parents=True)
    (root / "p/BUILD").write_text('genrule(name = "g", outs = ["g.txt"], cmd = "echo finer > $@")\n')
    build(bp, root, "//p:g")
    assert out(root, "p/g.txt").read_text() == "finer\n"


def test_switching_a_py_binarys_main_runs_the_new_file(bp, ws):
    root = ws({
        "p/a.py": 'print("from a")\n',
        "p/b.py": 'print("from b")\n',
        "p/BUILD": 'py_binary(name = "m", srcs = ["a.py", "b.py"], main = "a.py")\n',
    })
    build(bp, root, "//p:m")
    launcher = out(root, "p/m")
    assert launcher.stat().st_mode & stat.S_IXUSR
    assert subprocess.run([launcher], capture_output=True, text=True).stdout == "from a\n"
    (root / "p/BUILD").write_text('py_binary(name = "m", srcs = ["a.py", "b.py"], main = "b.py")\n')
    build(bp, root, "//p:m")
    assert subprocess.run([launcher], capture_output=True, text=True).stdout == "from b\n"
    assert bp("-C", str(root), "clean").code == 0
    build(bp, root, "//p:m")
    assert subprocess.run([launcher], capture_output=True, text=True).stdout == "from b\n"


def test_test_outcomes_ignore_times_and_cached_results():
    from subprocess import CompletedProcess
    a = CompletedProcess([], 3, "", "//d:t          (cached) PASSED in 0.0s\n"
                                    "//d:u          FAILED in 1.2s\n  bp-out/testlogs/d/u/test.log\n")
    b = CompletedProcess([], 3, "//d:u   FAILED in 0.1s\n//d:t   PASSED in 0.3s\n", "")
    assert differential.outcome_of_tests(a) == differential.outcome_of_tests(b) == (
        3, ["//d:t PASSED", "//d:u FAILED"])
