"""Where bp writes: bp-out and the shared cache directory, checked before bp writes.

A directory that is missing is made; one bp may not write (read-only, permissions, a
file or a dangling link in its place, a parent that cannot exist) is an EnvError naming
it, said before a build starts rather than when it ends. A state entry of the wrong kind
(a directory where a stamp or lock file belongs, a file where the store's directory
belongs) is moved aside with one warning, as damaged SQLite files are. Knows paths;
not what the files hold.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Callable

from buildpy.core.errors import EnvError, environment_error
from buildpy.execution.digests import take_stamp
from buildpy.execution.schema import move_aside

# what the state directories hold: True for a directory, False for a regular file
_OUTPUT_STATE = {"stamp": False, "analysis-stamp": False, "lock": False,
                 "running.log": False, "analysis": True, "noop": True,
                 "lastbuild-stamp": False}
_CACHE_STATE = {"gc.lock": False, "cas": True, "cas/tmp": True, "analysis": True,
                "execroot": True, "sandbox": True}


def _quiet(text: str) -> None:
    pass


_OUTPUT_HINT = "bp keeps its outputs and state in bp-out: make the workspace (or bp-out) " \
    "writable"
_CACHE_HINT = "make it writable, or give bp another one with --disk_cache=DIR (or " \
    "XDG_CACHE_HOME)"


def check_output_base(workspace: Path, say: Callable[[str], None] = _quiet) -> Path:
    """The workspace's bp-out, made if missing, as a directory bp can write: checked
    before bp writes anything, so that the environment's fault is said up front."""
    base = workspace / "bp-out"
    if base.is_symlink() and not base.exists():
        raise EnvError(f"{base} is a symlink to {os.readlink(base)}, which does not exist",
                       hint="create that directory, or remove the link (bp then makes "
                            "bp-out itself)")
    if base.exists() and not base.is_dir():
        raise EnvError(f"{base} is not a directory",
                       hint="bp keeps its outputs in bp-out: move that file away, then run "
                            "the command again")
    writable_directory(base, "the output directory", _OUTPUT_HINT)
    _heal(base, {".bp-state": True}, say)
    writable_directory(base / ".bp-state", "the output directory", _OUTPUT_HINT)
    _heal(base / ".bp-state", _OUTPUT_STATE, say)
    return base


def check_cache_dir(cache_dir: Path, say: Callable[[str], None] = _quiet) -> Path:
    """The shared cache directory, made if missing, checked writable (with its store
    and its action cache) when a build opens it, not when the build ends."""
    writable_directory(cache_dir, "the disk cache", _CACHE_HINT)
    _heal(cache_dir, _CACHE_STATE, say)
    for inside in (cache_dir / "cas", cache_dir / "cache.sqlite"):
        if inside.exists() and not os.access(inside, os.W_OK):
            raise EnvError(f"cannot write to the disk cache {inside}: "
                           f"{os.strerror(_not_writable(inside))}", hint=_CACHE_HINT)
    return cache_dir


def stamp_at(path: Path) -> int:
    """The file system's current time (digests.take_stamp), a full disk said as such."""
    try:
        return take_stamp(path)
    except OSError as error:
        raise environment_error(error, path) or error from None


def writable_directory(path: Path, what: str, hint: str) -> None:
    """Make `path` (and its parents) if missing; EnvError where that cannot be done or
    bp may not write in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EnvError(f"cannot create {what} {path}: {error.strerror}", hint=hint) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise EnvError(f"cannot write to {what} {path}: "
                       f"{os.strerror(_not_writable(path))}", hint=hint)


def _not_writable(path: Path) -> int:
    """Why `path` cannot be written: a read-only file system, or its permissions."""
    try:
        return errno.EROFS if os.statvfs(path).f_flag & os.ST_RDONLY else errno.EACCES
    except OSError as error:
        return error.errno or errno.EACCES


def _heal(directory: Path, kinds: dict[str, bool], say: Callable[[str], None]) -> None:
    """Move aside each entry of `directory` that is of the wrong kind (see `kinds`)."""
    for name, is_directory in kinds.items():
        path = directory / name
        if not os.path.lexists(path) or path.is_symlink():
            continue
        if path.is_dir() == is_directory:
            continue
        aside = move_aside(path, None)
        if aside is not None:
            found = "a file" if is_directory else "a directory"
            say(f"WARNING: {path} was damaged ({found} is in its place); moved it to "
                f"{aside} and started afresh")
