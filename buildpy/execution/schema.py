"""SQLite files that know the version of their layout: used as they are, migrated, or rebuilt.

A layout's version is kept in `PRAGMA user_version`. Opening a file at the current
version uses it as it is; an older known version runs the migration steps up to the
current one; anything else (a newer version, an unknown layout, a table with other
columns, a file that is not a database) is rebuilt empty, which is safe because bp's
SQLite files only hold caches. Knows files and tables; not what the rows mean.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

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


def open_database(path: Path, layout: Layout, say: Callable[[str], None]) -> sqlite3.Connection:
    """Open `path` with `layout`, migrating or rebuilding it as needed; `say` gets one line
    when the file had to be rebuilt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):   # a file another bp replaced meanwhile is opened again
        db = None
        try:
            db = _connect(path)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == layout.version:
                return db
            reason = _upgrade(db, layout)
        except sqlite3.DatabaseError as error:
            if db is not None:
                db.close()
            if _busy(error):
                raise
            if _remove_damaged(path):
                say(f"{layout.name} at {path} was damaged ({error}); starting a new one")
            continue
        if reason:
            say(f"{layout.name} at {path} {reason}; starting a new one")
        return db
    raise sqlite3.DatabaseError(f"cannot open {path}")   # not seen: three files replaced


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
            for step in range(version, layout.version):
                _run(db, layout.migrations[step])
            if _columns(db) != dict(layout.columns):
                reason = "has tables this bp does not know"
        if reason:
            for table in _tables(db):
                db.execute(f'DROP TABLE IF EXISTS "{table}"')
            _create(db, layout)
        db.execute(f"PRAGMA user_version = {int(layout.version)}")
        db.execute("COMMIT")
    except BaseException:
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


def _busy(error: sqlite3.DatabaseError) -> bool:
    """A database another process holds too long: not damage."""
    return isinstance(error, sqlite3.OperationalError) and (
        "locked" in str(error) or "busy" in str(error))


def _remove_damaged(path: Path) -> bool:
    """Remove a damaged database file (and its journal files), unless another bp already
    replaced it; whether this call removed it."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return False
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)   # one bp at a time decides
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            return False
        if not same:
            return False
        for suffix in ("-wal", "-shm", ""):
            try:
                os.unlink(f"{path}{suffix}")
            except FileNotFoundError:
                pass
    return True
