"""Execution while analysis goes on in another process: the scheduler takes actions as
they arrive (a fake feed, our own seam), and `bp build` stays correct when the analysis
fails, dies, or an action fails before the analysis ends."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from buildpy.actions.graph import Action, ActionGraph, ActionKind
from buildpy.execution.local import ExecutionOptions, LocalBuild
from buildpy.execution.progress import PlainProgress


class _Feed:
    """Hands the scheduler `batches` one per `receive()`, the next one only once
    `ready(i)` says so; its pipe always polls readable."""

    def __init__(self, batches, ready=lambda i: True, fail: bool = False):
        self.batches = list(batches)
        self.ready = ready
        self.fail = fail
        self.given = 0
        self.ended = False
        self.failed = False
        self._read, self._write = os.pipe()
        os.write(self._write, b"x")

    def fileno(self) -> int:
        return self._read

    def receive(self):
        if self.given < len(self.batches) and self.ready(self.given):
            self.given += 1
            self.ended = self.given == len(self.batches)
            self.failed = self.ended and self.fail
            return [self.batches[self.given - 1]]
        return []

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


def _shell(name: str, command: str, inputs=()) -> Action:
    return Action(owner=f"//s:{name}", owner_label=f"//s:{name}", configuration="",
                  mnemonic="Genrule", kind=ActionKind.RUN, outputs=(f"bp-out/{name}",),
                  inputs=tuple(inputs), argv=("/bin/sh", "-c", command))


@pytest.fixture
def local(tmp_path):
    """A LocalBuild of an empty workspace (keep_going as asked)."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "WORKSPACE").write_text("")
    opened = []

    def make(keep_going: bool = False) -> LocalBuild:
        opened.append(LocalBuild(root, {}, ExecutionOptions(
            jobs=2, keep_going=keep_going, disk_cache=tmp_path / "cache",
            spawn_strategy="sandboxed")))   # the tests' markers lie outside the workspace
        return opened[-1]

    yield make
    for build in opened:
        build.close()


def test_actions_run_as_they_arrive_and_later_ones_build_on_them(local):
    build = local()
    first = _shell("a", "echo a > bp-out/a")
    second = _shell("b", "cat bp-out/a bp-out/a > bp-out/b", inputs=["bp-out/a"])
    made = build.exec_root / "bp-out" / "a"
    # the second part arrives only once the first part's action has run
    feed = _Feed([([first], ["bp-out/a"]), ([second], ["bp-out/b"])],
                 ready=lambda i: i == 0 or made.exists())
    try:
        report = build.run(ActionGraph(()), [], PlainProgress(), feed)
    finally:
        feed.close()
    assert report.ok and report.total == 2 and report.executed == 2
    assert (build.exec_root / "bp-out" / "b").read_text() == "a\na\n"


def test_a_feed_that_fails_stops_what_runs(local, tmp_path):
    build = local()
    marker = tmp_path / "started"
    slow = _shell("slow", f"touch {marker}; sleep 30; echo > bp-out/slow")
    feed = _Feed([([slow], ["bp-out/slow"]), ([], [])], ready=lambda i: i == 0 or marker.exists(),
                 fail=True)
    began = time.monotonic()
    try:
        report = build.run(ActionGraph(()), [], PlainProgress(), feed)
    finally:
        feed.close()
    assert time.monotonic() - began < 20 and marker.exists()
    assert report.executed == 0 and not (build.exec_root / "bp-out" / "slow").exists()


class _Recording:
    """Progress that keeps the outcomes."""

    def __init__(self):
        self.outcomes = []

    def started(self, action, total) -> None:
        pass

    def finished(self, outcome, done, total) -> None:
        self.outcomes.append(outcome)

    def tick(self, done, total) -> None:
        pass


def test_what_arrives_behind_a_failure_is_skipped(local):
    build = local(keep_going=True)
    bad = _shell("bad", "exit 3")
    after = _shell("after", "cp bp-out/bad bp-out/after", inputs=["bp-out/bad"])
    other = _shell("other", "echo > bp-out/other")
    progress = _Recording()
    # the second part arrives once the first part's action has failed
    feed = _Feed([([bad], ["bp-out/bad"]), ([after, other], ["bp-out/after", "bp-out/other"])],
                 ready=lambda i: i == 0 or bool(progress.outcomes))
    try:
        report = build.run(ActionGraph(()), [], progress, feed)
    finally:
        feed.close()
    assert len(report.failed) == 1 and report.skipped == 1 and report.executed == 1


