"""A function run in a forked child process that sends values back while it runs.

The child starts with a copy of everything the parent has built so far (no pickling of
it), and its values cross a pipe pickled, each behind its length. The parent reads
without blocking, whenever `fileno()` polls readable.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import signal
import struct
import sys
from typing import Any, Callable

_HEADER = struct.Struct("<Q")
_PIPE_SIZE = 1 << 20   # fewer wake-ups of the reader; Linux allows 1 MiB by default


def can_fork() -> bool:
    return hasattr(os, "fork")


class Forked:
    """The parent's end: the values received, and how the child ended."""

    def __init__(self, pid: int, fd: int):
        self.pid = pid
        self._fd = fd
        self._buffer = bytearray()
        self.eof = False
        self.exit_code: int | None = None

    def fileno(self) -> int:
        return self._fd

    def receive(self) -> list[Any]:
        """The values that arrived whole since the last call (never blocks)."""
        while not self.eof:
            try:
                chunk = os.read(self._fd, _PIPE_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
                self._reap()
            self._buffer += chunk
        values = []
        start = 0
        while len(self._buffer) - start >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer, start)
            end = start + _HEADER.size + size
            if end > len(self._buffer):
                break
            values.append(pickle.loads(memoryview(self._buffer)[start + _HEADER.size:end]))
            start = end
        del self._buffer[:start]
        return values

    def _reap(self) -> None:
        if self.exit_code is None:
            _, status = os.waitpid(self.pid, 0)
            self.exit_code = os.waitstatus_to_exitcode(status)

    def close(self, wait: bool = False) -> None:
        """Wait for the child to end (or with `wait` False, kill it first), and close
        the pipe."""
        if self.exit_code is None and not wait:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.eof = True
        self._reap()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def start(work: Callable[[Callable[[Any], None]], None]) -> Forked:
    """Run `work(send)` in a forked child; each `send(value)` reaches the parent's
    `receive()`. The child exits when `work` returns (exit code 0) or raises (1:
    whatever it sent stays sent). Output the parent buffered is written first, so it is
    not written twice."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    read_fd, write_fd = os.pipe()
    try:
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    except (OSError, AttributeError):
        pass   # the default size works too, with more wake-ups
    pid = os.fork()
    if pid == 0:   # the child
        code = 1
        try:
            os.close(read_fd)
            # a live display in the parent may have swapped these for its own proxies,
            # whose locks another thread of the parent may have held when it forked
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
            work(lambda value: _send(write_fd, value))
            code = 0
        except BaseException:   # noqa: BLE001 - the parent learns it from the exit code
            pass
        finally:   # whatever happens, the child never returns into the parent's code
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except BaseException:   # noqa: BLE001 - closed, None, interrupted
                    pass
            os._exit(code)
    os.close(write_fd)
    os.set_blocking(read_fd, False)
    return Forked(pid, read_fd)


def _send(fd: int, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]
