"""What one command spent its time on: its phases, each action on the lane it ran on and
how the build satisfied it, the measured critical path; written as a Chrome trace
(`--profile`) and as the end-of-build summary lines.

The scheduler, the executor and the remote side tell it when things start and end; it
knows actions and outcomes, not targets, rules, nor how an action runs.
"""

from __future__ import annotations

import heapq
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from buildpy.actions.graph import Action

MAIN = "Main Thread"
CRITICAL = "critical path"


@dataclass(frozen=True)
class Span:
    """Something that took time on a lane: a phase, or a step within an action."""

    lane: str
    name: str
    start: float
    end: float
    category: str


@dataclass(frozen=True)
class ActionRun:
    """One run (or cache hit) of an action: when, on which worker lane, how."""

    key: str            # its first output: the action's identity across scheduler runs
    label: str
    mnemonic: str
    description: str
    lane: int
    start: float
    end: float
    how: str            # executed locally, local cache hit, failed, interrupted, ...
    deps: tuple[str, ...]   # keys of the actions it waited for in this build
    ok: bool
    exit_code: int | None = None
    error: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


_HOW = {"local-cache": "local cache hit", "remote-cache": "remote cache hit",
        "remote": "executed remotely", "local": "executed locally",
        "sandboxed": "executed sandboxed", "linux-sandbox": "executed in linux-sandbox"}


