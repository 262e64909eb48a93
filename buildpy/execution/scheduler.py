"""Runs the needed part of an action graph in parallel: longest critical path first,
at most `jobs` at a time, stopping cleanly on failure or Ctrl-C.

Knows the action graph and the executor's Outcome; not caches, keys or processes.
"""

from __future__ import annotations

import heapq
import select
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

from buildpy.actions.graph import Action, ActionGraph, ActionKind, claim_outputs, inputs_made
from buildpy.actions.tests import TEST_MNEMONIC
from buildpy.execution.digests import FileInfo
from buildpy.execution.executor import Executor, Outcome, Pending
from buildpy.execution.spawn import SpawnResult
from buildpy.execution.telemetry import Telemetry


# bp's own actions (files written, runfiles trees linked: the executor's worker thread
# runs them) under way at once, beside the --jobs processes: enough to keep the worker busy
OWN_AT_ONCE = 4


class Progress(Protocol):
    def started(self, action: Action, total: int) -> None: ...
    def runs_remotely(self, action: Action) -> None: ...
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
    sources: dict[str, int] = field(default_factory=dict)   # local-cache, remote-cache,
    #                                                          remote, local -> actions

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors and not self.interrupted


class Feed(Protocol):
    """More of the action graph while the build runs (analysis still going on in
    another process): polled on `fileno()`; `receive()` gives what arrived, as (new
    actions, files newly wanted) pairs; `ended` once nothing more will come, and
    `failed` if it ended early."""

    ended: bool
    failed: bool

    def fileno(self) -> int: ...
    def receive(self) -> list[tuple[Sequence[Action], Sequence[str]]]: ...


