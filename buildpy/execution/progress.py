"""Build progress for people: a live rich display on a terminal, plain lines otherwise.

Consumes the scheduler's events; knows nothing of how actions run.
"""

from __future__ import annotations

import shlex
import sys
import threading
import time
from typing import TextIO

from buildpy.actions.graph import Action
from buildpy.execution.executor import Outcome
from buildpy.execution.spawn import SpawnResult


def describe(action: Action) -> str:
    return action.progress_message or f"{action.mnemonic} {action.owner_label}"


class PlainProgress:
    """One line per action that ran (not per cache hit), and failures in full.

    Lines are written in batches, at most every `interval` seconds, and failures at
    once: a flushed write per action wakes a pipe's reader for every action, and with
    both cores busy bp waited on those writes (py-spy put 8% of its main thread in
    them, building 14,000 actions with stderr to a pipe).
    """

    def __init__(self, out: TextIO = sys.stderr, subcommands: bool = False,
                 verbose_failures: bool = False, interval: float = 0.2):
        self.out = out
        self.subcommands = subcommands
        self.verbose_failures = verbose_failures
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._written = time.monotonic()

    def _say(self, text: str, now: bool = False) -> None:
        """Buffer text (the caller holds the lock); write the buffer when it is due."""
        self._pending.append(text)
        if now or time.monotonic() - self._written >= self.interval:
            self._write()

    def _write(self) -> None:
        if self._pending:
            self.out.write("".join(self._pending))
            self._pending.clear()
            self.out.flush()
        self._written = time.monotonic()

    def started(self, action: Action, total: int) -> None:
        if self.subcommands and action.argv:
            with self._lock:
                self._say(f"SUBCOMMAND: # {action.owner} [{action.mnemonic}]\n"
                          f"  {' '.join(shlex.quote(a) for a in action.argv)}\n")

    def runs_remotely(self, action: Action) -> None:
        pass   # said when it ends, on its line

    def finished(self, outcome: Outcome, done: int, total: int) -> None:
        with self._lock:
            if not outcome.ok:
                self._say(failure_text(outcome, self.verbose_failures), now=True)
            elif not outcome.cached:
                where = " (remote)" if outcome.source == "remote" else ""
                self._say(f"[{done} / {total}] {describe(outcome.action)}{where}\n")
            if outcome.ok and outcome.result is not None:
                printed = printed_text(outcome.result)
                if printed:   # a compiler's warnings, shown again on cache hits (as Bazel)
                    self._say(f"INFO: From {describe(outcome.action)}:\n{printed}\n", now=True)
            for warning in outcome.warnings:
                self._say(f"WARNING: {warning}\n", now=True)

    def tick(self, done: int, total: int) -> None:
        if self._pending and time.monotonic() - self._written >= self.interval:
            with self._lock:
                self._write()

    def close(self) -> None:
        with self._lock:
            self._write()


def failure_text(outcome: Outcome, verbose: bool) -> str:
    action = outcome.action
    lines = [f"ERROR: {action.owner_label}: {action.mnemonic} failed: {outcome.error}"
             f" ({describe(action)})"]
    if verbose and action.argv:
        lines.append("  command: " + " ".join(shlex.quote(a) for a in action.argv))
    elif action.argv:
        lines.append("  (use --verbose_failures to see the command)")
    if outcome.result is not None:
        printed = printed_text(outcome.result)
        if printed:
            lines.append(printed)
    return "\n".join(lines) + "\n"


def printed_text(result: SpawnResult) -> str:
    """What an action printed, stdout then stderr."""
    texts = (stream.decode("utf-8", "replace").rstrip()
             for stream in (result.stdout, result.stderr))
    return "\n".join(t for t in texts if t)


class RichProgress(PlainProgress):
    """A live display: [done / total] actions, the running ones, elapsed time.

    Events only update the counts; rich draws them 8 times a second."""

    def __init__(self, out: TextIO = sys.stderr, subcommands: bool = False,
                 verbose_failures: bool = False, color: bool = True):
        super().__init__(out, subcommands, verbose_failures)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=out, force_terminal=True, no_color=not color)
        self.start = time.monotonic()
        self.running: dict[int, str] = {}
        self.done = 0
        self.total = 0
        self.live = Live(console=self.console, refresh_per_second=8, transient=True,
                         get_renderable=self._render)
        self.live.start()

    def _render(self):
        from rich.text import Text

        elapsed = time.monotonic() - self.start
        with self._lock:
            text = Text(f"[{self.done} / {self.total}] actions, {elapsed:.1f}s\n",
                        style="bold")
            for line in list(self.running.values())[:8]:
                text.append(f"    {line}\n")
        return text

    def started(self, action: Action, total: int) -> None:
        super().started(action, total)
        with self._lock:
            self.total = total
            self.running[id(action)] = describe(action)

    def runs_remotely(self, action: Action) -> None:
        with self._lock:
            if id(action) in self.running:
                self.running[id(action)] += " (remote)"

    def finished(self, outcome: Outcome, done: int, total: int) -> None:
        with self._lock:
            self.running.pop(id(outcome.action), None)
            self.done = done
        printed = printed_text(outcome.result) if outcome.ok and outcome.result else ""
        if printed:
            self.live.console.print(f"INFO: From {describe(outcome.action)}:\n{printed}",
                                    markup=False, highlight=False)
        if not outcome.ok or outcome.warnings:
            self.live.console.print(failure_text(outcome, self.verbose_failures)
                                    if not outcome.ok else "", end="")
            for warning in outcome.warnings:
                self.live.console.print(f"WARNING: {warning}")

    def close(self) -> None:
        self.live.stop()
        super().close()
