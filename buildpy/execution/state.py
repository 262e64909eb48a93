"""bp's persistent state in SQLite: the action cache, action records, and file digests.

The action cache and records live in the shared cache directory; file digests (with
the stat data that lets bp skip re-hashing) live with each workspace's outputs.
Knows rows, not builds.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

_CACHE_SCHEMA = """
CREATE TABLE IF NOT EXISTS action_cache (
    key TEXT PRIMARY KEY,          -- the action key (REAPI Action digest)
    outputs TEXT NOT NULL,         -- JSON: [[path, sha256, size, executable], ...]
    exit_code INTEGER NOT NULL,
    stdout TEXT, stderr TEXT,      -- digests of the captured output in the CAS
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS action_records (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL, label TEXT NOT NULL, mnemonic TEXT NOT NULL,
    inputs TEXT NOT NULL,          -- JSON: {path: sha256}
    outputs TEXT NOT NULL,         -- JSON: {path: sha256}
    duration REAL NOT NULL, strategy TEXT NOT NULL, cached INTEGER NOT NULL,
    finished REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_label ON action_records(label);
"""

_FILES_SCHEMA = """
CREATE TABLE IF NOT EXISTS done (
    output TEXT PRIMARY KEY,       -- an action's first output
    fingerprint TEXT NOT NULL,     -- its command and input digests when it last completed
    outputs TEXT NOT NULL          -- JSON: {path: sha256} of all its outputs then
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER,
    blake3 TEXT, sha256 TEXT, executable INTEGER,
    stamp_ns INTEGER               -- the build stamp when the file was hashed
);
"""


def connect(path: Path, schema: str) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db


@dataclass(frozen=True)
class OutputEntry:
    path: str
    sha256: str
    size: int
    executable: bool


@dataclass(frozen=True)
class CacheEntry:
    outputs: tuple[OutputEntry, ...]
    exit_code: int
    stdout: str | None
    stderr: str | None


class ActionCache:
    """The action cache and the action records; safe to use from worker threads."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self._lock = threading.Lock()

    def get(self, key: str) -> CacheEntry | None:
        with self._lock:
            row = self._get(key)
        if row is None:
            return None
        outputs = tuple(OutputEntry(p, d, s, bool(x)) for p, d, s, x in json.loads(row[0]))
        return CacheEntry(outputs, row[1], row[2], row[3])

    def _get(self, key: str):
        return self.db.execute("SELECT outputs, exit_code, stdout, stderr FROM action_cache "
                               "WHERE key = ?", (key,)).fetchone()

    def put(self, key: str, entry: CacheEntry) -> None:
        outputs = json.dumps([[o.path, o.sha256, o.size, o.executable] for o in entry.outputs])
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO action_cache VALUES (?, ?, ?, ?, ?, ?)",
                            (key, outputs, entry.exit_code, entry.stdout, entry.stderr,
                             time.time()))

    def drop(self, key: str) -> None:
        with self._lock:
            self.db.execute("DELETE FROM action_cache WHERE key = ?", (key,))

    def record(self, key: str, label: str, mnemonic: str, inputs: dict, outputs: dict,
               duration: float, strategy: str, cached: bool) -> None:
        row = (key, label, mnemonic, json.dumps(inputs, sort_keys=True),
               json.dumps(outputs, sort_keys=True), duration, strategy, int(cached), time.time())
        with self._lock:
            self.db.execute(
                "INSERT INTO action_records (key, label, mnemonic, inputs, outputs, duration, "
                "strategy, cached, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    def durations(self, labels_and_mnemonics: Iterable[tuple[str, str]]) -> dict:
        """The last recorded duration of each (label, mnemonic), for scheduling."""
        out = {}
        with self._lock:
            rows = self.db.execute("SELECT label, mnemonic, duration FROM action_records "
                                   "WHERE cached = 0 ORDER BY finished").fetchall()
        for label, mnemonic, duration in rows:
            out[(label, mnemonic)] = duration
        wanted = set(labels_and_mnemonics)
        return {k: v for k, v in out.items() if k in wanted}


def open_cache_db(cache_dir: Path) -> ActionCache:
    return ActionCache(connect(cache_dir / "cache.sqlite", _CACHE_SCHEMA))


def open_files_db(output_base: Path) -> sqlite3.Connection:
    return connect(output_base / ".bp-state" / "files.sqlite", _FILES_SCHEMA)
