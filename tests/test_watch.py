"""Watch mode end to end: `bp build|test|run --watch` as a real process in a temp
workspace, its stderr read line by line (each expected line awaited with a bound), and
the outputs after each iteration compared with a from-scratch build of a copy."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from buildpy.watch import Closure, editor_file, relevant_changes
from tests import differential

REPO = Path(__file__).resolve().parent.parent
WAIT = 60.0   # seconds: the bound on each awaited line

FILES = {
    "WORKSPACE": "",
    "p/BUILD": '''
        genrule(name = "up", srcs = ["a.txt"], outs = ["up.txt"], cmd = "tr a-z A-Z < $< > $@")
        genrule(name = "twice", srcs = [":up"], outs = ["twice.txt"], cmd = "cat $< $< > $@")
        genrule(name = "all", srcs = glob(["*.in"]), outs = ["all.txt"],
                cmd = "cat $(SRCS) /dev/null > $@")
        ''',
    "p/a.txt": "hello\n",
    "p/one.in": "one\n",
    "other/notes.txt": "not part of any build\n",
}


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def environment(tmp: Path) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"), HOME=str(home),
                PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")


class Watcher:
    """A `bp ... --watch` process in its own session; its stderr lines in a queue."""

    def __init__(self, root: Path, tmp: Path, *args: str):
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "buildpy", *args], cwd=root, env=environment(tmp),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern: str) -> re.Match:
        """The next line matching `pattern` (a regex), waited for at most WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                line = ""
                left = 0
            if line is None or left <= 0:
                raise AssertionError(f"no line matching {pattern!r}; output so far:\n"
                                     + "\n".join(self.seen))
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def summary(self) -> re.Match:
        """The next iteration's summary line, after which the watch waits again."""
        found = self.expect(r"^\[watch\] (.*): (\d+) actions? run, (\d+) cached, "
                            r"[\d.]+ s, (OK|FAILED \(exit \d+\))$")
        self.expect(r"^\[watch\] Watching \d+ files; Ctrl-C to stop$")
        return found

    def stop(self) -> int:
        """Ctrl-C; the exit code, once no process of its session is left."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(WAIT)
        assert session_members(self.process.pid) == []
        while (line := self.lines.get(timeout=WAIT)) is not None:
            self.seen.append(line)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(WAIT)


def session_members(sid: int) -> list[int]:
    """The processes (not zombies) whose session is `sid`, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry))
    return members


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def from_scratch_differences(root: Path, tmp: Path, *patterns: str) -> list[str]:
    """A copy of the workspace's sources built with an empty cache, compared file by
    file (bytes and modes) with the outputs the watch left."""
    fresh = tmp / "fresh"
    if fresh.exists():
        shutil.rmtree(fresh)
    differential.copy_sources(root, fresh / "ws")
    (fresh / "home").mkdir()
    result = subprocess.run([sys.executable, "-m", "buildpy", "build", *patterns],
                            cwd=fresh / "ws", env=dict(environment(tmp),
                                                       XDG_CACHE_HOME=str(fresh / "cache"),
                                                       HOME=str(fresh / "home")),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return differential.compare(differential.snapshot(root), differential.snapshot(
        fresh / "ws"), root, fresh / "ws", stale_ok=True)


@pytest.fixture
def watched(tmp_path):
    started: list[Watcher] = []

    def start(*args: str, files: dict[str, str] = FILES) -> tuple[Watcher, Path]:
        root = tmp_path / "ws"
        write(root, files)
        watcher = Watcher(root, tmp_path, *args)
        started.append(watcher)
        return watcher, root

    yield start
    for watcher in started:
        watcher.kill()


def test_a_watched_build_rebuilds_what_each_edit_affects(watched, tmp_path):
    watcher, root = watched("build", "--watch", "//p/...")
    first = watcher.summary()
    assert first.group(1, 2, 3, 4) == ("initial build", "3", "0", "OK")
    out = root / "bp-bin" / "p"
    assert (out / "twice.txt").read_text() == "HELLO\nHELLO\n"

    (root / "p/a.txt").write_text("world\n")   # a source: its two actions, nothing else
    edit = watcher.summary()
    assert edit.group(1, 2, 3, 4) == ("1 file changed (p/a.txt)", "2", "1", "OK")
    assert (out / "twice.txt").read_text() == "WORLD\nWORLD\n"
    assert from_scratch_differences(root, tmp_path, "//p/...") == []

    (root / "p/two.in").write_text("two\n")   # a new file in a globbed directory
    added = watcher.summary()
    assert added.group(1, 2, 4) == ("1 file changed (p/two.in)", "1", "OK")
    assert (out / "all.txt").read_text() == "one\ntwo\n"

    with open(root / "p/BUILD", "a") as build:   # a new target the pattern covers
        build.write('genrule(name = "new", outs = ["new.txt"], cmd = "echo new > $@")\n')
    target = watcher.summary()
    assert target.group(1, 2, 4) == ("1 file changed (p/BUILD)", "1", "OK")
    assert (out / "new.txt").read_text() == "new\n"
    assert from_scratch_differences(root, tmp_path, "//p/...") == []

    good = (root / "p/BUILD").read_text()
    (root / "p/BUILD").write_text(good + "genrule(name = \n")   # a syntax error: shown
    watcher.expect(r"ERROR: .*//p")
    broken = watcher.summary()
    assert broken.group(1, 4) == ("1 file changed (p/BUILD)", "FAILED (exit 2)")
    (root / "p/BUILD").write_text(good + "# fixed\n")   # fixed: the watch resumes
    fixed = watcher.summary()
    assert fixed.group(1, 2, 4) == ("1 file changed (p/BUILD)", "0", "OK")

    # none of these starts an iteration: the next summary names only the real edit
    (root / "bp-out" / "scratch.txt").write_text("bp's own directory\n")
    (root / "p" / ".a.txt.swp").write_text("an editor's swap file\n")
    (root / "p" / "a.txt~").write_text("an editor's backup\n")
    (root / "other/notes.txt").write_text("outside the closure\n")
    (root / "p/a.txt").write_text("again\n")
    last = watcher.summary()
    assert last.group(1, 2, 4) == ("1 file changed (p/a.txt)", "2", "OK")
    assert (out / "twice.txt").read_text() == "AGAIN\nAGAIN\n"
    assert from_scratch_differences(root, tmp_path, "//p/...") == []

    for name, text in (("p/a.txt", "burst\n"), ("p/one.in", "uno\n"), ("p/a.txt", "last\n")):
        (root / name).write_text(text)   # a burst of saves: one iteration
    burst = watcher.summary()
    assert burst.group(1, 2, 4) == ("2 files changed (p/a.txt, p/one.in)", "3", "OK")
    assert (out / "twice.txt").read_text() == "LAST\nLAST\n"
    assert from_scratch_differences(root, tmp_path, "//p/...") == []
    assert watcher.stop() == 0
    assert "[watch] stopped" in watcher.seen


def test_an_edit_in_the_same_clock_tick_as_the_build_is_seen(watched):
    """The racy-timestamp guard holds in one long-lived process: an edit that keeps
    size and mtime still rebuilds."""
    watcher, root = watched("build", "--watch", "//p:up")
    watcher.summary()
    source = root / "p/a.txt"
    before = source.stat()
    source.write_text("jello\n")   # same size
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))   # same mtime
    same = watcher.summary()
    assert same.group(1, 2, 4) == ("1 file changed (p/a.txt)", "1", "OK")
    assert (root / "bp-bin/p/up.txt").read_text() == "JELLO\n"
    assert watcher.stop() == 0


