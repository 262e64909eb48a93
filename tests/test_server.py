"""The analysis server (buildpy/server.py, session._start_server): a fresh `bp build` after
BUILD or .bzl files changed gets its plan from the analysis the last build kept, brought
up to date there; errors come back as they would from a local analysis; a server that
is gone, stopped or idle is never missed. Every bp runs as a process of its own (the
server is forked from the analysis process of a build), with a private TMPDIR, so the
servers these tests start are theirs, and each test stops them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from buildpy import server
from tests.test_watch import alive   # (not a zombie: the servers are no children of ours)

RULES = """
def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, PREFIX + ctx.attr.word + "\\n")
    return [DefaultInfo(files = depset([out]))]

PREFIX = "said: "

say = rule(implementation = _impl, attrs = {"word": attr.string()})
"""

BUILD = """
load(":rules.bzl", "say")
say(name = "a", word = "one")
genrule(name = "g", srcs = [":a"], outs = ["g.txt"], cmd = "tr a-z A-Z < $< > $@")
"""

WAIT = 60.0   # seconds: the bound on each wait for a server to come or go


@pytest.fixture
def served(tmp_path, monkeypatch):
    """`served(*args)` runs bp in the workspace `served.root` (a process, with its own
    TMPDIR); `served.pids()` are the servers its log tells of. All stopped at the end."""
    temp = tmp_path / "t"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    root = tmp_path / "ws"
    root.mkdir()
    for name, text in {"WORKSPACE": "", "rules.bzl": RULES, "BUILD": BUILD}.items():
        (root / name).write_text(text)
    env = dict(os.environ, TMPDIR=str(temp))

    class Served:
        def __init__(self):
            self.root = root

        def __call__(self, *args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "buildpy", "-C", str(root), *args],
                                  env=env, capture_output=True, text=True, timeout=300)

        def build(self, *flags: str) -> subprocess.CompletedProcess:
            return self("build", "//...", "--analysis_server=yes", *flags)

        def log(self) -> str:
            try:
                return server.log_path(root).read_text()
            except OSError:   # (none yet, or a directory the test made public)
                return ""

        def pids(self) -> list[int]:
            return [int(p) for p in re.findall(r"listening on .* \(pid (\d+)\)", self.log())]

        def output(self, name: str) -> str:
            return (root / "bp-bin" / name).read_text()

    run = Served()
    yield run
    run("shutdown")
    for pid in run.pids():
        _kill(pid)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT:.0f} s for {what}"
        time.sleep(0.05)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_build_file_edit_is_analyzed_by_the_server(served):
    first = served.build()
    assert first.returncode == 0, first.stderr
    assert served.output("g.txt") == "SAID: ONE\n"
    [pid] = served.pids()
    assert alive(pid)

    _edit(served.root / "BUILD", '"one"', '"two"')
    with (served.root / "BUILD").open("a") as build_file:
        build_file.write('print("loaded again")\n')
    second = served.build()
    assert second.returncode == 0, second.stderr
    assert "DEBUG: " in second.stderr and "loaded again" in second.stderr   # said there
    assert served.output("g.txt") == "SAID: TWO\n"
    assert served.pids() == [pid], "the build analyzed here, and started a server again"
    assert served.log().count("answered in") == 1

    # a target added, and a .bzl edit (the server opens the workspace afresh)
    with (served.root / "BUILD").open("a") as build_file:
        build_file.write('say(name = "b", word = "three")\n')
    _edit(served.root / "rules.bzl", '"said: "', '"told: "')
    third = served.build()
    assert third.returncode == 0, third.stderr
    assert served.output("g.txt") == "TOLD: TWO\n"
    assert served.output("b.txt") == "told: three\n"
    assert served.pids() == [pid]

    # nothing changed since: the analysis the server saved with its answer is read back
    assert served.build().returncode == 0
    assert served.log().count("answered in") == 2


def test_a_build_file_error_comes_back_from_the_server_and_so_does_its_fix(served):
    assert served.build().returncode == 0
    _edit(served.root / "BUILD", 'word = "one"', 'word = "one", colour = "red"')
    broken = served.build()
    assert broken.returncode == 2   # as without a server: a BUILD file's error
    assert "BUILD:3:" in broken.stderr and "colour" in broken.stderr, broken.stderr
    assert "answered with an error" in served.log()

    _edit(served.root / "BUILD", ', colour = "red"', "")
    fixed = served.build()
    assert fixed.returncode == 0, fixed.stderr
    assert served.output("g.txt") == "SAID: ONE\n"
    assert len(served.pids()) == 1


def test_a_killed_server_is_not_missed(served):
    assert served.build().returncode == 0
    [pid] = served.pids()
    os.kill(pid, signal.SIGKILL)
    _wait_until(lambda: not alive(pid), "the killed server to go")
    _edit(served.root / "BUILD", '"one"', '"four"')
    after = served.build()
    assert after.returncode == 0, after.stderr
    assert served.output("g.txt") == "SAID: FOUR\n"
    assert len(served.pids()) == 2   # analyzed here, and kept by a new server


def test_another_command_replaces_the_server(served):
    assert served.build().returncode == 0
    [old] = served.pids()
    other = served("build", "//:a", "--analysis_server=yes")
    assert other.returncode == 0, other.stderr
    assert "another command's analysis" in served.log()
    _wait_until(lambda: not alive(old), "the replaced server to exit")
    assert len(served.pids()) == 2 and alive(served.pids()[1])


def test_shutdown_and_the_idle_bound_stop_the_server(served):
    assert served.build().returncode == 0
    [pid] = served.pids()
    stopped = served("shutdown")
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    _wait_until(lambda: not alive(pid), "the server to stop")
    assert not server.socket_path(served.root).exists()
    assert "stopped" not in served("shutdown").stderr   # none left

    _edit(served.root / "BUILD", '"one"', '"five"')
    assert served.build("--max_idle_secs=1").returncode == 0
    idle = served.pids()[-1]
    _wait_until(lambda: not alive(idle), "the idle server to exit")
    assert "no request for 1 s" in served.log()


def test_a_small_build_keeps_no_server_unless_asked(served):
    assert served("build", "//...", "--analysis_server=auto").returncode == 0
    assert served.pids() == []
    assert not server.socket_path(served.root).exists()


def test_a_server_directory_others_may_enter_is_not_used(served):
    directory = server.socket_path(served.root).parent
    directory.chmod(0o755)
    try:
        result = served.build()
        assert result.returncode == 0, result.stderr
        assert served.pids() == []   # no server, and the build as without one
    finally:
        directory.chmod(0o700)


def test_an_answer_bp_cannot_read_is_no_answer(monkeypatch, tmp_path):
    """session._served reads a reply as a saved analysis is read (only the classes a plan
    or an error holds): anything else, or another command's analysis, and the build
    analyzes itself."""
    import pickle
    from types import SimpleNamespace

    from buildpy import session as session_module
    from buildpy.analysis.snapshot import Snapshot
    from buildpy.core.reads import ReadLog

    where = ("key", tmp_path / "saved", tmp_path / "digest")
    session = SimpleNamespace(workspace=SimpleNamespace(root=tmp_path))
    said: list[str] = []

    def served(reply, wait: bool = False) -> object:
        data = pickle.dumps(reply)

        def ask(root, request, loads, waiting):
            if wait:
                waiting()
            return loads(data)

        monkeypatch.setattr(server, "ask", ask)
        return session_module._served(session, where, said.append)

    assert served((Snapshot.of("key", 0, ReadLog(), SimpleNamespace()), "")) is None   # refused
    assert served((Snapshot.of("other", 0, ReadLog(), None), "")) is None
    assert served("another command's analysis") is None
    assert said == []
    assert served("another command's analysis", wait=True) is None
    assert said == [f"INFO: waiting for the analysis server of this workspace, busy with "
                    f"another build or a long analysis (its log: {server.log_path(tmp_path)}; "
                    f"`bp shutdown` stops it)"]


def test_a_client_says_once_that_it_waits_for_a_busy_server(monkeypatch, tmp_path):
    """A server that has not begun its answer after WAITING_AFTER seconds: the client
    says so once and waits on; one that goes away without an answer gives none (the
    build then analyzes itself)."""
    import pickle
    import socket
    import threading

    monkeypatch.setattr(server, "WAITING_AFTER", 0.05)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    path = server.socket_path(workspace)
    said: list[str] = []
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    listener.settimeout(30)

    def busy() -> None:   # reads the request, then goes away once the client waits
        connection, _ = listener.accept()
        with connection:
            server._receive(connection)
            deadline = time.monotonic() + 30
            while not said and time.monotonic() < deadline:
                time.sleep(0.01)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        assert server.ask(workspace, ("plan", None), pickle.loads,
                          waiting=lambda: said.append("waiting")) is None
    finally:
        thread.join(30)
        listener.close()
        path.unlink(missing_ok=True)
    assert said == ["waiting"]
