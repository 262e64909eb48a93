"""Symbolic links among the outputs a sandboxed process left: followed only as the process
saw them, never out of its sandbox, and replaced by copies of what they name.

A link to `/home/u/.ssh/id_rsa` made in a sandbox where that file is invisible must not
become, once moved out, a way to read it on the host. Knows one sandbox directory, its
declared inputs and outputs; not caches, keys or strategies.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Iterable

from buildpy.execution.outputs import special_kind

MAX_LINKS = 40   # links followed for one path before it counts as a loop, as in Linux

ESCAPE_HINT = ("bp follows an output's links only inside the action's sandbox: write the "
               "file itself (cp, not ln -s), or link to an input or another output of the "
               "action with a relative path")


class OutputLinkError(Exception):
    """An output link that cannot be kept; the message names the output."""


def seal_outputs(sandbox: Path, exec_root: Path, outputs: Iterable[str],
                 directories: Iterable[str], inputs: Iterable[tuple[str, bool]]) -> None:
    """Replace every symbolic link at or inside a declared output in `sandbox` by a copy
    of the file it names, resolved as the sandboxed process saw it; a declared input is
    read from `exec_root` (in a linux sandbox only its mount point is in the directory).
    Raises OutputLinkError for a link out of the sandbox, a dangling link or a loop."""
    made: list[_Resolver] = []

    def resolver() -> _Resolver:   # (made for the first link: most outputs hold none)
        if not made:
            made.append(_Resolver(sandbox, exec_root, inputs))
        return made[0]

    directories = set(directories)
    checked: set[str] = set()
    for output in outputs:
        _check_parents(sandbox, output, checked)
        full = sandbox / output
        if os.path.islink(full):
            if output in directories:
                raise OutputLinkError(
                    f"declared directory output '{output}' is a symbolic link "
                    f"(to '{os.readlink(full)}'); create the directory itself")
            _replace(full, resolver().file(output, output))
        elif output in directories and os.path.isdir(full):
            for parent, names, files in os.walk(full):
                for name in (*names, *files):
                    path = os.path.join(parent, name)
                    if os.path.islink(path):
                        inside = os.path.relpath(path, sandbox)
                        _replace(Path(path), resolver().file(inside, output))


def _check_parents(sandbox: Path, output: str, checked: set[str]) -> None:
    """An output's parent directories must be directories: through a link, moving the
    output back would move a host file that the link names. `checked` holds the parents
    found to be no links already (an action's outputs share most of theirs)."""
    parts = output.split("/")[:-1]
    top = os.fspath(sandbox)
    for depth in range(1, len(parts) + 1):
        parent = "/".join(parts[:depth])
        if parent in checked:
            continue
        full = os.path.join(top, parent)
        if os.path.islink(full):
            raise OutputLinkError(
                f"declared output '{output}' is under a symbolic link ('{parent}', to "
                f"'{os.readlink(full)}'); {ESCAPE_HINT}")
        checked.add(parent)


def _replace(link: Path, source: str) -> None:
    temporary = link.with_name(f".{link.name}.bp-link")
    shutil.copyfile(source, temporary)
    os.chmod(temporary, 0o755 if os.stat(source).st_mode & 0o111 else 0o644)
    os.replace(temporary, link)


class _Resolver:
    def __init__(self, sandbox: Path, exec_root: Path, inputs: Iterable[tuple[str, bool]]):
        self.sandbox = os.fspath(sandbox.absolute())
        self.roots = sorted({self.sandbox, os.path.realpath(self.sandbox)}, key=len,
                            reverse=True)
        self.exec_root = os.fspath(exec_root)
        self.files = {path for path, is_dir in inputs if not is_dir}
        self.directories = sorted((path for path, is_dir in inputs if is_dir), key=len)

    def file(self, path: str, output: str) -> str:
        """The host path of the regular file that sandbox path `path` (a link, inside
        `output`) names."""
        def fail(what: str) -> OutputLinkError:
            where = f"'{output}'" if path == output else f"'{output}' holds '{path}', which"
            return OutputLinkError(f"declared output {where} is {what}")

        target = os.readlink(os.path.join(self.sandbox, path))
        try:
            host = self._resolve(path)
        except _Escape:
            raise fail(f"a symbolic link to '{target}', which is outside the sandbox; "
                       f"{ESCAPE_HINT}") from None
        except _Loop:
            raise fail("a symbolic link loop") from None
        try:
            mode = os.stat(host).st_mode
        except OSError:
            raise fail(f"a dangling symbolic link (to '{target}')") from None
        if stat.S_ISDIR(mode):
            raise fail(f"a symbolic link to a directory ('{target}'); bp keeps files, so "
                       "copy the directory's files instead") from None
        if not stat.S_ISREG(mode):
            raise fail(f"a symbolic link to a {special_kind(mode)} ('{target}'), not to a "
                       "regular file") from None
        return host

    def _resolve(self, path: str) -> str:
        pending = path.split("/")
        done: list[str] = []
        links = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise _Escape()
                done.pop()
                continue
            done.append(part)
            current = "/".join(done)
            host = self._input(current, pending)
            if host is not None:
                return host
            full = os.path.join(self.sandbox, current)
            if not os.path.islink(full):
                continue
            links += 1
            if links > MAX_LINKS:
                raise _Loop()
            target = os.readlink(full)
            done.pop()
            if os.path.isabs(target):
                root = next((r for r in self.roots
                             if target == r or target.startswith(r + "/")), None)
                if root is None:
                    raise _Escape()
                target, done = target[len(root):].lstrip("/"), []
            pending = target.split("/") + pending
        return os.path.join(self.sandbox, *done)

    def _input(self, current: str, pending: list[str]) -> str | None:
        """The exec root's copy of a declared input the walk reached, with the rest of the
        path when it stays inside that input; None elsewhere."""
        if current in self.files and not pending:
            return os.path.join(self.exec_root, current)
        if current in self.directories:
            rest = os.path.normpath(os.path.join(*pending)) if pending else "."
            if rest != ".." and not rest.startswith("../"):
                return os.path.join(self.exec_root, current, rest)
        return None


class _Escape(Exception):
    pass


class _Loop(Exception):
    pass