def test_bp_run_watch_restarts_the_program(watched, tmp_path):
    pids = tmp_path / "pids"
    files = {
        "WORKSPACE": "",
        "s/BUILD": 'sh_binary(name = "serve", srcs = ["serve.sh"], data = ["msg.txt"])\n',
        "s/serve.sh": f"#!/bin/sh\necho $$ >> {pids}\nsleep 300 &\nwait\n",
        "s/msg.txt": "v1\n",
    }
    watcher, root = watched("run", "--watch", "//s:serve", files=files)
    (root / "s/serve.sh").chmod(0o755)
    watcher.summary()
    deadline = time.monotonic() + WAIT
    while not (pids.exists() and pids.read_text().count("\n") >= 1):
        assert time.monotonic() < deadline, watcher.seen
        time.sleep(0.05)
    first = int(pids.read_text().split()[0])
    assert alive(first)
    (root / "s/msg.txt").write_text("v2\n")
    watcher.summary()
    while pids.read_text().count("\n") < 2:
        assert time.monotonic() < deadline + WAIT, watcher.seen
        time.sleep(0.05)
    second = int(pids.read_text().split()[1])
    assert second != first and not alive(first) and session_members(first) == []
    assert alive(second)
    build = root / "s/BUILD"
    build.write_text(build.read_text() + "sh_binary(\n")   # a failed rebuild: watch on
    assert watcher.summary().group(4) == "FAILED (exit 2)"
    assert alive(second) and pids.read_text().count("\n") == 2
    assert watcher.stop() == 0
    assert not alive(second) and session_members(second) == []


