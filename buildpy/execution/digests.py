"""File digests with a stat cache that is safe against racy timestamps.

A file's digest is reused only when its stat data (size, mtime, ctime, inode) is
unchanged AND its timestamps are older than the build stamp taken when it was hashed:
a file written in the same clock tick as the hashing might change again without its
mtime moving, so such a file is hashed again next time (as git does for its index).
blake3 detects changes; SHA-256, the digest REAPI keys need, is computed only when the
content really changed. Knows files; not actions.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import blake3

from buildpy.execution.state import RowsAsAsked

_CHUNK = 1 << 20
_FEW = 200   # rows read one by one before all are read at once (state.RowsAsAsked)
_COLUMNS = "path, size, mtime_ns, ctime_ns, inode, blake3, sha256, executable, stamp_ns"


@dataclass(frozen=True)
class FileInfo:
    sha256: str
    size: int
    executable: bool
    directory: bool = False   # a tree artifact: sha256 is its `tree_digest`
    link: str | None = None   # an unresolved symbolic link: its text (sha256 is the text's)

    @staticmethod
    def of_link(text: str) -> "FileInfo":
        data = os.fsencode(text)
        return FileInfo(hashlib.sha256(data).hexdigest(), len(data), False, link=text)


@dataclass
class _Row:
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    blake3: str | None
    sha256: str
    executable: bool
    stamp_ns: int

    @property
    def stat(self) -> tuple[int, int, int, int]:
        return self.size, self.mtime_ns, self.ctime_ns, self.inode

    @property
    def trusted(self) -> bool:
        """Whether its stat data vouches for its digest: the file's timestamps are older
        than the stamp taken before it was hashed (else it may have changed again in the
        same clock tick)."""
        return self.mtime_ns < self.stamp_ns and self.ctime_ns < self.stamp_ns

    @property
    def info(self) -> FileInfo:
        return FileInfo(self.sha256, self.size, self.executable)


def stat_data(st: os.stat_result) -> tuple[int, int, int, int]:
    """What a row keeps of a file's stat data: size, mtime, ctime, inode."""
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def take_stamp(path: Path) -> int:
    """The file system's current time: the mtime of a file written now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        handle.write(str(os.getpid()))
    return os.stat(path).st_mtime_ns


def _hash(path: str, algorithm) -> str:
    digest = algorithm()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _hashes(path: str, size: int, row: _Row | None) -> tuple[str, str]:
    """The file's BLAKE3 and SHA-256, the second taken from `row` when the first is the
    row's (content unchanged: SHA-256 is the slower). A file of up to one chunk (by its
    stat data) is read once, whole, for both (its open and reads cost more than either
    hash); a larger one is streamed once for each hash it needs."""
    if size > _CHUNK:
        b3 = _hash(path, blake3.blake3)
        return b3, row.sha256 if row is not None and row.blake3 == b3 else \
            _hash(path, hashlib.sha256)
    with open(path, "rb", buffering=0) as handle:
        data = handle.readall()
    b3 = blake3.blake3(data).hexdigest()
    return b3, row.sha256 if row is not None and row.blake3 == b3 else \
        hashlib.sha256(data).hexdigest()


def _read_row(db: sqlite3.Connection, path: str) -> _Row | None:
    found = db.execute(f"SELECT {_COLUMNS} FROM files WHERE path = ?", (path,)).fetchone()
    return _Row(*found[1:]) if found is not None else None


def _read_rows(db: sqlite3.Connection) -> dict[str, _Row]:
    return {r[0]: _Row(*r[1:]) for r in db.execute(f"SELECT {_COLUMNS} FROM files")}


def tree_digest(files: Mapping[str, tuple[str, bool]], directories: Iterable[str]
                ) -> FileInfo:
    """A directory's digest: SHA-256 over its entries' relative paths, and for files
    (relative path -> (sha256, executable)) their digests and executable bits; empty
    directories count too. One definition for a tree on disk, one just stored and one
    just restored, so that they compare."""
    lines = {d: f"{d}/\n" for d in directories}
    lines.update((f, f"{f}\0{sha}\0{int(executable)}\n")
                 for f, (sha, executable) in files.items())
    digest = hashlib.sha256()
    for relative in sorted(lines, key=lambda r: r.split("/")):
        digest.update(lines[relative].encode())
    return FileInfo(digest.hexdigest(), 0, False, directory=True)


class FileDigests:
    """Digests of files below `root`, by path relative to it, cached in SQLite."""

    def __init__(self, db: sqlite3.Connection, root: Path, stamp_ns: int,
                 rows: dict | None = None):
        """`rows`: the rows a long-lived bp kept from its last build (each one says what
        a file held at its stat data, whoever wrote the database since), or read here:
        one by one while few are asked for, all at once from the `_FEW`th on."""
        self.db = db
        self.root = root
        self._root = str(root)
        self.stamp_ns = stamp_ns
        # (the readers are the module's functions: bound methods would be a cycle)
        self._table = RowsAsAsked(functools.partial(_read_row, db),
                                  functools.partial(_read_rows, db), _FEW, rows)
        self._dirty: dict[str, _Row] = {}
        self.hashed = 0   # how many files were read this build
        # the digest each file, directory or declared symlink had when this build first
        # looked at it (an output: when its action last wrote it); `unsteady` once one
        # looked different later: see lastbuild.py
        self.seen: dict[str, str] = {}
        self.fresh: set[str] = set()   # the files whose rows this build wrote
        self.trees: set[str] = set()   # those of `seen` that are directories
        self.links: set[str] = set()   # and declared symlinks
        self.unsteady = False
        self._vouched: dict[str, int] = {}   # path -> its place in `_proved`, until
        #                                      this build writes a row of its own for it
        self._proved: tuple[tuple, tuple, tuple] = ((), (), ())

    def digest(self, path: str) -> FileInfo:
        """The digest of `path`; raises FileNotFoundError when it does not exist."""
        full = os.path.join(self._root, path)
        st = os.stat(full)
        if stat.S_ISDIR(st.st_mode):
            info = self._directory(path, Path(full))
            self._see(path, info.sha256)
            self.trees.add(path)
            return info
        row = self._row(path)
        executable = bool(st.st_mode & 0o111)
        if row is not None and row.stat == stat_data(st) and row.trusted:
            self._see(path, row.sha256)
            return row.info
        self.hashed += 1
        b3, sha = _hashes(full, st.st_size, row)
        self._remember(path, _Row(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, b3,
                                  sha, executable, self.stamp_ns))
        self._see(path, sha)
        return FileInfo(sha, st.st_size, executable)

    def replaced(self, path: str) -> None:
        """What stood at `path` is gone (an output cleared or restored): what this build
        saw of it, and in it, no longer tells what is there."""
        self.seen.pop(path, None)
        self.links.discard(path)
        if path in self.trees:
            inside = path + "/"
            for other in [p for p in self.seen if p.startswith(inside)]:
                del self.seen[other]
            self.trees = {t for t in self.trees if t != path and not t.startswith(inside)}

    def _see(self, path: str, sha256: str) -> None:
        if self.seen.setdefault(path, sha256) != sha256:
            self.unsteady = True

    def _directory(self, path: str, full: Path) -> FileInfo:
        """A directory's digest (`tree_digest`), its files' digests from this cache."""
        files, directories = {}, []
        for child in full.rglob("*"):
            relative = child.relative_to(full).as_posix()
            if child.is_dir():
                directories.append(relative)
            else:
                info = self.digest(child.relative_to(self.root).as_posix())
                files[relative] = (info.sha256, info.executable)
        return tree_digest(files, directories)

    def link(self, path: str) -> FileInfo:
        """The digest of the symbolic link at `path`, a declared symlink output: its
        text, not what it names. Raises OSError when there is no link at `path`."""
        info = FileInfo.of_link(os.readlink(os.path.join(self._root, path)))
        self._see(path, info.sha256)
        self.links.add(path)
        return info

    def produced(self, path: str, sha256: str, size: int,
                 st: os.stat_result | None = None) -> FileInfo:
        """Record the digest of an output bp just wrote (or restored); `st` is its stat
        data, when the caller has it."""
        st = st or os.stat(os.path.join(self._root, path))
        executable = bool(st.st_mode & 0o111)
        self._remember(path, _Row(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                                  None, sha256, executable, self.stamp_ns))
        self.seen[path] = sha256   # (its action wrote it anew)
        return FileInfo(sha256, size, executable)

    def _row(self, path: str) -> _Row | None:
        """The row kept for `path`, if any, read as asked for (state.RowsAsAsked)."""
        return self._table.get(path)

    @property
    def rows(self) -> dict | None:
        """What a long-lived bp keeps for its next build (`rows` of the next one)."""
        return self._table.rows

    def vouch(self, paths: tuple[str, ...], stats: tuple, sha256s: tuple[str, ...],
              executables: tuple[bool, ...], moved: set[str]) -> None:
        """Take the digests a proof vouches for (lastbuild.py: files whose stat data has
        not moved since a build took their digests, found so under the workspace lock)
        as seen by this build, without reading their rows; except for `moved`: the files
        of the proof whose stat data moved, and those it leaves to be looked at."""
        vouched = dict(zip(paths, range(len(paths))))
        digests = dict(zip(paths, sha256s))
        for path in moved:
            vouched.pop(path, None)
            digests.pop(path, None)
        seen = self.seen
        if any(digests[path] != seen[path] for path in digests.keys() & seen.keys()):
            self.unsteady = True   # (seen before, and not as the proof says)
        seen.update(digests)
        self._vouched, self._proved = vouched, (stats, sha256s, executables)

    def entries(self, paths: Sequence[str]) -> tuple[tuple[tuple[int, int, int, int], ...],
                                                     tuple[str, ...], tuple[bool, ...]]:
        """Each file's stat data, digest and executable bit as this build saw it (three
        columns): as a proof vouched for it, unless this build hashed or wrote it."""
        places = list(map(self._vouched.get, paths))   # (most of them, after an edit)
        stats, sha256s, executables = (list(column) for column in self._proved)
        # the others by this build's own rows, put after the proof's entries
        own = [index for index, place in enumerate(places) if place is None]
        rows = [self._table.known[paths[index]] for index in own]
        for offset, index in enumerate(own):
            places[index] = len(stats) + offset
        stats += [row.stat for row in rows]
        sha256s += [row.sha256 for row in rows]
        executables += [row.executable for row in rows]
        return tuple(tuple(map(column.__getitem__, places))
                     for column in (stats, sha256s, executables))

    def trusted(self, path: str) -> bool:
        """Whether the row kept for `path` vouches for its digest (`_Row.trusted`)."""
        row = self._table.known.get(path)
        return row is not None and row.trusted

    def _remember(self, path: str, row: _Row) -> None:
        self._vouched.pop(path, None)   # (what this build wrote, it vouches for itself)
        self._table[path] = row
        self._dirty[path] = row
        self.fresh.add(path)

    def flush(self) -> None:
        """Write what changed, in one transaction."""
        if not self._dirty:
            return
        rows = [(p, r.size, r.mtime_ns, r.ctime_ns, r.inode, r.blake3, r.sha256,
                 int(r.executable), r.stamp_ns) for p, r in self._dirty.items()]
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                rows)
        self._dirty.clear()
