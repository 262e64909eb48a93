"""The workspace: where its root is, which directories are ignored, where packages are.

Knows the file system layout only; it does not evaluate BUILD or WORKSPACE files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from buildpy.core.errors import UserError
from buildpy.core.reads import ReadLog

WORKSPACE_FILES = ("WORKSPACE", "WORKSPACE.bazel")
ROOT_MARKERS = (*WORKSPACE_FILES, "MODULE.bazel", "REPO.bazel")   # a workspace's root
BUILD_FILES = ("BUILD.bazel", "BUILD")  # BUILD.bazel wins when both exist, as in Bazel
IGNORE_FILES = (".bazelignore", ".bpignore")
OUTPUT_DIR = "bp-out"
# Never packages: bp's own outputs, Bazel's convenience symlinks, version control.
_ALWAYS_SKIPPED_PREFIXES = ("bazel-", "bp-")
_ALWAYS_SKIPPED = {".git", ".hg", ".svn"}


@dataclass(frozen=True)
class Workspace:
    """A workspace root and the directories (workspace-relative) that bp must not enter."""

    root: Path
    ignored: frozenset[str] = frozenset()
    name: str = ""   # the name its WORKSPACE file gives it: workspace(name = "...")

    @staticmethod
    def at(root: Path, reads: ReadLog | None = None) -> "Workspace":
        """The workspace at `root`, its ignore and WORKSPACE files recorded in `reads`."""
        root = root.resolve()
        reads = reads or ReadLog()
        return Workspace(root, frozenset(_read_ignore_files(root, reads)),
                         _declared_name(root, reads))

    def is_ignored(self, rel: str) -> bool:
        """True if the workspace-relative directory `rel` or one of its parents is ignored."""
        if rel == "":
            return False
        first = rel.split("/", 1)[0]
        if first in _ALWAYS_SKIPPED or first.startswith(_ALWAYS_SKIPPED_PREFIXES):
            return True
        probe = rel
        while True:
            if probe in self.ignored:
                return True
            if "/" not in probe:
                return False
            probe = probe.rsplit("/", 1)[0]

    def build_file(self, package: str) -> Path | None:
        """The BUILD file of `package`, or None if that directory is not a package."""
        if self.is_ignored(package):
            return None
        directory = self.root / package if package else self.root
        for name in BUILD_FILES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
        return None

    def packages_below(self, package: str) -> Iterator[str]:
        """Every package at or below directory `package`, in sorted order."""
        start = self.root / package if package else self.root
        if self.is_ignored(package) or not start.is_dir():
            return
        stack = [(package, str(start))]
        found = []
        while stack:
            rel, path = stack.pop()
            try:
                entries = list(os.scandir(path))
            except OSError:
                continue
            if any(e.name in BUILD_FILES and e.is_file() for e in entries):
                found.append(rel)
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                child = f"{rel}/{entry.name}" if rel else entry.name
                if not self.is_ignored(child):
                    stack.append((child, entry.path))
        yield from sorted(found)


def find_workspace_root(start: Path) -> Path:
    """The nearest ancestor of `start` (itself included) holding a WORKSPACE (or
    MODULE.bazel, or REPO.bazel) file."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if any((directory / name).is_file() for name in ROOT_MARKERS):
            return directory
    raise UserError(
        f"not inside a workspace: no WORKSPACE, WORKSPACE.bazel or MODULE.bazel file in "
        f"'{start}' or any directory above it",
        hint="create an empty file named WORKSPACE at the root of your source tree "
             "(see WORKSPACE.example), or point bp at one with -C DIR",
    )


_WORKSPACE_NAME = re.compile(r"""^workspace\(\s*name\s*=\s*["']([A-Za-z0-9_.-]+)["']""", re.M)


def _declared_name(root: Path, reads: ReadLog) -> str:
    """The name in the WORKSPACE file's `workspace(name = "...")`, which Bazel wants as
    its first statement, with a literal name (read without evaluating the file)."""
    for file in WORKSPACE_FILES:
        path = root / file
        if reads.is_file(path):
            text = reads.read_bytes(path).decode("utf-8", "replace")   # (its evaluation
            match = _WORKSPACE_NAME.search(text)                      # reports bad bytes)
            return match[1] if match else ""
    return ""


def _read_ignore_files(root: Path, reads: ReadLog) -> Iterator[str]:
    for name in IGNORE_FILES:
        path = root / name
        if not reads.is_file(path):
            continue
        for line in reads.read_text(path).splitlines():
            line = line.split("#", 1)[0].strip().strip("/")
            if line.startswith("./"):
                line = line[2:]
            if line:
                yield line
