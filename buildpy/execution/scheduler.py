"""Runs the needed part of an action graph in parallel: longest critical path first,
at most `jobs` at a time, stopping cleanly on failure or Ctrl-C.

Knows the action graph and the executor's Outcome; not caches, keys or processes.
"""

from __future__ import annotations

import heapq
import select
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Protocol

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
    """Runs actions as they become ready, at most `jobs` processes at a time.

    Actions can arrive while others run: `add` appends actions, `want` marks the files a
    build needs (and so everything their producers need), `pump` does what can be done
    without waiting, and `drain` runs the rest to the end. `run` is all of it at once. A
    build whose analysis is still going adds and wants as targets are analyzed, so that
    execution overlaps analysis.
    """

    def __init__(self, graph: ActionGraph, executor: Executor, jobs: int,
                 keep_going: bool, progress: Progress,
                 durations: Callable[[list[Action]], Mapping[tuple[str, str], float]]
                 | None = None):
        self.executor = executor
        self.jobs = max(1, jobs)
        self.keep_going = keep_going
        self.progress = progress
        self.durations = durations or (lambda actions: {})
        self.stopped = False
        self.actions: list[Action] = []
        self.producers: dict[str, int] = {}
        self.report = BuildReport()
        self._needed: set[int] = set()
        self._waiting: dict[int, int] = {}
        self._dependents: dict[int, list[int]] = {}
        self._succeeded: set[int] = set()
        self._unbuildable: set[int] = set()     # failed, or waits on a failure
        self._blocked: set[int] = set()         # waits on a failure
        self._priority: dict[int, float] = {}
        self._ready: list[tuple[float, int]] = []
        self._running: dict[int, tuple[int, Pending]] = {}   # pidfd (or -1 - index)
        self._exits = select.poll()
        self._done = 0
        self.add(graph.actions)

    def add(self, actions: Iterable[Action]) -> None:
        for action in actions:
            index = len(self.actions)
            self.actions.append(action)
            for output in action.outputs:
                self.producers.setdefault(output, index)   # a clash is analysis's error

    def want(self, paths: Iterable[str]) -> None:
        """Build `paths`: their producers, and all those need, join the build."""
        for path in paths:
            root = self.producers.get(path)
            if root is None or root in self._needed:
                continue
            self._needed.add(root)
            stack = [(root, iter(self._deps(root)))]
            while stack:   # depth first: an action joins after everything it needs
                index, deps = stack[-1]
                for dep in deps:
                    if dep not in self._needed:
                        self._needed.add(dep)
                        stack.append((dep, iter(self._deps(dep))))
                        break
                else:
                    stack.pop()
                    self._join(index)

    def _deps(self, index: int) -> set[int]:
        producers = self.producers
        return {producers[p] for p in self.actions[index].all_inputs
                if p in producers and producers[p] != index}

    def _join(self, index: int) -> None:
        self.report.total += 1
        self._dependents[index] = []
        waiting = 0
        for dep in self._deps(index):
            if dep in self._succeeded:
                continue
            if dep in self._unbuildable:
                self._unbuildable.add(index)
                self._blocked.add(index)
                return
            waiting += 1
            self._dependents[dep].append(index)
        self._waiting[index] = waiting
        self._priority[index] = 1.0   # until `drain` knows the critical paths
        if waiting == 0:
            heapq.heappush(self._ready, (-self._priority[index], index))

    def pump(self) -> None:
        """Start what is ready and collect what ended, without waiting."""
        self._start_ready()
        if self._running:
            self._step(0)

    def drain(self) -> BuildReport:
        """Run everything wanted to the end (or to the first failure without
        --keep_going, or Ctrl-C)."""
        self._prioritize()
        try:
            while self._ready or self._running:
                self._start_ready()
                if not self._running:
                    break
                polled = all(slot >= 0 for slot in self._running)
                self._step(100 if polled else 10)
                self.progress.tick(self._done, self.report.total)
        except KeyboardInterrupt:
            self.report.interrupted = True
            self.stop()
        self.report.skipped = len(self._blocked)
        return self.report

    def run(self, paths: list[str]) -> BuildReport:
        """Run what `paths` need. One thread: processes are started and their exits
        awaited on their pidfds, so no worker threads contend for the interpreter."""
        self.want(paths)
        return self.drain()

    def _step(self, timeout_ms: int) -> None:
        """Wait up to `timeout_ms` for exits; finish what ended."""
        report = self.report
        events = self._exits.poll(timeout_ms)
        ended = [fd for fd, _ in events]
        ended += [slot for slot, (_, p) in self._running.items()
                  if slot < 0 and p.running.exited()]
        collected = []
        for slot in ended:
            index, pending = self._running.pop(slot)
            if slot >= 0:
                self._exits.unregister(slot)
            collected.append((index, pending, self._finish(pending, report)))
        self._start_ready()   # refill the free slots first: the bookkeeping can wait
        for index, pending, result in collected:
            self._finished(index, self._complete(pending, result, report))
        now = time.monotonic()
        for _, pending in self._running.values():
            if pending.running.overdue(now):
                pending.running.kill_for_timeout()

    def _release(self, index: int) -> None:
        self._succeeded.add(index)
        for dependent in self._dependents[index]:
            self._waiting[dependent] -= 1
            if self._waiting[dependent] == 0 and dependent not in self._unbuildable:
                heapq.heappush(self._ready, (-self._priority[dependent], dependent))

    def _finished(self, index: int, outcome: Outcome | None) -> None:
        report = self.report
        self._done += 1
        if outcome is None or not outcome.ok:
            if outcome is not None:
                report.failed.append(outcome)
                self.progress.finished(outcome, self._done, report.total)
            self._unbuildable.add(index)
            after = self._transitive(index)
            self._blocked.update(after)
            self._unbuildable.update(after)
            if not self.keep_going:
                self.stop()
            return
        report.produced.update(outcome.outputs)
        report.cached += outcome.cached
        report.executed += not outcome.cached
        self.progress.finished(outcome, self._done, report.total)
        self._release(index)

    def _start_ready(self) -> None:
        report = self.report
        while self._ready and len(self._running) < self.jobs and not self.stopped:
            _, index = heapq.heappop(self._ready)
            inputs = self._unchanged(index, report)
            if inputs is None:   # the fast path: no key, no cache
                self._done += 1
                self._release(index)
                continue
            self.progress.started(self.actions[index], report.total)
            step = self._begin(index, inputs, report)
            if isinstance(step, Pending):
                fd = step.running.fileno()
                slot = fd if fd is not None else -1 - index
                self._running[slot] = (index, step)
                if fd is not None:
                    self._exits.register(fd, select.POLLIN)
            else:
                self._finished(index, step)

    def stop(self) -> None:
        """No more starts; kill what runs (its results are not wanted)."""
        self.stopped = True
        for slot, (_, pending) in list(self._running.items()):
            if slot >= 0:
                self._exits.unregister(slot)
            pending.running.abandon()
        self._running.clear()

    def _begin(self, index: int, inputs: dict[str, FileInfo] | str,
               report: BuildReport) -> Outcome | Pending | None:
        action = self.actions[index]
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
        action = self.actions[index]
        inputs = self._inputs(action, report)
        if isinstance(inputs, str):
            return inputs
        outputs = self.executor.up_to_date(action, inputs)
        if outputs is None:
            return inputs
        report.produced.update(outputs)
        report.cached += 1
        return None

    def _transitive(self, index: int) -> set[int]:
        out: set[int] = set()
        stack = list(self._dependents[index])
        while stack:
            other = stack.pop()
            if other not in out:
                out.add(other)
                stack.extend(self._dependents[other])
        return out

    def _prioritize(self) -> None:
        """Each waiting action's priority: its weight (its last duration) plus the
        longest chain of actions waiting on it; the ready ones are reordered."""
        pending = {i for i in self._needed if i not in self._succeeded
                   and i not in self._unbuildable}
        weights = self.durations([self.actions[i] for i in pending])
        count = {i: sum(d in pending for d in self._dependents[i]) for i in pending}
        order: list[int] = []
        stack = [i for i in pending if count[i] == 0]
        while stack:
            index = stack.pop()
            order.append(index)
            for dep in self._deps(index):
                if dep in count:
                    count[dep] -= 1
                    if count[dep] == 0:
                        stack.append(dep)
        priority = self._priority
        for index in order:  # dependents before their dependencies
            action = self.actions[index]
            priority[index] = weights.get((action.owner_label, action.mnemonic), 1.0) + max(
                (priority[d] for d in self._dependents[index] if d in pending), default=0.0)
        self._ready = [(-priority[i], i) for _, i in self._ready]
        heapq.heapify(self._ready)


def _reported(report: BuildReport, step, *args):
    """`step(*args)`; an unexpected error goes into the report (the build goes on or
    stops) and gives None."""
    try:
        return step(*args)
    except Exception as error:  # noqa: BLE001 - reported, the build goes on or stops
        report.errors.append(f"{type(error).__name__}: {error}")
        return None