class Telemetry:
    """The recorder of one command. Cheap per action (two clock readings and a tuple):
    an up-to-date action that the scheduler skips is not recorded at all."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.clock = clock
        self.origin = clock()              # the command's start
        self.origin_wall = wall()
        self.phases: list[Span] = []
        self.runs: list[ActionRun] = []
        self.steps: list[tuple[str, str, float, float]] = []   # (action key, name, start, end)
        self.hits = 0          # actions satisfied without running (up to date, cache hits)
        self.completed = 0     # actions that completed (ran or not)
        self._open: dict[str, list] = {}   # key -> [lane, start, action, deps, strategy]
        self._free: list[int] = []         # lanes free again, lowest first
        self._lanes = 0

    # ---- what the orchestrator says ---------------------------------------------------

    def phase(self, name: str, start: float, end: float | None = None,
              lane: str = MAIN) -> None:
        self.phases.append(Span(lane, name, start, self.clock() if end is None else end,
                                "build phase marker"))

    def counted(self, report) -> None:
        """A scheduler run's totals (a BuildReport)."""
        self.hits += report.cached
        self.completed += report.cached + report.executed

    # ---- what the scheduler and the executor say ---------------------------------------

    def started(self, action: Action, deps: Iterable[str]) -> None:
        lane = heapq.heappop(self._free) if self._free else self._next_lane()
        self._open[action.outputs[0]] = [lane, self.clock(), action, tuple(deps), ""]

    def _next_lane(self) -> int:
        self._lanes += 1
        return self._lanes

    def strategy(self, action: Action, name: str) -> None:
        """How the action runs, once it started (local, sandboxed, remote, ...)."""
        entry = self._open.get(action.outputs[0])
        if entry is not None:
            entry[4] = name

    def finished(self, action: Action, outcome) -> None:
        """The action's Outcome (None: finishing it failed; the report says why)."""
        entry = self._open.pop(action.outputs[0], None)
        if entry is None:
            return
        lane, start, _, deps, strategy = entry
        if outcome is None or not outcome.ok:
            how, ok = "failed", False
        elif outcome.source in ("local-cache", "remote-cache", "remote"):
            how, ok = _HOW[outcome.source], True
        elif not strategy:
            how, ok = ("local cache hit" if outcome.cached else "written by bp"), True
        else:
            how, ok = _HOW.get(strategy, f"executed ({strategy})"), True
        result = getattr(outcome, "result", None)
        self._close(action, lane, start, deps, how, ok,
                    result.exit_code if result is not None else None,
                    getattr(outcome, "error", None))

    def abandoned(self, action: Action) -> None:
        """The build stopped while the action ran."""
        entry = self._open.pop(action.outputs[0], None)
        if entry is not None:
            lane, start, _, deps, _ = entry
            self._close(action, lane, start, deps, "interrupted", False, None, "interrupted")

    def _close(self, action: Action, lane: int, start: float, deps: tuple[str, ...],
               how: str, ok: bool, exit_code: int | None, error: str | None) -> None:
        self.runs.append(ActionRun(
            action.outputs[0], action.owner_label, action.mnemonic,
            action.progress_message or f"{action.mnemonic} {action.owner_label}", lane,
            start, self.clock(), how, deps, ok, exit_code, error))
        heapq.heappush(self._free, lane)

    def step(self, action: Action, name: str, start: float) -> None:
        """A step of a running action (a cache lookup, an upload...) from `start` to now;
        safe from other threads (one append)."""
        self.steps.append((action.outputs[0], name, start, self.clock()))

    # ---- what it all comes to ---------------------------------------------------------

    def critical_path(self) -> list[ActionRun]:
        """The chain of actions of this build, each waiting for the one before, whose
        measured durations add up to the most (an action's attempts add up; a cache
        hit counts its restore). Dependencies first."""
        merged = _merged(self.runs)
        longest: dict[str, float] = {}
        before: dict[str, str | None] = {}
        for run in sorted(merged.values(), key=lambda r: r.end):   # dependencies first
            best, via = 0.0, None
            for dep in run.deps:
                if dep in longest and longest[dep] > best:
                    best, via = longest[dep], dep
            longest[run.key] = best + run.duration
            before[run.key] = via
        if not longest:
            return []
        key: str | None = max(longest, key=longest.__getitem__)
        chain = []
        while key is not None:
            chain.append(merged[key])
            key = before[key]
        return chain[::-1]

    def summary(self, now: float | None = None, longest: int = 3) -> list[str]:
        """The end-of-build lines: elapsed time, the critical path and its longest
        actions, the cache hit rate."""
        elapsed = (self.clock() if now is None else now) - self.origin
        chain = self.critical_path()
        line = (f"INFO: Elapsed time: {elapsed:.2f} s, critical path: "
                f"{sum(r.duration for r in chain):.2f} s")
        top = sorted(chain, key=lambda r: -r.duration)[:longest]
        if top:
            line += " (" + ", ".join(f"{r.mnemonic} {r.label} {r.duration:.2f} s"
                                     for r in top) + ")"
        lines = [line]
        if self.completed:
            lines.append(f"INFO: Cache hit rate: {100 * self.hits // self.completed}% "
                         f"({self.hits} of {self.completed} actions)")
        return lines

    # ---- --profile ----------------------------------------------------------------------

    def trace(self, command: str, build_id: str) -> dict:
        """The Chrome trace (Trace Event Format): phases on their lanes, each action on
        the worker lane it ran on with its steps inside it, and the critical path again
        on a lane of its own, one action after the other."""
        from buildpy import __version__

        pid = 1
        events: list[dict] = [{"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                               "ts": 0, "args": {"name": f"bp {command}"}}]
        tids: dict[str, int] = {MAIN: 0, CRITICAL: 1}
        for span in self.phases:
            tids.setdefault(span.lane, len(tids))
        first_worker = len(tids)
        names = {tid: name for name, tid in tids.items()}
        names.update({first_worker + lane - 1: f"action lane {lane}"
                      for lane in range(1, self._lanes + 1)})
        for tid, name in sorted(names.items()):
            events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                           "ts": 0, "args": {"name": name}})
            events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
                           "ts": 0, "args": {"sort_index": tid}})

        def us(at: float) -> int:
            return max(0, round((at - self.origin) * 1e6))

        def complete(name: str, category: str, tid: int, start: float, end: float,
                     args: dict | None = None) -> dict:
            begin = us(start)
            event = {"ph": "X", "name": name, "cat": category, "pid": pid, "tid": tid,
                     "ts": begin, "dur": max(0, us(end) - begin)}
            if args:
                event["args"] = args
            return event

        for span in self.phases:
            events.append(complete(span.name, span.category, tids[span.lane], span.start,
                                   span.end))
        chain = self.critical_path()
        critical = {r.key for r in chain}
        by_key: dict[str, list[ActionRun]] = {}
        for run in self.runs:
            by_key.setdefault(run.key, []).append(run)
            args = {"target": run.label, "mnemonic": run.mnemonic, "how": run.how,
                    "primary output": run.key}
            if run.key in critical:
                args["critical path"] = True
            events.append(complete(run.description, "action processing",
                                   first_worker + run.lane - 1, run.start, run.end, args))
        for key, name, start, end in list(self.steps):
            run = next((r for r in by_key.get(key, ()) if r.start <= start <= r.end), None)
            if run is not None:   # (a step of an action abandoned midway may outlast it)
                events.append(complete(name, "action step", first_worker + run.lane - 1,
                                       start, min(end, run.end)))
        for run in chain:
            events.append(complete(run.description, CRITICAL, tids[CRITICAL], run.start,
                                   run.end, {"target": run.label, "mnemonic": run.mnemonic,
                                             "duration (s)": round(run.duration, 6)}))
        return {"traceEvents": events, "displayTimeUnit": "ms",
                "otherData": {"bp_version": __version__, "command": command,
                              "build_id": build_id,
                              "start_time": self.origin_wall}}

    def write_trace(self, path: Path, command: str, build_id: str) -> None:
        """Write the trace to `path` (gzipped when it ends in .gz, as Bazel's); atomically:
        a temp name, then a rename."""
        data = json.dumps(self.trace(command, build_id), separators=(",", ":")).encode()
        if path.suffix == ".gz":
            import gzip

            data = gzip.compress(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.bp-tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def _merged(runs: list[ActionRun]) -> dict[str, ActionRun]:
    """One run per action: its attempts' durations added up, ending with the last."""
    merged: dict[str, ActionRun] = {}
    for run in runs:
        known = merged.get(run.key)
        if known is None:
            merged[run.key] = run
        else:   # another attempt: from the first start, as long as both together
            total = known.duration + run.duration
            merged[run.key] = ActionRun(run.key, run.label, run.mnemonic, run.description,
                                        run.lane, run.end - total, run.end, run.how,
                                        known.deps, run.ok, run.exit_code, run.error)
    return merged
