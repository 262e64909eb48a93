"""The orchestrator: opens a workspace, wires the phases together, runs a command's work.

Commands in cli.py call these functions; they hold no state between invocations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from buildpy.core.errors import BpError
from buildpy.core.label import Label, PackageId
from buildpy.core.pattern import TargetPattern, parse_pattern
from buildpy.core.workspace import Workspace, find_workspace_root
from buildpy.loading.graph import TargetGraph, build_target_graph
from buildpy.loading.loader import Loader
from buildpy.loading.patterns import expand_patterns


@dataclass(frozen=True)
class Session:
    """One command's view of a workspace: where it is, where the user stands, the loader."""

    workspace: Workspace
    offset: str          # the working directory, relative to the workspace root
    loader: Loader

    def parse_patterns(self, words: list[str]) -> list[TargetPattern]:
        return [parse_pattern(w, self.offset,
                              lambda path: self.loader.is_package(PackageId("", path)))
                for w in words]


def workspace_root(directory: str | None) -> Path:
    return find_workspace_root(Path(directory) if directory else Path.cwd())


def open_session(directory: str | None, eval_timeout: float = 60.0) -> Session:
    root = workspace_root(directory)
    workspace = Workspace.at(root)
    cwd = Path.cwd().resolve()
    offset = ""
    if directory is None and cwd != workspace.root and workspace.root in cwd.parents:
        offset = cwd.relative_to(workspace.root).as_posix()
    loader = Loader(workspace, eval_timeout=eval_timeout)
    loader.workspace_settings()
    return Session(workspace, offset, loader)


@dataclass(frozen=True)
class Loaded:
    """The result of loading patterns: the matched labels and their checked graph."""

    labels: tuple[Label, ...]
    graph: TargetGraph
    errors: tuple[BpError, ...] = ()


def load_patterns(session: Session, words: list[str], keep_going: bool = False) -> Loaded:
    patterns = session.parse_patterns(words)
    labels, errors = expand_patterns(session.loader, patterns, keep_going)
    graph = build_target_graph(session.loader, labels, keep_going)
    return Loaded(tuple(labels), graph, tuple(errors))
