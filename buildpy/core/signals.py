"""SIGTERM and SIGHUP stop a command as Ctrl-C does: they raise KeyboardInterrupt in the
main thread, so that the same code kills the running actions and exits with 8. Before
that code runs (while bp's modules load), buildpy/__main__.py ends bp at once with 8.

Knows signals only; what an interruption stops is the caller's business.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from typing import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
EXIT_INTERRUPTED = 8


_interruptions = 0


def interruptions() -> int:
    """How many stop signals (Ctrl-C included) have interrupted this process. Python
    code that Starlark calls may be interrupted, and Starlark then reports the
    KeyboardInterrupt as an error of the file it evaluates: whoever gets that error
    compares this count with the one from before the evaluation."""
    return _interruptions


def _ctrl_c(signum, frame) -> None:
    global _interruptions
    _interruptions += 1
    raise KeyboardInterrupt


def _interrupt(signum, frame) -> None:
    global _interruptions
    _interruptions += 1
    # once: a second signal must not cut short the cleanup the first one started
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)


# An interruption raised where Python cannot raise it (a weakref callback, as the import
# system runs: Python prints "Exception ignored in ..." and goes on) is raised again a
# moment later, by a timer, in whatever code runs then.
_LATER = 0.001   # seconds
_hooks: list = []   # the unraisable hooks stop_signals_interrupt took the place of


def _unraisable(event) -> None:
    if event.exc_type is not None and issubclass(event.exc_type, KeyboardInterrupt):
        signal.signal(signal.SIGALRM, _raise_later)
        signal.setitimer(signal.ITIMER_REAL, _LATER)
    else:
        _hooks[-1](event)


def _raise_later(signum, frame) -> None:
    while frame is not None:
        if frame.f_code is _unraisable.__code__:   # (raised there, it would be lost too)
            signal.setitimer(signal.ITIMER_REAL, _LATER)
            return
        frame = frame.f_back
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Within this block, SIGTERM and SIGHUP raise KeyboardInterrupt, as SIGINT does (in
    the main thread; elsewhere this does nothing); the previous handlers come back after
    it. An interruption Python cannot raise where it lands is raised a moment later."""
    previous = {}
    try:
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _ctrl_c)
        for number in STOP_SIGNALS:
            previous[number] = signal.signal(number, _interrupt)
    except ValueError:   # not the main thread: signals cannot be handled here
        pass
    if previous:
        _hooks.append(sys.unraisablehook)
        sys.unraisablehook = _unraisable
    try:
        yield
    finally:
        # an interruption still to be raised is raised here, as the block ends, not
        # later, outside it (unless the block ends with one already)
        pending = bool(previous) and signal.getsignal(signal.SIGALRM) is _raise_later
        if pending:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
        if previous:
            sys.unraisablehook = _hooks.pop()
        for number, handler in previous.items():
            signal.signal(number, handler)
        if pending and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
            raise KeyboardInterrupt
