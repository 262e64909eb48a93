"""glob() for BUILD files: matching `*` and `**` patterns against a package's files.

Honours package boundaries (a subdirectory with its own BUILD file is not entered) and
ignored directories, as Bazel does. Knows nothing of Starlark or targets.
"""

from __future__ import annotations

import errno
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
    """Whether `path` matches the pattern `segments`: a loop over the path's parts with
    the set of pattern positions reached (so deep paths need no recursion)."""
    end = len(segments)

    def closed(states: set[int]) -> set[int]:   # '**' may also match no part at all
        for i in sorted(states):
            while i < end and segments[i] == "**":
                i += 1
                states.add(i)
        return states

    states = closed({0})
    for part in path:
        reached = set()
        for i in states:
            if i == end:
                continue
            if segments[i] == "**":
                reached.add(i)
            elif _segment_regex(segments[i]).fullmatch(part) is not None:
                reached.add(i + 1)
        if not reached:
            return False
        states = closed(reached)
    return end in states


def list_package(workspace: Workspace, package: str, strict: bool = False
                 ) -> tuple[list[str], list[str]]:
    """(files, directories) of a package, relative to it, excluding subpackages.

    Names that are not UTF-8 are left out (no label can name them). A symlink cycle (a
    directory symlink that leads back to a directory it sits in, Bazel's "infinite
    symlink expansion", or a symlink to itself) is a GlobError when `strict`; otherwise
    it is listed but not entered, so that a listing still shows that it appeared."""
    root = workspace.root / package if package else workspace.root
    files: list[str] = []
    dirs: list[str] = []
    stack = [("", str(root), os.path.realpath(root))]
    while stack:
        rel, path, real = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            if not _is_utf8(entry.name):
                continue
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                is_dir = entry.is_dir()
            except OSError as error:
                if error.errno != errno.ELOOP:
                    continue
                if strict:
                    raise GlobError(f"symlink cycle: '{child}' is a symlink that leads back "
                                    "to itself", hint="remove or fix the symlink") from None
                files.append(child)
                continue
            if is_dir:
                full_rel = f"{package}/{child}" if package else child
                if workspace.is_ignored(full_rel) or _is_package(Path(entry.path)):
                    continue
                child_real = os.path.join(real, entry.name)
                if entry.is_symlink():
                    child_real = os.path.realpath(entry.path)
                    if real == child_real or real.startswith(child_real.rstrip("/") + "/"):
                        if strict:
                            raise GlobError(
                                f"infinite symlink expansion: '{child}' is a symlink to "
                                f"'{child_real}', a directory that contains it",
                                hint="remove the symlink, or list its directory in .bpignore")
                        dirs.append(child)
                        continue
                dirs.append(child)
                stack.append((child, entry.path, child_real))
            else:
                files.append(child)
    return files, dirs


def _is_utf8(name: str) -> bool:
    """Whether a name from the file system decoded as UTF-8 (else it holds surrogates)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
