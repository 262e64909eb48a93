"""A saved analysis: the action graph of one build command, reused while nothing that
analysis read has changed (BUILD and .bzl files, directory listings seen by glob(), the
packages below recursive patterns, bp itself, the flags).

Knows which files analysis depended on and how to check them cheaply (stat data, with
content hashes when the stat data cannot be trusted); not how analysis works.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_VERSION = 2   # 2: actions carry their definition digests; no artifact map


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class FileProof:
    """How a file looked when analysis read it."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    sha256: str

    @staticmethod
    def of(path: Path) -> "FileProof | None":
        try:
            st = os.stat(path)
            return FileProof(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                             _sha256(path))
        except OSError:
            return None

    def holds(self, path: Path, stamp_ns: int) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == (
                self.size, self.mtime_ns, self.ctime_ns, self.inode) \
                and st.st_mtime_ns < stamp_ns and st.st_ctime_ns < stamp_ns:
            return True
        return st.st_size == self.size and _sha256(path) == self.sha256


@dataclass
class Snapshot:
    """What analysis read, and what it produced (opaque to this module)."""

    key: str                                   # flags, patterns and bp itself
    stamp_ns: int                              # file-system time when the files were read
    files: dict[str, FileProof | None] = field(default_factory=dict)   # absolute paths
    listings: dict[str, str] = field(default_factory=dict)   # glob package dir -> digest
    recursive: dict[str, list[str]] = field(default_factory=dict)   # pattern -> packages
    payload: Any = None

    def valid(self, list_package, packages_below) -> bool:
        for path, proof in self.files.items():
            if proof is None:
                if os.path.exists(path):
                    return False
            elif not proof.holds(Path(path), self.stamp_ns):
                return False
        for package, digest in self.listings.items():
            if listing_digest(list_package(package)) != digest:
                return False
        return all(packages_below(pattern) == packages
                   for pattern, packages in self.recursive.items())


def listing_digest(listing: tuple[list[str], list[str]]) -> str:
    files, dirs = listing
    text = "\n".join(sorted(files)) + "\0" + "\n".join(sorted(dirs))
    return hashlib.sha256(text.encode()).hexdigest()


def bp_digest(directories: list[Path]) -> str:
    """A digest of bp itself: its version and its own Starlark (builtins, prelude,
    toolchains), so that a new bp never reuses an old analysis."""
    from buildpy import __version__

    digest = hashlib.sha256(__version__.encode())
    for directory in directories:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()
                           and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(directory)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def load(path: Path, key: str) -> Snapshot | None:
    try:
        with open(path, "rb") as handle:
            version, snapshot = pickle.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, AttributeError,
            ImportError, TypeError):
        return None
    if version != _VERSION or not isinstance(snapshot, Snapshot) or snapshot.key != key:
        return None
    return snapshot


def save(path: Path, snapshot: Snapshot) -> None:
    """Atomically: a build killed while saving leaves the old snapshot or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        pickle.dump((_VERSION, snapshot), handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
