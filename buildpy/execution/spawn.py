"""Spawns: one process to run for an action, and the strategies that run it.

A strategy knows how to start a process (directly, in a sandbox directory, under
bubblewrap) and how to stop its whole process group; it knows nothing of caches,
keys or the action graph.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol


@dataclass(frozen=True)
class Spawn:
    """A process to run: argv and env, in an exec root holding inputs at their paths."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    exec_root: Path
    inputs: tuple[str, ...]          # exec paths the process may read
    outputs: tuple[str, ...]         # exec paths it must write
    label: str = ""
    mnemonic: str = ""
    requires_network: bool = False
    timeout: float | None = None


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


class Cancelled(Exception):
    """The build is stopping (Ctrl-C, or a failure without --keep_going)."""


class Strategy(Protocol):
    name: str

    def run(self, spawn: Spawn, cancel: threading.Event) -> SpawnResult: ...


class ProcessRegistry:
    """Process groups of running actions, on disk: if bp dies (kill -9), the next bp
    kills what it left behind before it builds anything."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, pid: int) -> None:
        (self.directory / str(pid)).write_text(_start_time(pid) or "")

    def remove(self, pid: int) -> None:
        try:
            (self.directory / str(pid)).unlink()
        except FileNotFoundError:
            pass

    def reap(self) -> int:
        """Kill the groups a dead bp left running; returns how many."""
        killed = 0
        for entry in self.directory.iterdir():
            pid = int(entry.name) if entry.name.isdigit() else None
            if pid is not None and _start_time(pid) == entry.read_text() and entry.read_text():
                try:
                    os.killpg(pid, signal.SIGKILL)
                    killed += 1
                except (ProcessLookupError, PermissionError):
                    pass
            entry.unlink()
        return killed


def _start_time(pid: int) -> str | None:
    """A process's start time (from /proc), so a reused pid is not mistaken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def run_process(argv: list[str], env: Mapping[str, str], cwd: Path, cancel: threading.Event,
                timeout: float | None = None,
                registry: ProcessRegistry | None = None) -> SpawnResult:
    """Run argv in its own process group; kill the whole group on cancel or timeout."""
    start = time.monotonic()
    try:
        process = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   start_new_session=True)
    except OSError as error:
        return SpawnResult(127, b"", f"cannot run {argv[0]}: {error.strerror}\n".encode(),
                           time.monotonic() - start)
    if registry is not None:
        registry.add(process.pid)
    try:
        return _wait(process, cancel, timeout, start)
    finally:
        if registry is not None:
            registry.remove(process.pid)


def _wait(process: subprocess.Popen, cancel: threading.Event, timeout: float | None,
          start: float) -> SpawnResult:
    """Collect the output (no extra threads) while watching for cancel and timeout."""
    timed_out = False
    stdout = stderr = b""
    while True:
        try:
            stdout, stderr = process.communicate(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            pass
        if cancel.is_set() or (timeout is not None and time.monotonic() - start > timeout):
            timed_out = not cancel.is_set()
            kill_group(process)
            stdout, stderr = process.communicate()
            break
    if cancel.is_set() and not timed_out:
        raise Cancelled()
    return SpawnResult(process.returncode, stdout or b"", stderr or b"",
                       time.monotonic() - start, timed_out)


def kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class LocalStrategy:
    """Runs the process in the exec root itself: fast, and not hermetic."""

    name = "local"

    def __init__(self, registry: ProcessRegistry | None = None):
        self.registry = registry

    def run(self, spawn: Spawn, cancel: threading.Event) -> SpawnResult:
        return run_process(list(spawn.argv), spawn.env, spawn.exec_root, cancel, spawn.timeout,
                           self.registry)
