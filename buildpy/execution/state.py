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
    outputs TEXT NOT NULL,         -- JSON: [[path, sha256, size, executable, tree], ...]
                                   -- (a tree's sha256 names its REAPI Tree message)
    exit_code INTEGER NOT NULL,
    stdout TEXT, stderr TEXT,      -- digests of the captured output in the CAS
    created REAL NOT NULL
);
DROP TABLE IF EXISTS action_records;  -- before last_runs: one row per run, unbounded
CREATE TABLE IF NOT EXISTS last_runs (
    label TEXT NOT NULL, mnemonic TEXT NOT NULL,
    output TEXT NOT NULL,          -- the action's first output: which action of the target
    key TEXT NOT NULL,
    inputs TEXT NOT NULL,          -- JSON: {path: sha256}
    outputs TEXT NOT NULL,         -- JSON: {path: sha256}
    duration REAL NOT NULL, strategy TEXT NOT NULL, cached INTEGER NOT NULL,
    finished REAL NOT NULL,
    PRIMARY KEY (label, mnemonic, output)
);
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
    is_directory: bool = False   # a tree artifact: sha256 names its REAPI Tree message


@dataclass(frozen=True)
class CacheEntry:
    outputs: tuple[OutputEntry, ...]
    exit_code: int
    stdout: str | None
    stderr: str | None


class ActionCache:
    """The action cache and the last run of each action; safe to use from worker threads.

    Writes are buffered and go to SQLite in one transaction every few seconds and when
    the build ends (`flush`). A bp killed in between loses only the entries of its last
    seconds (those actions run again); their blobs are already in the CAS, so the cache
    never points at a missing blob.
    """

    FLUSH_SECONDS = 2.0

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self._lock = threading.Lock()
        self._entries: dict[str, tuple] = {}    # key -> row, not yet written
        self._runs: dict[tuple, tuple] = {}     # (label, mnemonic, output) -> row
        self._flushed = time.monotonic()

    def get(self, key: str) -> CacheEntry | None:
        with self._lock:
            row = self._entries.get(key)
            if row is not None:
                row = row[1:5]
            else:
                row = self.db.execute("SELECT outputs, exit_code, stdout, stderr FROM "
                                      "action_cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        outputs = tuple(OutputEntry(o[0], o[1], o[2], bool(o[3]), len(o) > 4 and bool(o[4]))
                        for o in json.loads(row[0]))
        return CacheEntry(outputs, row[1], row[2], row[3])

    def put(self, key: str, entry: CacheEntry) -> None:
        outputs = json.dumps([[o.path, o.sha256, o.size, o.executable, o.is_directory]
                              for o in entry.outputs])
        with self._lock:
            self._entries[key] = (key, outputs, entry.exit_code, entry.stdout, entry.stderr,
                                  time.time())
            self._flush_if_due()

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self.db.execute("DELETE FROM action_cache WHERE key = ?", (key,))

    def record(self, key: str, label: str, mnemonic: str, output: str, inputs: dict,
               outputs: dict, duration: float, strategy: str, cached: bool) -> None:
        """Remember the last run of the action of `label` whose first output is `output`."""
        row = (label, mnemonic, output, key, json.dumps(inputs, sort_keys=True),
               json.dumps(outputs, sort_keys=True), duration, strategy, int(cached),
               time.time())
        with self._lock:
            self._runs[(label, mnemonic, output)] = row
            self._flush_if_due()

    def durations(self, labels_and_mnemonics: Iterable[tuple[str, str]] | None) -> dict:
        """The last recorded duration of each (label, mnemonic) (None: of all), for
        scheduling."""
        with self._lock:
            rows = self.db.execute("SELECT label, mnemonic, duration FROM last_runs "
                                   "WHERE cached = 0 ORDER BY finished").fetchall()
        if labels_and_mnemonics is None:
            return {(label, mnemonic): duration for label, mnemonic, duration in rows}
        wanted = set(labels_and_mnemonics)
        return {(label, mnemonic): duration for label, mnemonic, duration in rows
                if (label, mnemonic) in wanted}

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush_if_due(self) -> None:
        if time.monotonic() - self._flushed > self.FLUSH_SECONDS:
            self._flush()

    def _flush(self) -> None:
        self._flushed = time.monotonic()
        if not self._entries and not self._runs:
            return
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO action_cache VALUES (?, ?, ?, ?, ?, ?)",
                                self._entries.values())
            self.db.executemany("INSERT OR REPLACE INTO last_runs VALUES "
                                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self._runs.values())
        self._entries.clear()
        self._runs.clear()


def open_cache_db(cache_dir: Path) -> ActionCache:
    return ActionCache(connect(cache_dir / "cache.sqlite", _CACHE_SCHEMA))


def open_files_db(output_base: Path) -> sqlite3.Connection:
    return connect(output_base / ".bp-state" / "files.sqlite", _FILES_SCHEMA)
