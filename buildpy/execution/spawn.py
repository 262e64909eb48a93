"""Spawns: one process to run for an action, and the strategies that run it.

A strategy knows how to start a process (directly, in a sandbox directory, under
bubblewrap) and how to stop its whole process group; it knows nothing of caches,
keys or the action graph.
"""

from __future__ import annotations

import os
import re
import signal
import select
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol


@dataclass(frozen=True)
class Spawn:
    """A process to run: argv and env, in an exec root holding inputs at their paths."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    exec_root: Path
    inputs: tuple[str, ...]          # exec paths the process may read
    outputs: tuple[str, ...]         # exec paths it must write
    output_directories: tuple[str, ...] = ()   # those of them that are directories
    output_symlinks: tuple[str, ...] = ()   # those that are symbolic links, kept as links
    input_symlinks: tuple[str, ...] = ()    # inputs that are symbolic links, staged as links
    label: str = ""
    mnemonic: str = ""
    requires_network: bool = False
    timeout: float | None = None
    working_directory: str = ""      # exec path the process starts in ("": the root)
    scratch_directories: tuple[str, ...] = ()   # exec paths made empty for the process
                                                # and dropped after it (a test's TMPDIR)
    rooted_env: tuple[str, ...] = ()   # env variables holding exec paths, made absolute
                                       # against the root the process runs in

    def environment(self, root: Path) -> dict[str, str]:
        """The env, with the `rooted_env` exec paths made absolute against `root` (the exec
        root, or a sandbox standing in for it)."""
        env = dict(self.env)
        for name in self.rooted_env:
            env[name] = os.path.join(root, env[name])
        return env


@dataclass(frozen=True)
class SpawnResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""
    duration: float = 0.0
    timed_out: bool = False
    undeclared_reads: tuple[str, ...] = ()   # files read but not declared (--tracing)
    sandbox: Path | None = None              # kept with --sandbox_debug
    notes: tuple[str, ...] = field(default_factory=tuple)   # warnings to show
    error: str | None = None    # the strategy refused what the process left (the action
                                # fails with this reason, whatever its exit code)
    remote_error: bool = False  # `error` is the remote side's (exit 34, as Bazel's)
    remote_outputs: tuple = ()  # (exec path, (sha256, size, executable)) of output files
                                # left remote (--remote_download_minimal)
    remote_hit: bool = False    # the remote cache's result, not a run


class Cancelled(Exception):
    """The build is stopping (Ctrl-C, or a failure without --keep_going)."""


class Strategy(Protocol):
    name: str

    def start(self, spawn: Spawn) -> Running: ...

    def run(self, spawn: Spawn, cancel: threading.Event) -> SpawnResult: ...

    def close(self) -> None:
        """The build is over: remove what the strategy kept for its actions."""


_JOURNAL_LINE = re.compile(rb"([+-])([0-9]+)(?: ([0-9]+(?:\.[0-9]*)?))?")


class ProcessRegistry:
    """Process groups of running actions, in a journal on disk: if bp dies (kill -9), the
    next bp kills what it left behind before it builds anything.

    One line per start (`+pid boot-time`) and per end (`-pid`), appended with a single
    write each, so that thousands of actions cost no file creations. The start is the
    boot clock just before the spawn (reading /proc right after it would wait for the
    child's exec); a pid is only killed when its process is a session leader that
    started within moments of that time, so a reused pid is not taken for an action.

    From the first start on, bp is the subreaper of what the actions start (reaper.py):
    what leaves an action's group (`setsid`) is killed by `kill_orphans()` and `close()`.
    """

    WINDOW = (-0.05, 2.0)   # seconds around the recorded time a real start falls in
    ZOMBIE_SWEEP = 1.0      # seconds between sweeps for dead orphans (a /proc scan each)

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._live: set[int] = set()
        self._spared: set[int] = set()   # started by bp's own children, to outlive it
        self._subreaper = None
        self._lock = threading.Lock()
        self._swept = 0.0

    @staticmethod
    def now() -> float:
        """The clock `add` takes: seconds since boot, as /proc counts process starts."""
        return time.clock_gettime(time.CLOCK_BOOTTIME)

    def starting(self) -> float:
        """`now()`, just before a spawn; the first one makes bp the subreaper."""
        if self._subreaper is None:
            from buildpy.execution.reaper import Subreaper

            with self._lock:
                if self._subreaper is None:
                    self._subreaper = Subreaper()
        return self.now()

    def add(self, pid: int, started: float) -> None:
        self._live.add(pid)
        os.write(self._fd, f"+{pid} {started:.3f}\n".encode())

    def remove(self, pid: int) -> None:
        self._live.discard(pid)
        os.write(self._fd, f"-{pid}\n".encode())
        if self._subreaper is not None and time.monotonic() - self._swept > self.ZOMBIE_SWEEP:
            with self._lock:
                self._subreaper.reap_zombies(keep=set(self._live))
                self._swept = time.monotonic()

    def kill_orphans(self) -> int:
        """Kill what the actions started that left their groups and outlived its parent
        (not the running actions themselves); returns how many."""
        if self._subreaper is None:
            return 0
        return self._subreaper.kill_orphans(keep=self._live | self._spared)

    def spare(self, pid: int) -> None:
        """Never kill `pid` as an orphan: a process bp's own child started to outlive
        the build (the analysis server), which comes to bp when that child exits."""
        self._spared.add(pid)

    def running(self) -> dict[int, float]:
        """The groups started and not yet ended, with their start times. Lines a crash
        cut short or a bad disk garbled are skipped."""
        alive: dict[int, float] = {}
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return alive
        for line in lines:
            entry = _JOURNAL_LINE.fullmatch(line)
            if entry is None:
                continue
            sign, pid, started = entry.groups()
            if sign == b"+" and started is not None:
                alive[int(pid)] = float(started)
            elif sign == b"-" and started is None:
                alive.pop(int(pid), None)
        return alive

    def reap(self) -> int:
        """Kill the groups a dead bp left running, empty the journal; returns how many."""
        killed = 0
        low, high = self.WINDOW
        for pid, started in self.running().items():
            leader = _session_leader_start(pid)
            if leader is not None and started + low <= leader <= started + high:
                try:
                    os.killpg(pid, signal.SIGKILL)
                    killed += 1
                except (ProcessLookupError, PermissionError):
                    pass
        os.ftruncate(self._fd, 0)
        return killed

    def close(self) -> None:
        """Kill what still runs (normally nothing: each process is reaped when it ends
        or the build stops) and the actions' orphans, stop being their subreaper, close
        the journal."""
        live = set(self._live)
        try:
            for pid in live:   # not reaped yet, so the pid is still theirs
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if self._subreaper is not None:
                self._subreaper.close(keep=live | self._spared)
        finally:
            os.close(self._fd)


def _session_leader_start(pid: int) -> float | None:
    """When process `pid` started (seconds since boot), if it leads its own session as
    an action does; else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().decode(errors="replace").rsplit(")", 1)[1].split()
    except OSError:
        return None
    if int(fields[3]) != pid:   # fields[3] is the session id
        return None
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


class FreeList:
    """Things made once and used again by one action at a time: `take()` a free one (or
    a new one, from `make`), `give_back()` it after; safe across threads."""

    def __init__(self, make: Callable[[], Any]):
        self._make = make
        self._free: list = []
        self._lock = threading.Lock()

    def take(self) -> Any:
        with self._lock:
            if self._free:
                return self._free.pop()
        return self._make()

    def give_back(self, item: Any) -> None:
        with self._lock:
            self._free.append(item)

    def drain(self) -> list:
        """The free ones, no longer kept."""
        with self._lock:
            free, self._free = self._free, []
        return free


class _Captures(FreeList):
    """Files for the stdout and stderr of running processes, reused: files rather than
    pipes, so there is nothing to drain while a process runs."""

    def __init__(self):
        super().__init__(lambda: (tempfile.TemporaryFile(), tempfile.TemporaryFile()))

    def give_back(self, files: tuple) -> None:
        for handle in files:
            handle.seek(0)
            handle.truncate()
        super().give_back(files)


_captures = _Captures()


def _identity(result: SpawnResult) -> SpawnResult:
    return result


def _nothing() -> None:
    pass


class Running:
    """A started process (its own process group) and what to do when it ends.

    `fileno()` is a pidfd that polls readable when the process exits, so one thread can
    wait for many. `finish()` collects the result once it exited (or was killed);
    `abandon()` kills it and cleans up when the build stops. `then` post-processes the
    result (a sandbox moves its outputs back), `cleanup` undoes the staging on abandon.
    """

    def __init__(self, process: subprocess.Popen, started: float, timeout: float | None,
                 registry: ProcessRegistry | None, capture: tuple):
        self.process = process
        self.started = started
        self.timeout = timeout
        self.registry = registry
        self.capture = capture
        self.timed_out = False
        self.then: Callable[[SpawnResult], SpawnResult] = _identity
        self.cleanup: Callable[[], None] = _nothing
        try:
            self.pidfd: int | None = os.pidfd_open(process.pid)
        except OSError:   # Linux < 5.3: the caller polls `exited()`
            self.pidfd = None

    def fileno(self) -> int | None:
        return self.pidfd

    def exited(self) -> bool:
        return self.process.poll() is not None

    def overdue(self, now: float) -> bool:
        return self.timeout is not None and not self.timed_out and \
            now - self.started > self.timeout

    def kill_for_timeout(self) -> None:
        self.timed_out = True
        kill_group(self.process)

    @property
    def ended(self) -> bool:
        """Whether it was finished or abandoned."""
        return self.process.returncode is not None

    def _reap(self) -> None:
        kill_group(self.process)   # whatever it left behind, before the pid can be reused
        self.process.wait()
        if self.registry is not None:
            self.registry.remove(self.process.pid)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def finish(self) -> SpawnResult:
        """The result of the exited (or killed) process, post-processed by `then`."""
        self._reap()
        return self.then(captured(self.capture, self.process.returncode, self.started,
                                  self.timed_out))

    def abandon(self) -> None:
        """Kill the process group and undo the staging: the build is stopping."""
        self._reap()
        _captures.give_back(self.capture)
        self.cleanup()


def captured(capture: tuple, exit_code: int, started: float, timed_out: bool) -> SpawnResult:
    """The result of a process that ended with `exit_code`, its output read from the
    `capture` files (given back for the next process)."""
    out, err = capture
    out.seek(0)
    err.seek(0)
    result = SpawnResult(exit_code, out.read(), err.read(), time.monotonic() - started,
                         timed_out)
    _captures.give_back(capture)
    return result


def take_capture() -> tuple:
    """Files for a process's stdout and stderr: `captured` gives them back."""
    return _captures.take()


def give_back_capture(capture: tuple) -> None:
    """The capture of a process whose output nobody reads (it was abandoned)."""
    _captures.give_back(capture)


def start_process(argv: list[str], env: Mapping[str, str], cwd: Path,
                  timeout: float | None = None,
                  registry: ProcessRegistry | None = None) -> Running:
    """Start argv in its own process group; raises OSError when it cannot start."""
    capture = _captures.take()
    started = registry.starting() if registry is not None else ProcessRegistry.now()
    try:
        process = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                   stdout=capture[0], stderr=capture[1],
                                   start_new_session=True)
    except BaseException:
        _captures.give_back(capture)
        raise
    if registry is not None:
        registry.add(process.pid, started)
    return Running(process, time.monotonic(), timeout, registry, capture)


