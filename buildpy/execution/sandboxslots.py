"""linux-sandbox slots: one bubblewrap for each action running at once, kept for the
whole build, whose helper (sandboxhelper.py) makes each action's namespaces and starts it.

One bubblewrap per action cost about 3.7 ms of CPU here, most of it making the user and
network namespaces, mounting the system directories and starting bubblewrap itself; the
helper makes only what differs from one action to the next (docs/execution.md,
"Strategies"). A slot runs one action at a time. When an action is abandoned or times
out, its slot is killed whole (its PID namespace takes every process of the action with
it) and the next action starts a new one. Knows bubblewrap's command line for a slot and
the helper's protocol; not spawns' trees, which sandbox.py lays out.
"""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from buildpy.execution import sandboxhelper
from buildpy.execution.spawn import (
    FreeList, ProcessRegistry, SpawnResult, captured, give_back_capture, take_capture,
)

READY_TIMEOUT = 10.0   # seconds for a new slot's helper to start
CLOSE_TIMEOUT = 1.0    # seconds for the idle slots to end at the end of a build


class SlotError(OSError):
    """A slot's bubblewrap or helper could not start (the message says why)."""


def slot_argv(bwrap: str, shared: list[str], base: Path) -> list[str]:
    """bubblewrap's command line for a slot: the namespaces and mounts every action
    shares (`shared`), /dev read-only (each action gets its own /dev/shm), the host's tree
    read-only and the sandbox `base` writable as the helper's sources, then the helper,
    as the first process of the PID namespace (it reaps the actions)."""
    python = os.path.realpath(sys.executable)
    return [bwrap, *shared, "--as-pid-1", "--remount-ro", "/dev",   # (`shared` ends with /tmp)
            "--tmpfs", sandboxhelper.SOURCES, "--ro-bind", "/", sandboxhelper.HOST,
            "--bind", os.fspath(base), sandboxhelper.SANDBOXES, "--chdir", "/", "--",
            sandboxhelper.HOST + python, "-I", "-S", "-c", _helper_source()]


_source: list[str] = []


def _helper_source() -> str:
    """sandboxhelper.py's text, run by `python -c` (the slot sees no bp to import)."""
    if not _source:
        _source.append(Path(sandboxhelper.__file__).read_text())
    return _source[0]


def _ignored() -> list[int]:
    """The signals this process ignores that a process it starts keeps ignored (Python
    ignores SIGPIPE and SIGXFSZ itself, and subprocess puts them back)."""
    own = (signal.SIGPIPE, getattr(signal, "SIGXFSZ", signal.SIGPIPE))
    return [int(n) for n in signal.valid_signals()
            if n not in own and signal.getsignal(n) == signal.SIG_IGN]


class Slot:
    """One slot's bubblewrap and the socket to its helper."""

    def __init__(self, argv: list[str], registry: ProcessRegistry | None,
                 wait: bool = True):
        """Start the slot and, with `wait`, wait for its helper to be ready (else the
        first `send` does)."""
        self.registry = registry
        self._ready = False
        ours, theirs = socket.socketpair()
        errors = tempfile.TemporaryFile()
        started = registry.starting() if registry is not None else ProcessRegistry.now()
        try:
            self.process = subprocess.Popen(
                [*argv, str(theirs.fileno()), ",".join(map(str, _ignored()))],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
                start_new_session=True)
        except OSError as error:
            ours.close()
            raise SlotError(error.errno, f"cannot start bubblewrap: {error.strerror}") \
                from None
        finally:
            theirs.close()
        if registry is not None:
            registry.add(self.process.pid, started)
        self.channel = ours
        self._errors = errors
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Wait for the helper's word that it is ready; SlotError if it does not come."""
        if self._ready:
            return
        ours, errors = self.channel, self._errors
        ready = select.select([ours], [], [], READY_TIMEOUT)[0] and ours.recv(256)
        if ready != sandboxhelper.READY:
            self.close()
            errors.seek(0)
            detail = (ready or b"").decode(errors="replace").strip() or \
                errors.read().decode(errors="replace").strip() or "no answer"
            errors.close()
            raise SlotError(f"the linux-sandbox helper did not start ({detail})")
        errors.close()
        self._ready = True

    def send(self, request: dict, stdout: int, stderr: int) -> None:
        self.wait_ready()
        body = json.dumps(request).encode()
        socket.send_fds(self.channel, [struct.pack("!Q", len(body))], [stdout, stderr])
        self.channel.sendall(body)

    def answered(self) -> bool:
        return bool(select.select([self.channel], [], [], 0)[0])

    def answer(self) -> int | None:
        """The action's exit code; None if the slot died (it was killed)."""
        line = b""
        while not line.endswith(b"\n"):
            try:
                chunk = self.channel.recv(64)
            except OSError:
                return None
            if not chunk:
                return None
            line += chunk
        return int(line)

    def kill(self) -> None:
        """Kill the slot with its action; its socket stays open (and reads as ended)
        until `close()`, so that its number is not reused meanwhile."""
        if self.process.returncode is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        if self.registry is not None:
            self.registry.remove(self.process.pid)

    def close(self, until: float | None = None) -> None:
        """Close the socket, then kill the slot, or with `until` (a time.monotonic()),
        give its helper until then to see the socket closed and end (each process then
        waits for its child, so that the slot's time counts in bp's children's)."""
        self.channel.close()
        if until is not None and _ended_by(self.process, until):
            if self.registry is not None:
                self.registry.remove(self.process.pid)
        self.kill()