def test_two_actions_writing_one_file_stop_the_build(local, tmp_path):
    from buildpy.core.errors import UserError

    build = local()
    marker = tmp_path / "started"
    slow = _shell("slow", f"touch {marker}; sleep 30; echo > bp-out/slow")
    twin = replace(_shell("twin", "echo > bp-out/slow"), outputs=("bp-out/slow",))
    feed = _Feed([([slow], ["bp-out/slow"]), ([twin], [])],
                 ready=lambda i: i == 0 or marker.exists())
    began = time.monotonic()
    try:
        with pytest.raises(UserError, match="generated by two actions"):
            build.run(ActionGraph(()), [], PlainProgress(), feed)
    finally:
        feed.close()
    assert time.monotonic() - began < 20   # what ran was stopped, not awaited


CHAIN = {
    "src/BUILD": '''
        genrule(name = "a", srcs = ["a.txt"], outs = ["a.out"], cmd = "cat $< > $@")
        genrule(name = "b", srcs = [":a"], outs = ["b.out"], cmd = "tr a-z A-Z < $< > $@")
        genrule(name = "c", srcs = [":b"], outs = ["c.out"], cmd = "cat $< $< > $@")
        ''',
    "src/a.txt": "hello\n",
}


@pytest.fixture
def small_parts(monkeypatch):
    """Analysis told of after every target, so a build gets many parts."""
    from buildpy.analysis import analyzer

    monkeypatch.setattr(analyzer, "_PART", 1)


def test_a_build_in_many_parts_is_the_same_build(bp, ws, small_parts):
    root = ws(CHAIN)
    result = bp("-C", str(root), "build", "//src:all")
    assert result.code == 0, result.err
    assert "INFO: 3 actions: 3 executed, 0 cache hits" in result.err
    assert (root / "bp-bin" / "src" / "c.out").read_text() == "HELLO\nHELLO\n"
    again = bp("-C", str(root), "build", "//src:all")   # from the saved analysis
    assert "INFO: 3 actions: 0 executed, 3 cache hits" in again.err


def test_an_analysis_error_after_actions_started_is_reported_once(bp, ws, small_parts):
    bad = 'genrule(name = "z", srcs = [":c"], outs = ["z.out"], cmd = "cat $(location :x)")'
    root = ws({**CHAIN, "src/BUILD": CHAIN["src/BUILD"].rstrip() + "\n        " + bad + "\n"})
    result = bp("-C", str(root), "build", "//src:all")
    assert result.code == 2 and result.err.count("src/BUILD:4:") == 1, result.err
    assert "label ':x' in $(location) is not a declared prerequisite" in result.err


def test_an_action_failing_before_analysis_ends_fails_the_build(bp, ws, small_parts,
                                                                 monkeypatch, tmp_path):
    from buildpy import session

    failed = tmp_path / "failed"
    wanted = session._files_wanted

    def slow_after_bad(result):   # runs in the analysis process
        if any(f.endswith("zz.out") for f in result.files):
            deadline = time.monotonic() + 20
            while not failed.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.5)   # time for bp to see the failure
        return wanted(result)

    monkeypatch.setattr(session, "_files_wanted", slow_after_bad)
    root = ws({"f/BUILD": f'''
        genrule(name = "bad", outs = ["bad.out"], cmd = "touch {failed}; exit 3")
        genrule(name = "after", srcs = [":bad"], outs = ["after.out"], cmd = "cp $< $@")
        genrule(name = "zz", outs = ["zz.out"], cmd = "echo > $@")
        '''})
    # sandboxed: the action's marker lies outside the workspace, hidden in linux-sandbox
    result = bp("-C", str(root), "build", "--spawn_strategy=sandboxed", "//f:all")
    assert result.code == 1, result.err
    assert "FAILED: build did NOT complete successfully (1 failed" in result.err
    assert (root / "bp-bin").is_symlink()
    assert bp("-C", str(root), "build", "//f:zz").code == 0   # nothing was left half-done


def test_an_analysis_process_that_dies_leaves_the_analysis_to_bp(bp, ws, monkeypatch):
    from buildpy import session

    def dies(*args):
        os._exit(9)   # as if killed (OOM, kill -9): no word to the parent

    monkeypatch.setattr(session._AnalysisStream, "_analyze", staticmethod(dies))
    root = ws(CHAIN)
    result = bp("-C", str(root), "build", "//src:all")
    assert result.code == 0, result.err
    assert (root / "bp-bin" / "src" / "c.out").read_text() == "HELLO\nHELLO\n"


def test_no_analysis_process_outlives_the_build(bp, ws, small_parts):
    root = ws(CHAIN)
    before = _children()
    assert bp("-C", str(root), "build", "//src:all").code == 0
    assert _children() == before


def _children() -> set[int]:
    """This process's child processes (the analysis runs in one while a build runs)."""
    me = os.getpid()
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == me:
                out.add(int(entry.name))
    return out
