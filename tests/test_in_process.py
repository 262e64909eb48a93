"""bp's own actions (files written, runfiles trees linked) run on the executor's worker
thread while processes run: they hold none of the --jobs slots, a failure to write
fails the action with the machine's hint, and a stopped build waits for them."""

from __future__ import annotations

import errno
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from buildpy.actions.graph import Action, ActionGraph, ActionKind, runfiles_tree
from buildpy.execution import execroot
from buildpy.execution.executor import Executor, InProcess
from buildpy.execution.local import ExecutionOptions, LocalBuild
from buildpy.execution.progress import PlainProgress


@pytest.fixture
def local(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "WORKSPACE").write_text("")
    build = LocalBuild(root, {}, ExecutionOptions(jobs=1, disk_cache=tmp_path / "cache",
                                                  spawn_strategy="local"))
    yield build
    build.close()


def _action(name: str, kind: ActionKind, inputs=(), **fields) -> Action:
    return Action(owner=f"//s:{name}", owner_label=f"//s:{name}", configuration="",
                  mnemonic="Genrule" if kind is ActionKind.RUN else "FileWrite", kind=kind,
                  outputs=(f"bp-out/{name}",), inputs=tuple(inputs), **fields)


def test_a_written_file_holds_no_job(local):
    """With --jobs=1 a process runs while bp writes a file: the process (first, as its
    path is the longest) waits, bounded, for the file it does not declare."""
    waits = _action("waits", ActionKind.RUN, argv=(
        "/bin/sh", "-c", "for i in $(seq 2000); do [ -e bp-out/written ] && break; "
        "sleep 0.01; done; cat bp-out/written > bp-out/waits"))
    after = _action("after", ActionKind.RUN, inputs=["bp-out/waits"],
                    argv=("/bin/sh", "-c", "cp bp-out/waits bp-out/after"))
    written = _action("written", ActionKind.WRITE, content="made meanwhile\n")
    graph = ActionGraph.build((waits, after, written), {})
    report = local.run(graph, ["bp-out/after", "bp-out/written"], PlainProgress())
    assert report.ok and report.executed == 3
    assert (local.exec_root / "bp-out" / "after").read_text() == "made meanwhile\n"


def test_a_write_that_fails_fails_its_action_with_the_machines_hint(local, monkeypatch):
    def full(self, path, data, executable):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Executor, "_write", full)
    graph = ActionGraph.build((_action("written", ActionKind.WRITE, content="x"),), {})
    report = local.run(graph, ["bp-out/written"], PlainProgress())
    (failed,) = report.failed
    assert "could not write its output" in failed.error and "No space left" in failed.error
    assert failed.environment is not None


def test_a_bug_on_the_worker_stops_the_build_and_is_reported(local, monkeypatch):
    """Anything but an OSError raised on the worker thread is bp's own fault: not the
    action's failure (no machine to blame) but an error of the build, its type named."""
    def broken(self, path, data, executable):
        raise ValueError("a bug in bp")

    monkeypatch.setattr(Executor, "_write", broken)
    graph = ActionGraph.build((_action("written", ActionKind.WRITE, content="x"),), {})
    report = local.run(graph, ["bp-out/written"], PlainProgress())
    assert not report.ok and report.failed == []
    assert report.errors == ["ValueError: a bug in bp"]
    assert not (local.exec_root / "bp-out" / "written").exists()


def test_a_stopped_build_waits_for_what_the_worker_is_doing_and_drops_the_rest():
    started, release, ended = threading.Event(), threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(10)
        ended.set()

    queued = []
    with ThreadPoolExecutor(1) as worker:
        running = InProcess(worker, slow)
        waiting = InProcess(worker, lambda: queued.append(1))   # (behind it)
        assert started.wait(10)
        waiting.abandon()   # (the worker is still in `slow`)
        threading.Timer(0.05, release.set).start()
        began = time.monotonic()
        running.abandon()
        assert ended.is_set() and time.monotonic() - began < 10
    assert queued == []   # never started


def test_a_new_runfiles_tree_is_made_without_removing_anything(local, monkeypatch):
    """(Each directory removed, then made again, costs the file system twice: ext4
    without a journal keeps a removed inode from reuse for a minute.)"""
    removed = []
    real_rmtree = execroot.shutil.rmtree
    monkeypatch.setattr(execroot.shutil, "rmtree",
                        lambda path, *a, **k: removed.append(path) or real_rmtree(path, *a, **k))
    tool = _action("tool", ActionKind.WRITE, content="echo hi\n", is_executable=True)
    tree = runfiles_tree("//s:tool", "//s:tool", "", "bp-out/tool", ["bp-out/tool"], "ws")
    report = local.run(ActionGraph.build((tool, tree), {}), [tree.outputs[0]], PlainProgress())
    assert report.ok and removed == []
    link = local.exec_root / "bp-out" / "tool.runfiles" / "ws" / "bp-out" / "tool"
    assert link.is_symlink() and link.read_text() == "echo hi\n"
