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


def describe(action: Action) -> str:
    return action.progress_message or f"{action.mnemonic} {action.owner_label}"


class PlainProgress:
    """One line per action that ran (not per cache hit), and failures in full."""

    def __init__(self, out: TextIO = sys.stderr, subcommands: bool = False,
                 verbose_failures: bool = False):
        self.out = out
        self.subcommands = subcommands
        self.verbose_failures = verbose_failures
        self._lock = threading.Lock()

    def started(self, action: Action, total: int) -> None:
        if self.subcommands and action.argv:
            with self._lock:
                self.out.write(f"SUBCOMMAND: # {action.owner} [{action.mnemonic}]\n"
                               f"  {' '.join(shlex.quote(a) for a in action.argv)}\n")

    def finished(self, outcome: Outcome, done: int, total: int) -> None:
        with self._lock:
            if not outcome.ok:
                self.out.write(failure_text(outcome, self.verbose_failures))
            elif not outcome.cached:
                self.out.write(f"[{done} / {total}] {describe(outcome.action)}\n")
            for warning in outcome.warnings:
                self.out.write(f"WARNING: {warning}\n")
            self.out.flush()

    def tick(self, done: int, total: int) -> None:
        pass

    def close(self) -> None:
        pass


def failure_text(outcome: Outcome, verbose: bool) -> str:
    action = outcome.action
    lines = [f"ERROR: {action.owner_label}: {action.mnemonic} failed: {outcome.error}"
             f" ({describe(action)})"]
    if verbose and action.argv:
        lines.append("  command: " + " ".join(shlex.quote(a) for a in action.argv))
    elif action.argv:
        lines.append("  (use --verbose_failures to see the command)")
    result = outcome.result
    if result is not None:
        for stream in (result.stdout, result.stderr):
            text = stream.decode("utf-8", "replace").rstrip()
            if text:
                lines.append(text)
    return "\n".join(lines) + "\n"


class RichProgress(PlainProgress):
    """A live display: [done / total] actions, the running ones, elapsed time."""

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
        self.live = Live(self._render(), console=self.console, refresh_per_second=8,
                         transient=True)
        self.live.start()

    def _render(self):
        from rich.text import Text

        elapsed = time.monotonic() - self.start
        text = Text(f"[{self.done} / {self.total}] actions, {elapsed:.1f}s\n", style="bold")
        for line in list(self.running.values())[:8]:
            text.append(f"    {line}\n")
        return text

    def started(self, action: Action, total: int) -> None:
        super().started(action, total)
        with self._lock:
            self.total = total
            self.running[id(action)] = describe(action)
        self.live.update(self._render())

    def finished(self, outcome: Outcome, done: int, total: int) -> None:
        with self._lock:
            self.running.pop(id(outcome.action), None)
            self.done = done
        if not outcome.ok or outcome.warnings:
            self.live.console.print(failure_text(outcome, self.verbose_failures)
                                    if not outcome.ok else "", end="")
            for warning in outcome.warnings:
                self.live.console.print(f"WARNING: {warning}")
        self.live.update(self._render())

    def tick(self, done: int, total: int) -> None:
        self.live.update(self._render())

    def close(self) -> None:
        self.live.stop()
