"""Sandbox directories reused from one action to the next, as Bazel's
`--reuse_sandbox_directories`: one for each action running at once, emptied of what the
last action left, keeping the directories that no later action can see or that it needs.

On a disk, making and removing directories is most of what a sandbox costs (an ext4
`mkdir` here takes about 65 us, against 2 us to find that a directory exists). Knows
directories and exec paths; not spawns, bubblewrap or strategies.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterable

from buildpy.execution.outputs import remove

# A bp process's directory under the sandbox base is `bp-<pid>-<random>`, locked (flock)
# while that process lives. It is made under a name starting `.new-` and renamed once
# locked, so that another bp never takes a directory being made for one that a dead bp left.
_OWNED = re.compile(r"bp-[0-9]+-\w+")
_CLAIMING = ".new-"
_CLAIM_GRACE = 60.0   # seconds after which an unlocked `.new-` directory is a dead bp's


def _depth(path: str) -> int:
    return path.count("/") + 1 if path else 0


def with_parents(paths: Iterable[str]) -> set[str]:
    """`paths` (exec paths of directories) with each of their parents, and "" (the
    sandbox directory itself)."""
    found = {""}
    for path in paths:
        while path and path not in found:
            found.add(path)
            path = os.path.dirname(path)
    return found


def _umask() -> int:
    """The process's umask, read without changing it (another thread may be creating
    files meanwhile)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


class SandboxDir:
    """One sandbox directory, `path`, used by one action at a time.

    Between actions it holds nothing but directories, all of them kept in `_children`
    (each kept directory, as an exec path with "" for `path` itself, to its kept
    subdirectories), each with the mode `os.mkdir` gives. An action sees the parts of it
    below its `visible` directories (all of it, for the `sandboxed` strategy; the
    directories of its outputs, for `linux-sandbox`); before it starts, the kept
    directories there that it does not need go, and after it ends, everything else it
    left there does."""

    def __init__(self, path: Path, mode: int):
        self.path = path
        self._mode = mode
        self._children: dict[str, set[str]] = {"": set()}

    def _full(self, relative: str) -> str:
        return os.path.join(self.path, relative) if relative else os.fspath(self.path)

    def _below(self, directory: str) -> list[str]:
        """The kept directories at and below `directory`, parents first."""
        found = [directory] if directory in self._children else []
        for path in found:   # (grows as it goes)
            found.extend(self._children[path])
        return found

    def _keep(self, directory: str) -> None:
        self._children[directory] = set()
        if directory:
            self._children[os.path.dirname(directory)].add(directory)

    def _forget(self, directory: str) -> None:
        for path in self._below(directory):
            del self._children[path]
        if directory:
            self._children.get(os.path.dirname(directory), set()).discard(directory)

    def prepare(self, visible: Iterable[str], needed: Iterable[str]) -> None:
        """Before an action: the directories `needed` exist, with their parents; below
        each `visible` directory, no other does (and, by the invariant, no file)."""
        wanted = with_parents(needed)
        unwanted = [d for v in set(visible) for d in self._below(v) if d not in wanted]
        for directory in sorted(unwanted, key=_depth, reverse=True):   # (deepest first)
            full = self._full(directory)
            try:
                os.rmdir(full)   # empty, as kept directories are
            except OSError:
                remove(full)
            self._forget(directory)
        for directory in sorted(wanted.difference(self._children), key=_depth):
            full = self._full(directory)
            try:
                os.mkdir(full)
            except FileExistsError:   # not kept, so not trusted (a failed clean-up)
                remove(full)
                os.mkdir(full)
            self._keep(directory)

    def clean(self, visible: Iterable[str]) -> None:
        """After an action: below each `visible` directory, remove everything but the
        kept directories, and a kept directory the action changed (its mode, or what it
        is). Raises OSError when something cannot be removed."""
        for root in visible:
            self._empty(root)

    def _empty(self, relative: str) -> None:
        full = self._full(relative)
        try:
            info = os.lstat(full)
        except FileNotFoundError:
            self._forget(relative)
            return
        if not stat.S_ISDIR(info.st_mode) or stat.S_IMODE(info.st_mode) != self._mode \
                or relative not in self._children:
            remove(full)
            self._forget(relative)
            return
        kept = self._children[relative]
        seen = set()
        with os.scandir(full) as entries:
            for entry in entries:
                child = os.path.join(relative, entry.name) if relative else entry.name
                if child in kept and entry.is_dir(follow_symlinks=False):
                    seen.add(child)
                    self._empty(child)
                else:
                    remove(entry.path)
        for child in kept - seen:   # (removed by the action, or replaced)
            self._forget(child)


