"""What a long-lived bp (watch mode) knows after a build that succeeded: each action
that build left up to date, with its outputs' digests. The next build, told every path
under the workspace that changed since (the file events of the whole tree, `bp-out/`
included), knows without looking at a file that the actions none of those paths touch,
and that read nothing from an action which is not known so, are still up to date.

That is exactly the up-to-date check (`Executor.up_to_date`) with its answers kept:
an action's key is its definition (the same Action), its environment (the same
process), its tools (checked again, they are outside the workspace), and its inputs'
digests (unchanged: no event on them, and their producers still up to date); its
outputs are as it left them (no event on them). The knowledge is dropped when another
bp built in the workspace meanwhile (`previous_build` is not the build it learned
from), when a build failed or was interrupted, with remote execution (outputs may stay
remote), and for actions that read from external repositories (which may be outside
the workspace, unwatched).
"""

from __future__ import annotations

import bisect
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from buildpy.actions.graph import Action

if TYPE_CHECKING:
    from buildpy.execution.digests import FileInfo
    from buildpy.execution.executor import Executor
    from buildpy.execution.scheduler import BuildReport


class Settled:
    def __init__(self) -> None:
        self._outputs: dict[str, tuple[Action, Mapping[str, FileInfo]]] = {}   # by output
        self._readers: dict[str, list[str]] = {}   # input path -> first outputs of readers
        self._writers: dict[str, str] = {}         # output path -> first output
        self._paths: list[str] | None = None       # every input and output, sorted
        self._build: float | None = None
        self._tools: dict = {}
        self._touched: set[str] | None = None   # since the build it learned from began
        self._known: Mapping[int, Mapping[str, FileInfo]] = {}   # what it told then

    def touch(self, paths: set[str] | None) -> None:
        """Paths that changed (absolute; None: anything may have changed)."""
        if paths is None:
            self._touched = None
        elif self._touched is not None:
            self._touched |= paths

    def learn(self, actions: Sequence[Action], report: BuildReport,
              executor: Executor) -> None:
        """After a build: the actions whose outputs it produced are up to date, if it
        succeeded (else nothing is known). Only what changed is learned anew: an
        action it knew and told up to date stays as it was."""
        known, self._known = self._known, {}
        self._touched = set()   # (what happens from now on is told by the next touch)
        if not report.ok or executor.remote is not None or executor.runs is None:
            self._outputs, self._readers, self._writers, self._paths = {}, {}, {}, None
            return
        self._build = executor.runs.build
        self._tools = executor.tool_identities
        produced = report.produced
        current: set[str] = set()
        for index, action in enumerate(actions):
            first = action.outputs[0]
            current.add(first)
            if index in known:   # told up to date (the same action): as it was
                continue
            if first in self._outputs:
                self._unlearn(first)
            if any(p.startswith("external/") for p in action.all_inputs):
                continue
            try:
                outputs = {path: produced[path] for path in action.outputs}
            except KeyError:   # not built by this build
                continue
            self._outputs[first] = (action, outputs)
            for path in action.all_inputs:
                self._readers.setdefault(path, []).append(first)
            self._writers.update(dict.fromkeys(outputs, first))
            self._paths = None
        for first in [f for f in self._outputs if f not in current]:
            self._unlearn(first)

    def _unlearn(self, first: str) -> None:
        action, outputs = self._outputs.pop(first)
        for path in action.all_inputs:
            readers = self._readers.get(path)
            if readers is not None and first in readers:
                readers.remove(first)
                if not readers:
                    del self._readers[path]
        for path in outputs:
            if self._writers.get(path) == first:
                del self._writers[path]
        self._paths = None

    def up_to_date(self, actions: Sequence[Action], workspace: Path, executor: Executor
                   ) -> dict[int, Mapping[str, FileInfo]]:
        """The actions (by index) known to be up to date, with their outputs."""
        touched = self._touched
        if touched is None or not self._outputs or executor.remote is not None or \
                executor.previous_build != self._build or executor.tools_changed(self._tools):
            return {}
        known: dict[str, int] = {}
        current: dict[str, Action] = {}
        for index, action in enumerate(actions):
            first = action.outputs[0]
            current[first] = action
            entry = self._outputs.get(first)
            if entry is not None and (entry[0] is action or entry[0] == action) and \
                    executor.looks_up(action):
                known[first] = index
        stale = self._touched_actions(touched, workspace)
        if stale is None:
            return {}
        # what reads an output of an action not known to be up to date is not either
        pending = [first for first in current if first not in known] + list(stale)
        while pending:
            first = pending.pop()
            known.pop(first, None)
            outputs = set(current[first].outputs) if first in current else set()
            if first in self._outputs:
                outputs.update(self._outputs[first][1])
            for path in outputs:
                for reader in self._readers.get(path, ()):
                    if reader in known:
                        pending.append(reader)
        self._known = {index: self._outputs[first][1] for first, index in known.items()}
        return self._known

    def _touched_actions(self, touched: set[str], workspace: Path) -> set[str] | None:
        """The actions (by first output) that read or write a touched path, or a path
        inside a touched directory (or one below a touched path: a directory input);
        None when a touched path is outside the workspace."""
        inside = str(workspace) + os.sep
        found: set[str] = set()
        writers = self._writers
        for absolute in touched:
            if not absolute.startswith(inside):
                return None
            path = absolute[len(inside):]
            affected = [path]
            parent = os.path.dirname(path)
            while parent:   # a file inside a directory that is an input or output
                affected.append(parent)
                parent = os.path.dirname(parent)
            if not os.path.lexists(absolute):   # perhaps a directory gone: what was in it
                if self._paths is None:
                    self._paths = sorted({*self._readers, *self._writers})
                start = bisect.bisect_left(self._paths, path + "/")
                while start < len(self._paths) and self._paths[start].startswith(path + "/"):
                    affected.append(self._paths[start])
                    start += 1
            for each in affected:
                found.update(self._readers.get(each, ()))
                if each in writers:
                    found.add(writers[each])
        return found
