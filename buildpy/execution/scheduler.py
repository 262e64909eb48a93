"""Runs the needed part of an action graph in parallel: longest critical path first,
at most `jobs` at a time, stopping cleanly on failure or Ctrl-C.

Knows the action graph and the executor's Outcome; not caches, keys or processes.
"""

from __future__ import annotations

import heapq
import select
import time
from dataclasses import dataclass, field
from typing import Mapping, Protocol

from buildpy.actions.graph import Action, ActionGraph
from buildpy.execution.digests import FileInfo
from buildpy.execution.executor import Executor, Outcome, Pending
from buildpy.execution.spawn import SpawnResult


class Progress(Protocol):
    def started(self, action: Action, total: int) -> None: ...
    def finished(self, outcome: Outcome, done: int, total: int) -> None: ...
    def tick(self, done: int, total: int) -> None: ...


@dataclass
class BuildReport:
    total: int = 0
    executed: int = 0
    cached: int = 0
    failed: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)   # failures without an outcome
    skipped: int = 0
    interrupted: bool = False
    produced: dict[str, FileInfo] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors and not self.interrupted


class Scheduler:
    def __init__(self, graph: ActionGraph, executor: Executor, jobs: int,
                 keep_going: bool, progress: Progress,
                 durations: Mapping[tuple[str, str], float] | None = None):
        self.graph = graph
        self.executor = executor
        self.jobs = max(1, jobs)
        self.keep_going = keep_going
        self.progress = progress
        self.durations = durations or {}
        self.stopped = False

    def needed(self, paths: list[str]) -> list[int]:
        """The actions that produce `paths`, and everything those need."""
        seen: set[int] = set()
        stack = [self.graph.producers[p] for p in paths if p in self.graph.producers]
        while stack:
            index = stack.pop()
            if index in seen:
                continue
            seen.add(index)
            for path in self.graph.actions[index].all_inputs:
                producer = self.graph.producers.get(path)
                if producer is not None and producer not in seen:
                    stack.append(producer)
        return sorted(seen)

    def run(self, paths: list[str]) -> BuildReport:
        """Run what `paths` need. One thread: processes are started and their exits
        awaited on their pidfds, so no worker threads contend for the interpreter."""
        needed = self.needed(paths)
        actions = self.graph.actions
        deps = {i: {self.graph.producers[p] for p in actions[i].all_inputs
                    if p in self.graph.producers} for i in needed}
        dependents: dict[int, list[int]] = {i: [] for i in needed}
        for index, its_deps in deps.items():
            for dep in its_deps:
                dependents[dep].append(index)
        priority = self._critical_paths(needed, deps, dependents)
        waiting = {i: len(d) for i, d in deps.items()}
        ready = [(-priority[i], i) for i in needed if not deps[i]]
        heapq.heapify(ready)
        report = BuildReport(total=len(needed))
        blocked: set[int] = set()
        running: dict[int, tuple[int, Pending]] = {}   # pidfd (or -1 - index) -> action
        exits = select.poll()
        done = 0

        def release(index: int) -> None:
            for dependent in dependents[index]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0 and dependent not in blocked:
                    heapq.heappush(ready, (-priority[dependent], dependent))

        def finished(index: int, outcome: Outcome | None) -> None:
            nonlocal done
            done += 1
            if outcome is None or not outcome.ok:
                if outcome is not None:
                    report.failed.append(outcome)
                    self.progress.finished(outcome, done, report.total)
                blocked.update(self._transitive(index, dependents))
                if not self.keep_going:
                    self._stop(running, exits)
                return
            report.produced.update(outcome.outputs)
            report.cached += outcome.cached
            report.executed += not outcome.cached
            self.progress.finished(outcome, done, report.total)
            release(index)

        def start_ready() -> None:
            nonlocal done
            while ready and len(running) < self.jobs and not self.stopped:
                _, index = heapq.heappop(ready)
                inputs = self._unchanged(index, report)
                if inputs is None:   # the fast path: no key, no cache
                    done += 1
                    release(index)
                    continue
                self.progress.started(actions[index], report.total)
                step = self._begin(index, inputs, report)
                if isinstance(step, Pending):
                    fd = step.running.fileno()
                    slot = fd if fd is not None else -1 - index
                    running[slot] = (index, step)
                    if fd is not None:
                        exits.register(fd, select.POLLIN)
                else:
                    finished(index, step)

        try:
            while ready or running:
                start_ready()
                if not running:
                    break
                polled = all(slot >= 0 for slot in running)
                events = exits.poll(100 if polled else 10)
                self.progress.tick(done, report.total)
                ended = [fd for fd, _ in events]
                ended += [slot for slot, (_, p) in running.items()
                          if slot < 0 and p.running.exited()]
                collected = []
                for slot in ended:
                    index, pending = running.pop(slot)
                    if slot >= 0:
                        exits.unregister(slot)
                    collected.append((index, pending, self._finish(pending, report)))
                start_ready()   # refill the free slots first: the bookkeeping can wait
                for index, pending, result in collected:
                    finished(index, self._complete(pending, result, report))
                now = time.monotonic()
                for _, pending in running.values():
                    if pending.running.overdue(now):
                        pending.running.kill_for_timeout()
        except KeyboardInterrupt:
            report.interrupted = True
            self._stop(running, exits)
        report.skipped = len(blocked)
        return report

    def _stop(self, running: dict[int, tuple[int, Pending]], exits) -> None:
        """No more starts; kill what runs (its results are not wanted)."""
        self.stopped = True
        for slot, (_, pending) in list(running.items()):
            if slot >= 0:
                exits.unregister(slot)
            pending.running.abandon()
        running.clear()

    def _begin(self, index: int, inputs: dict[str, FileInfo] | str,
               report: BuildReport) -> Outcome | Pending | None:
        action = self.graph.actions[index]
        if isinstance(inputs, str):
            return Outcome(action, "", False, False, {}, None,
                           f"missing input file '{inputs}'")
        return _reported(report, self.executor.begin, action, inputs)

    def _finish(self, pending: Pending, report: BuildReport) -> SpawnResult | None:
        return _reported(report, pending.running.finish)

    def _complete(self, pending: Pending, result: SpawnResult | None,
                  report: BuildReport) -> Outcome | None:
        if result is None:   # finishing it failed (reported)
            return None
        return _reported(report, self.executor.complete, pending, result)

    def _inputs(self, action: Action, report: BuildReport) -> dict[str, FileInfo] | str:
        """The input digests, or the path of a missing input."""
        inputs: dict[str, FileInfo] = {}
        for path in action.all_inputs:
            known = report.produced.get(path)
            if known is not None:
                inputs[path] = known
                continue
            try:
                inputs[path] = self.executor.digests.digest(path)
            except FileNotFoundError:
                return path
        return inputs

    def _unchanged(self, index: int, report: BuildReport) -> dict[str, FileInfo] | str | None:
        """None when the action is up to date (its outputs go into the report); else its
        inputs' digests, or the path of a missing input."""
        action = self.graph.actions[index]
        inputs = self._inputs(action, report)
        if isinstance(inputs, str):
            return inputs
        outputs = self.executor.up_to_date(action, inputs)
        if outputs is None:
            return inputs
        report.produced.update(outputs)
        report.cached += 1
        return None

    def _transitive(self, index: int, dependents: dict[int, list[int]]) -> set[int]:
        out: set[int] = set()
        stack = list(dependents[index])
        while stack:
            other = stack.pop()
            if other not in out:
                out.add(other)
                stack.extend(dependents[other])
        return out

    def _critical_paths(self, needed: list[int], deps: dict[int, set[int]],
                        dependents: dict[int, list[int]]) -> dict[int, float]:
        """Each action's weight plus the longest chain of actions waiting on it."""
        order: list[int] = []
        count = {i: len(dependents[i]) for i in needed}
        stack = [i for i in needed if count[i] == 0]
        while stack:
            index = stack.pop()
            order.append(index)
            for dep in deps[index]:
                count[dep] -= 1
                if count[dep] == 0:
                    stack.append(dep)
        priority: dict[int, float] = {}
        for index in order:  # dependents before their dependencies
            action = self.graph.actions[index]
            weight = self.durations.get((action.owner_label, action.mnemonic), 1.0)
            priority[index] = weight + max((priority[d] for d in dependents[index]),
                                           default=0.0)
        for index in needed:
            priority.setdefault(index, 1.0)
        return priority


def _reported(report: BuildReport, step, *args):
    """`step(*args)`; an unexpected error goes into the report (the build goes on or
    stops) and gives None."""
    try:
        return step(*args)
    except Exception as error:  # noqa: BLE001 - reported, the build goes on or stops
        report.errors.append(f"{type(error).__name__}: {error}")
        return None