def test_bp_test_watch_runs_the_test_again_after_an_edit(watched):
    files = {
        "WORKSPACE": "",
        "t/BUILD": 'sh_test(name = "check", srcs = ["check.sh"], data = ["value.txt"])\n',
        "t/check.sh": "#!/bin/sh\ngrep -q good t/value.txt\n",
        "t/value.txt": "good\n",
    }
    watcher, root = watched("test", "--watch", "//t:check", files=files)
    (root / "t/check.sh").chmod(0o755)
    watcher.expect(r"^//t:check\s+PASSED")
    assert watcher.summary().group(4) == "OK"
    (root / "t/value.txt").write_text("bad\n")
    watcher.expect(r"^//t:check\s+FAILED")
    assert watcher.summary().group(1, 4) == ("1 file changed (t/value.txt)",
                                             "FAILED (exit 3)")
    (root / "t/value.txt").write_text("good again\n")
    watcher.expect(r"^//t:check\s+PASSED")
    assert watcher.summary().group(4) == "OK"
    assert watcher.stop() == 0


# ---- the closure and the event filter, in-process ------------------------------------

def test_editor_files_are_recognized():
    assert all(editor_file(n) for n in (".a.c.swp", ".a.c.swo", "a.c~", "4913", "5036",
                                        ".#a.c", "#a.c#"))
    assert not any(editor_file(n) for n in ("a.c", "BUILD", "4914", "swp", "a.txt"))


def test_only_changes_that_touch_the_closure_count(tmp_path):
    from watchfiles import Change

    root = tmp_path
    (root / "g").mkdir()
    (root / "g/new.c").write_text("")
    closure = Closure(files=frozenset({str(root / "p/a.c"), str(root / "p/BUILD")}),
                      listed=frozenset({str(root / "g")}), below=frozenset({str(root)}))
    changes = {(Change.modified, str(root / "p/a.c")),        # read: counts
               (Change.modified, str(root / "p/b.c")),        # not read
               (Change.added, str(root / "g/new.c")),         # a listed directory
               (Change.added, str(root / "g/gone.c")),        # made and removed: no
               (Change.deleted, str(root / "g/gone.c")),
               (Change.added, str(root / "g/.new.c.swp")),    # an editor's
               (Change.added, str(root / "bp-out/g/x")),      # bp's own
               (Change.added, str(root / "ignored/BUILD")),   # an ignored directory
               (Change.added, str(root / "q/BUILD"))}         # a new package below //...
    ignored = lambda directory: directory == "ignored"   # noqa: E731
    assert relevant_changes(changes, closure, root, ignored) == ["g/new.c", "p/a.c",
                                                                 "q/BUILD"]


def test_ctrl_c_during_a_build_exits_8_and_leaves_no_process(watched, tmp_path):
    marker = tmp_path / "action.pid"
    files = dict(FILES, **{
        "s/BUILD": f'genrule(name = "slow", srcs = ["in.txt"], outs = ["slow.txt"], '
                   f'cmd = "echo $$$$ > {marker}.tmp; mv {marker}.tmp {marker}; '
                   f'exec sleep 300")\n',
        "s/in.txt": "one\n"})
    watcher, root = watched("build", "--watch", "--spawn_strategy=local", "//s:slow",
                            files=files)
    deadline = time.monotonic() + WAIT
    while not marker.exists():   # the action runs
        assert time.monotonic() < deadline and watcher.process.poll() is None, watcher.seen
        time.sleep(0.05)
    action = int(marker.read_text())
    assert alive(action)
    assert watcher.stop() == 8
    assert "ERROR: build interrupted" in watcher.seen
    assert not alive(action) and session_members(action) == []


def test_a_reused_saved_analysis_still_watches_its_build_files(tmp_path):
    """The first iteration reuses the analysis a plain build saved; its BUILD file is in
    the closure all the same."""
    root = tmp_path / "ws"
    write(root, FILES)
    plain = subprocess.run([sys.executable, "-m", "buildpy", "build", "//p/..."], cwd=root,
                           env=environment(tmp_path), capture_output=True, text=True,
                           timeout=300)
    assert plain.returncode == 0, plain.stderr
    watcher = Watcher(root, tmp_path, "build", "--watch", "//p/...")
    try:
        assert watcher.summary().group(1, 2, 3) == ("initial build", "0", "3")
        build = root / "p/BUILD"
        build.write_text(build.read_text().replace("< $< > $@", "< $< | rev > $@", 1))
        edited = watcher.summary()
        assert edited.group(1, 2, 4) == ("1 file changed (p/BUILD)", "2", "OK")
        assert (root / "bp-bin/p/twice.txt").read_text() == "OLLEH\nOLLEH\n"
        assert watcher.stop() == 0
    finally:
        watcher.kill()


def test_a_full_table_of_file_watches_is_the_environments_fault():
    from buildpy.core.errors import EnvError
    from buildpy.watch import _next

    def events():
        raise OSError("OS file watch limit reached. about [\"/ws\"]")
        yield

    with pytest.raises(EnvError) as raised:
        _next(events(), Path("/ws"))
    assert raised.value.exit_code == 36
    assert raised.value.message.startswith("cannot watch the workspace /ws for changes: OS file")
    assert "fs.inotify.max_user_watches" in raised.value.hint