def _ended_by(process: subprocess.Popen, until: float) -> bool:
    """Whether `process` ends by `until`, woken by its pidfd the moment it does
    (Popen.wait with a timeout polls, sleeping ever longer between looks: most of what
    closing the slots took). Waits for it when it ended."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except OSError:   # (a kernel without pidfds)
        pidfd = None
    if pidfd is not None:
        try:
            if not select.select([pidfd], [], [], max(0.0, until - time.monotonic()))[0]:
                return False
        finally:
            os.close(pidfd)
    try:
        process.wait(max(0.0, until - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    return True


class Slots(FreeList):
    """The slots of one strategy: taken for an action, given back after it."""

    def __init__(self, argv: list[str], registry: ProcessRegistry | None):
        super().__init__(functools.partial(Slot, argv, registry))

    def prestart(self) -> None:
        """Start a slot now, free for the first action: its helper gets ready meanwhile
        (the action waits for it, or fails over as for any slot that cannot start)."""
        self.give_back(self._make(wait=False))

    def close(self) -> None:
        slots = self.drain()   # (idle: each helper ends as soon as it sees its socket
        for slot in slots:     # close, all of them at once)
            slot.channel.close()
        until = time.monotonic() + CLOSE_TIMEOUT
        for slot in slots:
            slot.close(until)


class SlotRunning:
    """An action running in a slot, as spawn.Running is for a process of its own:
    `fileno()` polls readable when it ended, `finish()` collects its result (`then`
    post-processes it), `abandon()` kills it (with its slot) and runs `cleanup`."""

    def __init__(self, slots: Slots, request: dict, timeout: float | None):
        self.slots = slots
        self.timeout = timeout
        self.timed_out = False
        self.ended = False
        self.then: Callable[[SpawnResult], SpawnResult] = lambda result: result
        self.cleanup: Callable[[], None] = lambda: None
        self.slot = slots.take()
        self.capture = take_capture()
        try:
            self.slot.send(request, self.capture[0].fileno(), self.capture[1].fileno())
        except OSError:
            give_back_capture(self.capture)
            self.slot.close()
            raise
        self.started = time.monotonic()

    def fileno(self) -> int:
        return self.slot.channel.fileno()

    def exited(self) -> bool:
        return self.slot.answered()

    def overdue(self, now: float) -> bool:
        return self.timeout is not None and not self.timed_out and \
            now - self.started > self.timeout

    def kill_for_timeout(self) -> None:
        self.timed_out = True
        self.slot.kill()

    def finish(self) -> SpawnResult:
        code = self.slot.answer()
        self.ended = True
        if code is None:   # its slot was killed, as a process of its own would have been
            code = -signal.SIGKILL
            self.slot.close()
        else:
            self.slots.give_back(self.slot)
        return self.then(captured(self.capture, code, self.started, self.timed_out))

    def abandon(self) -> None:
        self.ended = True
        self.slot.close()
        give_back_capture(self.capture)
        self.cleanup()
