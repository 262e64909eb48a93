"""Bounds on one Starlark evaluation, and what to do when starlark-pyo3 fails inside.

A deadline and a memory bound checked by starlark-pyo3's check_cancelled callback; Rust
panics (pyo3_runtime.PanicException, a BaseException) recognised and turned into user
errors naming the file; the report a panic prints on stderr by itself held back. Knows
nothing of packages, labels or what is being evaluated.
"""

from __future__ import annotations

import os
import re
import resource
import sys
import tempfile
import time
from typing import Any

from buildpy.core.errors import UserError

MAX_EVAL_MEMORY = 2 << 30   # how much one file's evaluation may grow the process


class Bounds:
    """The check_cancelled callback of one evaluation (starlark-pyo3 calls it about every
    1,000 instructions): stops it past a deadline, or once the process's peak memory has
    grown by MAX_EVAL_MEMORY since it began. Straight-line code runs too few instructions
    to be checked; what it makes too large ends in a Rust panic (see panic_error)."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.memory = MAX_EVAL_MEMORY
        self.memory_limit = _peak_memory() + self.memory
        self.exceeded: str | None = None   # what stopped the evaluation, as a phrase
        self.hint: str | None = None
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        if time.monotonic() > self.deadline:
            self.exceeded = f"took longer than {self.timeout:g}s"
            self.hint = "look for a runaway loop or comprehension in this file"
        elif self.calls % 8 == 0 and _peak_memory() > self.memory_limit:
            self.exceeded = f"used more than {self.memory >> 20} MiB of memory"
            self.hint = "look for a value that grows without bound (a list or string " \
                        "built in a loop)"
        return self.exceeded is not None


def _peak_memory() -> int:
    """The process's peak resident memory in bytes (one cheap system call)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class StderrHold:
    """Holds what is written to file descriptor 2 while Starlark runs (the outermost
    evaluation only), and passes it on when that evaluation ends, without the report a
    Rust panic prints there itself (and its backtrace, with RUST_BACKTRACE set): the
    panic comes back as an exception, which bp reports in its own words."""

    def __init__(self) -> None:
        self._file: Any = None
        self._pid = 0
        self._saved = -1
        self._depth = 0

    def __enter__(self) -> "StderrHold":
        self._depth += 1
        if self._depth == 1:
            if self._file is None or self._pid != os.getpid():   # a forked child: its own
                self._file = tempfile.TemporaryFile()
                self._pid = os.getpid()
            sys.stderr.flush()
            self._saved = os.dup(2)
            os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._depth -= 1
        if self._depth:
            return
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        fd = self._file.fileno()
        size = os.fstat(fd).st_size
        if not size:
            return
        os.lseek(fd, 0, os.SEEK_SET)
        held = b""
        while len(held) < size:
            chunk = os.read(fd, size - len(held))
            if not chunk:
                break
            held += chunk
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        if error is not None and is_panic(error):   # the report runs to the end
            held = _PANIC_REPORT.sub(b"", held)
        if held:
            os.write(2, held)


_PANIC_REPORT = re.compile(rb"\n?^thread '[^\n]* panicked at .*", re.DOTALL | re.MULTILINE)


def is_panic(error: BaseException) -> bool:
    """A Rust panic inside starlark-pyo3 (pyo3_runtime.PanicException, which derives
    from BaseException, so that `except Exception` misses it)."""
    return type(error).__name__ == "PanicException"


def panic_error(context: str, display: str | None, panic: BaseException) -> UserError:
    where = f" in {display}" if display else ""
    return UserError(
        f"{context}: Starlark failed{where}: {str(panic).strip() or 'a panic'}",
        hint="a value probably grew too large (strings and lists hold at most 4 GiB); "
             "look for one doubled or multiplied many times")
