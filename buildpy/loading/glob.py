"""glob() for BUILD files: matching `*` and `**` patterns against a package's files.

Honours package boundaries (a subdirectory with its own BUILD file is not entered) and
ignored directories, as Bazel does. Knows nothing of Starlark or targets.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from buildpy.core.workspace import BUILD_FILES, Workspace


class GlobError(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def check_pattern(pattern: str) -> None:
    if not isinstance(pattern, str):
        raise GlobError(f"glob patterns must be strings, got {pattern!r}")
    if pattern == "":
        raise GlobError("empty glob pattern")
    if pattern.startswith("/"):
        raise GlobError(f"glob pattern '{pattern}' is absolute",
                        hint="glob patterns are relative to the package directory")
    for segment in pattern.split("/"):
        if segment == "":
            raise GlobError(f"glob pattern '{pattern}' contains an empty segment")
        if segment in (".", ".."):
            raise GlobError(f"glob pattern '{pattern}' contains a '{segment}' segment",
                            hint="glob() cannot reach outside its package")
        if "**" in segment and segment != "**":
            raise GlobError(f"glob pattern '{pattern}': '**' must be a whole path segment",
                            hint="write 'dir/**/*.c' rather than 'dir/**.c'")


@lru_cache(maxsize=1024)
def _segment_regex(segment: str) -> re.Pattern[str]:
    return re.compile("[^/]*".join(re.escape(part) for part in segment.split("*")))


def _match(segments: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if not segments:
        return not path
    head = segments[0]
    if head == "**":
        return any(_match(segments[1:], path[i:]) for i in range(len(path) + 1))
    return bool(path) and _segment_regex(head).fullmatch(path[0]) is not None \
        and _match(segments[1:], path[1:])


def list_package(workspace: Workspace, package: str) -> tuple[list[str], list[str]]:
    """(files, directories) of a package, relative to it, excluding subpackages."""
    root = workspace.root / package if package else workspace.root
    files: list[str] = []
    dirs: list[str] = []
    stack = [("", str(root))]
    while stack:
        rel, path = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir():
                full_rel = f"{package}/{child}" if package else child
                if workspace.is_ignored(full_rel) or _is_package(Path(entry.path)):
                    continue
                dirs.append(child)
                stack.append((child, entry.path))
            else:
                files.append(child)
    return files, dirs


def _is_package(directory: Path) -> bool:
    return any((directory / name).is_file() for name in BUILD_FILES)


def glob(listing: tuple[list[str], list[str]], include: list[str], exclude: list[str],
         exclude_directories: bool) -> list[str]:
    """Package-relative paths matching `include` and none of `exclude`, sorted."""
    for pattern in [*include, *exclude]:
        check_pattern(pattern)
    files, dirs = listing
    candidates = files if exclude_directories else files + dirs
    includes = [tuple(p.split("/")) for p in include]
    excludes = [tuple(p.split("/")) for p in exclude]
    out = []
    for path in candidates:
        parts = tuple(path.split("/"))
        if any(_match(p, parts) for p in includes) and not any(_match(p, parts)
                                                                for p in excludes):
            out.append(path)
    return sorted(out)
