"""SQLite files that know the version of their layout, and heal themselves when damaged.

A layout's version is kept in `PRAGMA user_version`. Opening a file at the current
version uses it as it is; an older known version runs the migration steps up to the
current one; a newer version, an unknown layout or a table with other columns is
rebuilt empty. A damaged file (not a database, a malformed page, a directory in its
place), whether found on opening or on any later use, is moved aside with one warning
and replaced by an empty one: bp's SQLite files only hold caches. A full disk or a file
bp may not write is the environment's fault (EnvError, naming the file). Knows files and
tables; not what the rows mean.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from buildpy.core.errors import NO_SPACE_HINT, EnvError

@dataclass(frozen=True)
class Layout:
    """The tables of one SQLite file at its current version, and how older versions
    become it."""

    name: str                      # for messages: "the action cache"
    version: int
    schema: str                    # CREATE statements of the current version
    columns: Mapping[str, tuple[str, ...]]   # every table of the current version
    # from version N to N + 1 (version 0: a file from before versions were recorded)
    migrations: Mapping[int, str] = field(default_factory=dict)


class Rows(list):
    """The rows of one statement, all read at once (a damaged page is found while the
    statement runs, where it can be healed, not later while the caller iterates)."""

    def fetchone(self):
        return self[0] if self else None

    def fetchall(self) -> list:
        return list(self)


class Database:
    """One SQLite file of `layout`, safe to share between threads; a file found damaged
    while in use is moved aside and the statement runs again on a new, empty file."""

    def __init__(self, path: Path, layout: Layout, say: Callable[[str], None]):
        self.path = path
        self.layout = layout
        self._say = say
        self._lock = threading.RLock()
        self._db, self._inode = _open(path, layout, say)

    def execute(self, sql: str, parameters: Iterable = ()) -> Rows:
        return self._run(lambda db: Rows(db.execute(sql, parameters).fetchall()))

    def executemany(self, sql: str, rows: Iterable) -> None:
        rows = list(rows)   # (again from the start on a new file)
        self._run(lambda db: db.executemany(sql, rows))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, kind, value, traceback) -> bool:
        if kind is None:
            self._run(lambda db: db.commit())
        else:
            with self._lock:
                try:
                    self._db.rollback()
                except sqlite3.Error:
                    pass
        return False

    def _run(self, step):
        with self._lock:
            try:
                return step(self._db)
            except sqlite3.DatabaseError as error:
                if not _damaged(error, self.path):
                    raise _environment(error, self.path, self.layout) from None
                self._heal(error)
            try:
                return step(self._db)
            except sqlite3.DatabaseError as error:   # a new file damaged at once: not ours
                raise _environment(error, self.path, self.layout) from None

    def _heal(self, error: sqlite3.DatabaseError) -> None:
        try:
            self._db.close()
        except sqlite3.Error:
            pass
        aside = move_aside(self.path, self._inode)
        if aside is not None:
            self._say(_warning(self.path, error, aside))
        self._db, self._inode = _open(self.path, self.layout, self._say)


def open_database(path: Path, layout: Layout, say: Callable[[str], None]) -> Database:
    """Open `path` with `layout`, migrating, rebuilding or replacing it as needed; `say`
    gets one line when the file had to be rebuilt or moved aside."""
    return Database(path, layout, say)


def _open(path: Path, layout: Layout, say: Callable[[str], None]
          ) -> tuple[sqlite3.Connection, int]:
    """A connection to `path` at `layout`'s version, and the file's inode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EnvError(f"cannot create {path.parent}: {error.strerror}",
                       hint=_hint(error.errno)) from None
    for _ in range(3):   # a file another bp replaced meanwhile is opened again
        db = None
        try:
            db = _connect(path)
            inode = os.stat(path).st_ino
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == layout.version:
                return db, inode
            reason = _upgrade(db, layout)
        except (sqlite3.DatabaseError, OSError) as error:
            if db is not None:
                db.close()
            if isinstance(error, OSError):
                raise EnvError(f"cannot open {layout.name} at {path}: {error.strerror}",
                               hint=_hint(error.errno)) from None
            if not _damaged(error, path):
                raise _environment(error, path, layout) from None
            aside = move_aside(path, None)
            if aside is not None:
                say(_warning(path, error, aside))
            continue
        if reason:
            say(f"{layout.name} at {path} {reason}; starting a new one")
        return db, inode
    raise EnvError(f"cannot open {layout.name} at {path}: it was replaced three times "
                   "while bp opened it", hint="run the command again")


def _warning(path: Path, error: sqlite3.DatabaseError, aside: Path) -> str:
    reason = error
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{aside}{suffix}").is_dir():
            reason = f"a directory is in the place of {path.name}{suffix}"
    if reason == f"a directory is in the place of {path.name}":
        reason = "a directory is in its place"
    return f"WARNING: {path} was damaged ({reason}); moved it to {aside} and started afresh"