class Scheduler:
    """Runs what the wanted files need, longest critical path first. The graph may
    grow while it runs (`Feed`): actions arrive dependencies first, so an input whose
    producer has not arrived is a source file.

    A failed action for which `retry(outcome)` is true runs again (a flaky test's next
    attempt); a failed test does not stop the build (its dependents, if any, wait)."""

    def __init__(self, graph: ActionGraph, executor: Executor, jobs: int,
                 keep_going: bool, progress: Progress,
                 durations: Mapping[tuple[str, str], float] | None = None,
                 retry: Callable[[Outcome], bool] | None = None,
                 telemetry: Telemetry | None = None,
                 settled: Mapping[int, Mapping[str, FileInfo]] | None = None):
        """`settled`: actions (by index) known to be up to date, with their outputs,
        without looking at their files (a long-lived bp's, see settled.py)."""
        self.actions: list[Action] = list(graph.actions)
        # the actions that make each action's inputs (None: not looked up yet)
        self._made: list[tuple[int, ...] | None] = list(graph.made_inputs())
        self._settled = settled or {}
        self.producers: dict[str, int] = dict(graph.producers)
        self.executor = executor
        self.jobs = max(1, jobs)
        self.keep_going = keep_going
        self.progress = progress
        self.durations = durations or {}
        self.retry = retry
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.stopped = False
        self.report = BuildReport()
        self.wanted: list[str] = []   # every path asked for
        self._needed: set[int] = set()
        self._deps: dict[int, set[int]] = {}
        self._dependents: dict[int, list[int]] = {}
        self._waiting: dict[int, int] = {}
        self._succeeded: set[int] = set()
        self._failed: set[int] = set()
        self._blocked: set[int] = set()
        self._priority: dict[int, float] = {}
        self._ready: list[tuple[float, int]] = []   # (-priority, index) of processes
        self._ready_own: list[tuple[float, int]] = []   # of bp's own actions
        self._running: dict[int, tuple[int, Pending]] = {}   # pidfd (or -1 - index)
        self._own_running = 0   # of them, bp's own actions (they hold no job)
        self._exits = select.poll()
        self._done = 0

    # ---- the graph, as it grows -----------------------------------------------------

    def add(self, actions: Sequence[Action]) -> None:
        """More actions; one that writes what another writes is an error (UserError)."""
        first = len(self.actions)
        self.actions.extend(actions)
        self._made += [None] * len(actions)
        for index in range(first, len(self.actions)):
            claim_outputs(self.producers, self.actions, index)

    def want(self, paths: Sequence[str]) -> None:
        """Build `paths` too: what makes them, and everything that needs."""
        self.wanted.extend(paths)
        producers, made, needed = self.producers, self._made, self._needed
        deps_of, dependents, succeeded = self._deps, self._dependents, self._succeeded
        stack = [producers[p] for p in paths if p in producers]
        new: list[int] = []
        settled = self._settled
        known: list[int] = []   # up to date, and so is all they need (counted, logged)
        while stack:
            index = stack.pop()
            if index in needed:
                continue
            needed.add(index)
            deps = made[index]
            if deps is None:   # (an action the graph grew by)
                deps = made[index] = inputs_made(self.actions[index], producers)
            stack += deps
            if index in settled:
                known.append(index)
                continue
            new.append(index)
            deps_of[index] = set(deps)
            dependents[index] = []
        if known:
            self._settle(known)
        self.report.total += len(new)
        for index in new:
            waiting = 0
            for dep in deps_of[index]:
                if dep not in succeeded:
                    dependents[dep].append(index)
                    waiting += 1
            self._waiting[index] = waiting
        stopped = self._failed | self._blocked
        if stopped:   # behind a failure: never runs (nor does what waits on it)
            for index in new:
                if not deps_of[index].isdisjoint(stopped):
                    self._blocked.add(index)
                    self._blocked.update(self._transitive(index))
        for index in new:
            if self._waiting[index] == 0 and index not in self._blocked:
                self._push(0.0, index)

    def needed_actions(self) -> list[Action]:
        """Every action the wanted files need."""
        return [self.actions[i] for i in sorted(self._needed)]

    def _settle(self, indices: list[int]) -> None:
        """Actions known to be up to date: their outputs made, counted as local cache
        hits. (Nothing waits on them, so they need no edges.)"""
        self.report.total += len(indices)
        self._up_to_date([self._settled[index] for index in indices])
        self._succeeded.update(indices)
        self._done += len(indices)
        self.executor.settled([self.actions[index] for index in indices])

    def prioritize(self) -> None:
        """Longest critical path first, over all that is needed (once the graph is
        whole; until then, actions go in the order they arrived)."""
        self._priority = self._critical_paths()
        for ready in (self._ready, self._ready_own):
            ready[:] = [(-self._priority[i], i) for _, i in ready]
            heapq.heapify(ready)

    # ---- the run --------------------------------------------------------------------

    def run(self, paths: list[str], feed: Feed | None = None) -> BuildReport:
        """Run what `paths` need, and what `feed` adds. One thread: processes are
        started and their exits awaited on pidfds, so no worker threads contend for the
        interpreter."""
        self.want(paths)
        if feed is None:
            self.prioritize()
        else:
            self._exits.register(feed.fileno(), select.POLLIN)
        report = self.report
        try:
            while True:
                self._start_ready()
                feeding = feed is not None and not feed.ended and not self.stopped
                if not self._running and not feeding:
                    break
                polled = all(slot >= 0 for slot in self._running)
                events = self._exits.poll(100 if polled else 10)
                self.progress.tick(self._done, report.total)
                fed = feeding and any(fd == feed.fileno() for fd, _ in events)
                ended = [fd for fd, _ in events if fd in self._running]
                ended += [slot for slot, (_, p) in self._running.items()
                          if slot < 0 and p.running.exited()]
                collected = []
                for slot in ended:
                    index, pending = self._running.pop(slot)
                    self._own_running -= _own(pending.action)
                    if slot >= 0:
                        self._exits.unregister(slot)
                    collected.append((index, pending, self._finish(pending)))
                if fed:
                    self._take(feed)
                self._start_ready()   # refill the free slots first: the bookkeeping waits
                for index, pending, result in collected:
                    self._finished(index, self._complete(pending, result))
                now = time.monotonic()
                for _, pending in self._running.values():
                    if pending.running.overdue(now):
                        pending.running.kill_for_timeout()
        except KeyboardInterrupt:
            report.interrupted = True
            self._stop()
        except BaseException:
            self._stop()
            raise
        report.skipped = len(self._blocked)
        return report

    def _take(self, feed: Feed) -> None:
        for actions, wanted in feed.receive():
            self.add(actions)
            self.want(wanted)
        if feed.ended:
            self._exits.unregister(feed.fileno())
            if feed.failed:
                self._stop()
            else:
                self.prioritize()

    def _release(self, index: int) -> None:
        self._succeeded.add(index)
        for dependent in self._dependents[index]:
            self._waiting[dependent] -= 1
            if self._waiting[dependent] == 0 and dependent not in self._blocked:
                self._push(-self._priority.get(dependent, 0.0), dependent)

    def _finished(self, index: int, outcome: Outcome | None) -> None:
        report = self.report
        self.telemetry.finished(self.actions[index], outcome)
        if outcome is not None and not outcome.ok and self.retry is not None and \
                self.retry(outcome):
            self._push(-self._priority.get(index, 0.0), index)
            return
        self._done += 1
        if outcome is None or not outcome.ok:
            self._failed.add(index)
            if outcome is not None:
                report.failed.append(outcome)
                self.progress.finished(outcome, self._done, report.total)
            self._blocked.update(self._transitive(index))
            if not self.keep_going and (outcome is None or
                                        outcome.action.mnemonic != TEST_MNEMONIC):
                self._stop()
            return
        report.produced.update(outcome.outputs)
        report.cached += outcome.cached
        report.executed += not outcome.cached
        source = outcome.source or ("local-cache" if outcome.cached else "local")
        report.sources[source] = report.sources.get(source, 0) + 1
        self.progress.finished(outcome, self._done, report.total)
        self._release(index)

    def _push(self, priority: float, index: int) -> None:
        heapq.heappush(self._ready_own if _own(self.actions[index]) else self._ready,
                       (priority, index))

    def _start_ready(self) -> None:
        """Start what is ready: bp's own actions (`OWN_AT_ONCE` under way), then
        processes while fewer than `jobs` run."""
        while not self.stopped:
            if self._ready_own and self._own_running < OWN_AT_ONCE:
                ready = self._ready_own
            elif self._ready and len(self._running) - self._own_running < self.jobs:
                ready = self._ready
            else:
                return
            self._start(heapq.heappop(ready)[1])

    def _start(self, index: int) -> None:
        report = self.report
        inputs = self._unchanged(index)
        if inputs is None:   # the fast path: no key, no cache
            self._done += 1
            self._release(index)
            return
        self.progress.started(self.actions[index], report.total)
        self.telemetry.started(self.actions[index], (
            self.actions[d].outputs[0] for d in self._deps[index]))
        step = self._begin(index, inputs)
        if isinstance(step, Pending):
            self.telemetry.strategy(step.action, step.strategy)
            if step.strategy == "remote":
                self.progress.runs_remotely(step.action)
            fd = step.running.fileno()
            slot = fd if fd is not None else -1 - index
            self._running[slot] = (index, step)
            self._own_running += _own(step.action)
            if fd is not None:
                self._exits.register(fd, select.POLLIN)
        else:
            self._finished(index, step)

    def _stop(self) -> None:
        """No more starts; kill what runs (its results are not wanted)."""
        self.stopped = True
        for slot, (_, pending) in list(self._running.items()):
            if slot >= 0:
                self._exits.unregister(slot)
            self.executor.abandon(pending)
            self.telemetry.abandoned(pending.action)
        self._running.clear()
        self._own_running = 0

    def _begin(self, index: int, inputs: dict[str, FileInfo] | str
               ) -> Outcome | Pending | None:
        action = self.actions[index]
        if isinstance(inputs, str):
            return Outcome(action, "", False, False, {}, None,
                           f"missing input file '{inputs}'")
        return _reported(self.report, self.executor.begin, action, inputs)

    def _finish(self, pending: Pending) -> SpawnResult | None:
        return _reported(self.report, pending.running.finish)

    def _complete(self, pending: Pending, result: SpawnResult | None) -> Outcome | None:
        if result is None:   # finishing it failed (reported)
            return None
        return _reported(self.report, self.executor.complete, pending, result)

    def _inputs(self, action: Action) -> dict[str, FileInfo] | str:
        """The input digests, or the path of a missing input."""
        produced = self.report.produced
        inputs: dict[str, FileInfo] = {}
        for path in action.all_inputs:
            known = produced.get(path)
            if known is not None:
                inputs[path] = known
                continue
            try:
                inputs[path] = self.executor.digests.digest(path)
            except FileNotFoundError:
                return path
        return inputs

    def _unchanged(self, index: int) -> dict[str, FileInfo] | str | None:
        """None when the action is up to date (its outputs go into the report); else its
        inputs' digests, or the path of a missing input."""
        action = self.actions[index]
        inputs = self._inputs(action)
        if isinstance(inputs, str):
            return inputs
        outputs = self.executor.up_to_date(action, inputs)
        if outputs is None:
            return inputs
        self._up_to_date([outputs])
        return None

    def _up_to_date(self, outputs: Sequence[Mapping[str, FileInfo]]) -> None:
        """Actions found up to date (the outputs of each): counted as local cache hits,
        their outputs made."""
        report = self.report
        for each in outputs:
            report.produced.update(each)
        report.cached += len(outputs)
        report.sources["local-cache"] = report.sources.get("local-cache", 0) + len(outputs)

    def _transitive(self, index: int) -> set[int]:
        out: set[int] = set()
        stack = list(self._dependents[index])
        while stack:
            other = stack.pop()
            if other not in out:
                out.add(other)
                stack.extend(self._dependents[other])
        return out

    def _critical_paths(self) -> dict[int, float]:
        """Each action still to run: its weight plus the longest chain of actions
        waiting on it. (All that waits on an action still to run is still to run.)"""
        remaining = self._needed - self._succeeded
        deps_of, dependents, actions = self._deps, self._dependents, self.actions
        order: list[int] = []
        count = {i: len(dependents[i]) for i in remaining}
        stack = [i for i, n in count.items() if n == 0]
        while stack:
            index = stack.pop()
            order.append(index)
            for dep in deps_of[index]:
                left = count.get(dep)
                if left is not None:
                    count[dep] = left - 1
                    if left == 1:
                        stack.append(dep)
        priority: dict[int, float] = {}
        durations = self.durations
        for index in order:  # dependents before their dependencies
            action = actions[index]
            weight = durations.get((action.owner_label, action.mnemonic), 1.0) \
                if durations else 1.0
            waiting = dependents[index]
            priority[index] = weight + max([priority[d] for d in waiting]) if waiting \
                else weight
        for index in remaining:
            priority.setdefault(index, 1.0)
        return priority


def _own(action: Action) -> bool:
    """Whether bp does the action itself (the executor's worker thread does: it holds
    none of the --jobs slots), not a process."""
    return action.kind is not ActionKind.RUN


def _reported(report: BuildReport, step, *args):
    """`step(*args)`; an unexpected error goes into the report (the build goes on or
    stops) and gives None."""
    try:
        return step(*args)
    except Exception as error:  # noqa: BLE001 - reported, the build goes on or stops
        report.errors.append(f"{type(error).__name__}: {error}")
        return None