class SandboxDirs:
    """The sandbox directories of one bp process, `base/bp-<pid>-<random>/<n>`: taken
    for an action, given back after it. With `reuse` False, each action gets a fresh one,
    removed after it.

    Several bp processes may share the base (the cache directory is shared between
    workspaces): each locks its own directory while it lives, and the first to make one
    removes the directories whose bp died (`kill -9`) first."""

    def __init__(self, base: Path, reuse: bool = True):
        self.base = Path(base)
        self.reuse = reuse
        self._mode = 0o777 & ~_umask()
        self._lock = threading.Lock()
        self._free: list[SandboxDir] = []
        self._made = 0
        self._root: Path | None = None
        self._held: int | None = None   # the locked descriptor of `_root`

    @property
    def root(self) -> Path | None:
        """This process's directory under the base, once one was taken."""
        return self._root

    def take(self) -> SandboxDir:
        """A directory for one action: a kept one (emptied), else a new one."""
        with self._lock:
            if self._free:
                return self._free.pop()   # the last given back: the likeliest in cache
            if self._root is None:
                remove_stale(self.base)
                self._root, self._held = _claim(self.base)
            path = self._root / str(self._made)
            self._made += 1
        os.mkdir(path)
        return SandboxDir(path, self._mode)

    def give_back(self, directory: SandboxDir, visible: Iterable[str]) -> None:
        """`directory` after its action, emptied below `visible` (what the action could
        see of it) for the next one; removed instead when it cannot be emptied, or when
        directories are not reused."""
        if self.reuse:
            try:
                directory.clean(visible)
            except OSError:
                pass
            else:
                with self._lock:
                    self._free.append(directory)
                return
        remove(os.fspath(directory.path))

    def close(self) -> None:
        """Remove every directory (none may be in use any more) and release the lock."""
        with self._lock:
            root, held = self._root, self._held
            self._root = self._held = None
            self._free.clear()
        if root is None:
            return
        try:
            remove(os.fspath(root))
        finally:
            os.close(held)


def _claim(base: Path) -> tuple[Path, int]:
    """A new directory for this process under `base`, and its locked descriptor."""
    base.mkdir(parents=True, exist_ok=True)
    fresh = tempfile.mkdtemp(prefix=_CLAIMING, dir=base)
    held = os.open(fresh, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        root = base / f"bp-{os.getpid()}-{os.path.basename(fresh)[len(_CLAIMING):]}"
        os.rename(fresh, root)
    except BaseException:
        os.close(held)
        remove(fresh)
        raise
    return root, held


def remove_stale(base: Path) -> None:
    """Remove the directories under `base` of bp processes that ended without removing
    them (killed): those no process holds locked. Anything else there (a directory kept
    by --sandbox_debug) stays."""
    try:
        entries = list(os.scandir(base))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith(_CLAIMING):
            try:
                if time.time() - entry.stat(follow_symlinks=False).st_mtime < _CLAIM_GRACE:
                    continue   # (being made by a live bp, most likely)
            except OSError:
                continue
        elif not _OWNED.fullmatch(entry.name):
            continue
        try:
            held = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                           | os.O_CLOEXEC)
        except OSError:   # gone meanwhile, or not a directory
            continue
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:   # its bp is alive
            os.close(held)
            continue
        try:
            remove(entry.path)
        except OSError:
            pass   # (another bp removing it too; or the next one will)
        finally:
            os.close(held)