def _damaged(error: sqlite3.DatabaseError, path: Path) -> bool:
    """Whether the file is damaged (not a database, a malformed page or header, a
    directory in its place), rather than busy, full or not writable."""
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return True
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY")) or "unable to open" in \
            str(error):   # a directory where the file or its journal belongs
        return any(Path(f"{path}{suffix}").is_dir() for suffix in ("", "-wal", "-shm"))
    text = str(error)
    if text == "unsupported file format":   # a header scribbled on (SQLITE_ERROR)
        return True
    return not name and ("malformed" in text or "not a database" in text)


def _environment(error: sqlite3.DatabaseError, path: Path, layout: Layout) -> Exception:
    """The error to raise for a SQLite error that is not damage: the environment's
    (EnvError, naming the file) when the disk is full, or the file cannot be opened or
    written; else the error itself (busy for a minute, or a bug of ours)."""
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_FULL") or "disk is full" in str(error):
        return EnvError(f"cannot write {layout.name} at {path}: no space left on the "
                        "device", hint=_hint(errno.ENOSPC))
    if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY",
                        "SQLITE_PERM", "SQLITE_AUTH")):
        number = _errno(path)   # SQLite says "disk I/O error" for a full disk too
        if number == errno.ENOSPC:
            return EnvError(f"cannot write {layout.name} at {path}: no space left on the "
                            "device", hint=_hint(number))
        return EnvError(f"cannot use {layout.name} at {path}: "
                        f"{os.strerror(number) if number else error}", hint=_hint(number))
    return error


def _errno(path: Path) -> int:
    """Why `path`'s directory cannot be written, as an errno (0: no reason seen)."""
    directory = path.parent
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return errno.EROFS
        if not os.access(directory, os.W_OK):
            return errno.EACCES
        if os.statvfs(directory).f_bavail == 0:
            return errno.ENOSPC
    except OSError:
        return errno.ENOENT
    return 0


def _hint(number: int | None) -> str:
    if number in (errno.ENOSPC, errno.EDQUOT):
        return NO_SPACE_HINT
    if number in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "make it writable, or point bp elsewhere (--disk_cache=DIR or " \
               "XDG_CACHE_HOME for the shared cache)"
    return "check that the directory exists and bp may write it"


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def _upgrade(db: sqlite3.Connection, layout: Layout) -> str | None:
    """Bring the file to `layout` in one transaction (other bp's wait for it); the reason
    it was rebuilt instead, if it was."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]   # another bp may have
        tables = _tables(db)
        reason = None
        if version == layout.version:
            pass
        elif not tables:
            _create(db, layout)
        elif version > layout.version:
            reason = f"has version {version}, newer than this bp's {layout.version}"
        elif not all(step in layout.migrations for step in range(version, layout.version)):
            reason = f"has version {version}, which this bp cannot migrate"
        else:
            try:
                for step in range(version, layout.version):
                    _run(db, layout.migrations[step])
            except sqlite3.OperationalError as error:   # tables other than it expects
                if getattr(error, "sqlite_errorname", "") != "SQLITE_ERROR":
                    raise
            if _columns(db) != dict(layout.columns):
                reason = "has tables this bp does not know"
        if reason:
            for table in _tables(db):
                db.execute(f'DROP TABLE IF EXISTS "{table}"')
            _create(db, layout)
        db.execute(f"PRAGMA user_version = {int(layout.version)}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:   # (SQLite ends it itself on some errors: a full disk)
            db.execute("ROLLBACK")
        raise
    return reason


def _create(db: sqlite3.Connection, layout: Layout) -> None:
    _run(db, layout.schema)


def _run(db: sqlite3.Connection, script: str) -> None:
    """Run `script` statement by statement inside the open transaction (executescript
    would commit it)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""
    if statement.strip():
        db.execute(statement)


def _tables(db: sqlite3.Connection) -> list[str]:
    return [row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]


def _columns(db: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    return {table: tuple(row[1] for row in db.execute(f'PRAGMA table_info("{table}")'))
            for table in _tables(db)}


def move_aside(path: Path, inode: int | None) -> Path | None:
    """Move a damaged database (file or directory) aside as `<name>.damaged-<time>`, with
    its write-ahead log, unless another bp already replaced it (or it is not the file of
    `inode`); where it went, or None when this call did not move it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise EnvError(f"cannot open {path}: {error.strerror}",
                       hint=_hint(error.errno)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)   # one bp at a time decides
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return None
        if not same or (inode is not None and os.fstat(fd).st_ino != inode):
            return None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"{path.name}.damaged-{stamp}")
        count = 1
        while os.path.lexists(aside):
            count += 1
            aside = path.with_name(f"{path.name}.damaged-{stamp}-{count}")
        try:
            os.rename(path, aside)
            for suffix in ("-wal", "-shm"):   # (whatever is in their place, too)
                try:
                    os.rename(f"{path}{suffix}", f"{aside}{suffix}")
                except FileNotFoundError:
                    pass
        except OSError as error:
            raise EnvError(f"cannot move the damaged {path} aside: {error.strerror}",
                           hint=_hint(error.errno)) from None
    finally:
        os.close(fd)
    return aside