def cannot_start(argv: list[str], error: OSError) -> SpawnResult:
    return SpawnResult(127, b"", f"cannot run {argv[0]}: {error.strerror}\n".encode())


def wait(running: Running, cancel: threading.Event) -> SpawnResult:
    """Block until `running` ends; kill it on timeout; on cancel kill it and raise
    Cancelled."""
    exited = None
    if running.fileno() is not None:
        exited = select.poll()
        exited.register(running.fileno(), select.POLLIN)
    try:
        while True:
            if exited is not None:
                if exited.poll(100):
                    break
            elif running.exited():
                break
            else:
                time.sleep(0.01)
            if cancel.is_set():
                running.abandon()
                raise Cancelled()
            if running.overdue(time.monotonic()):
                running.kill_for_timeout()
    except BaseException:
        if not running.ended:
            running.abandon()
        raise
    return running.finish()


def run_process(argv: list[str], env: Mapping[str, str], cwd: Path, cancel: threading.Event,
                timeout: float | None = None,
                registry: ProcessRegistry | None = None) -> SpawnResult:
    """Run argv in its own process group and wait; kill the whole group on cancel
    (raising Cancelled) or timeout. Whatever it leaves running when it exits is killed."""
    return start_and_wait(lambda: start_process(argv, env, cwd, timeout, registry), argv,
                          cancel)


def start_and_wait(start: Callable[[], Running], argv: list[str] | tuple[str, ...],
                   cancel: threading.Event) -> SpawnResult:
    """`wait` for what `start()` starts; a program that cannot start gives exit 127."""
    try:
        running = start()
    except OSError as error:
        return cannot_start(list(argv), error)
    return wait(running, cancel)


def kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class BlockingRun:
    """`run()`, for strategies that have `start()`: start, then wait."""

    def run(self, spawn: Spawn, cancel: threading.Event) -> SpawnResult:
        return start_and_wait(lambda: self.start(spawn), spawn.argv, cancel)


class LocalStrategy(BlockingRun):
    """Runs the process in the exec root itself: fast, and not hermetic."""

    name = "local"

    def __init__(self, registry: ProcessRegistry | None = None):
        self.registry = registry

    def start(self, spawn: Spawn) -> Running:
        root = spawn.exec_root
        return start_process(list(spawn.argv), spawn.environment(root),
                             root / spawn.working_directory, spawn.timeout, self.registry)

    def close(self) -> None:
        pass
