"""bp's persistent state in SQLite: the action cache, action records, and file digests.

The action cache and records live in the shared cache directory; file digests (with
the stat data that lets bp skip re-hashing) live with each workspace's outputs.
Knows rows, not builds.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from buildpy.execution.schema import Database, Layout, open_database

_CACHE_TABLES = """
CREATE TABLE action_cache (
    key TEXT PRIMARY KEY,          -- the action key (REAPI Action digest)
    outputs TEXT NOT NULL,         -- JSON: [[path, sha256, size, executable, tree], ...]
                                   -- (a tree's sha256 names its REAPI Tree message)
    exit_code INTEGER NOT NULL,
    stdout TEXT, stderr TEXT,      -- digests of the captured output in the CAS
    created REAL NOT NULL,
    last_used REAL NOT NULL        -- when a build last stored or hit it
);
CREATE TABLE last_runs (
    label TEXT NOT NULL, mnemonic TEXT NOT NULL,
    output TEXT NOT NULL,          -- the action's first output: which action of the target
    key TEXT NOT NULL,
    inputs TEXT NOT NULL,          -- JSON: {path: sha256}
    outputs TEXT NOT NULL,         -- JSON: {path: sha256}
    duration REAL NOT NULL, strategy TEXT NOT NULL, cached INTEGER NOT NULL,
    finished REAL NOT NULL,
    PRIMARY KEY (label, mnemonic, output)
);
CREATE TABLE blobs (               -- the CAS's blobs, for its size bound (eviction.py)
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    last_used REAL NOT NULL        -- when a build last stored or read it
);
CREATE TABLE gc (                  -- eviction's own notes: when it last listed the CAS
    name TEXT PRIMARY KEY,
    value REAL NOT NULL
);
"""

_FEW_DURATIONS = 100   # actions whose durations are looked up one by one (`_durations_of`)

CACHE_LAYOUT = Layout(
    name="the action cache",
    version=2,
    schema=_CACHE_TABLES,
    columns={
        "action_cache": ("key", "outputs", "exit_code", "stdout", "stderr", "created",
                         "last_used"),
        "last_runs": ("label", "mnemonic", "output", "key", "inputs", "outputs", "duration",
                      "strategy", "cached", "finished"),
        "blobs": ("digest", "size", "last_used"),
        "gc": ("name", "value"),
    },
    migrations={
        # 0 -> 1: the layout before versions were recorded (version 1, as it was)
        0: """
        DROP TABLE IF EXISTS action_records;  -- before last_runs: one row per run, unbounded
        CREATE TABLE IF NOT EXISTS action_cache (
            key TEXT PRIMARY KEY, outputs TEXT NOT NULL, exit_code INTEGER NOT NULL,
            stdout TEXT, stderr TEXT, created REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS last_runs (
            label TEXT NOT NULL, mnemonic TEXT NOT NULL, output TEXT NOT NULL,
            key TEXT NOT NULL, inputs TEXT NOT NULL, outputs TEXT NOT NULL,
            duration REAL NOT NULL, strategy TEXT NOT NULL, cached INTEGER NOT NULL,
            finished REAL NOT NULL, PRIMARY KEY (label, mnemonic, output));
        """,
        # 1 -> 2: last use of entries and blobs, for the size bound
        1: """
        ALTER TABLE action_cache ADD COLUMN last_used REAL NOT NULL DEFAULT 0;
        UPDATE action_cache SET last_used = created;
        CREATE TABLE blobs (digest TEXT PRIMARY KEY, size INTEGER NOT NULL,
                            last_used REAL NOT NULL);
        CREATE TABLE gc (name TEXT PRIMARY KEY, value REAL NOT NULL);
        """,
    },
)

_DIGEST_TABLES = """
CREATE TABLE done (
    output TEXT PRIMARY KEY,       -- an action's first output
    fingerprint TEXT NOT NULL,     -- its command and input digests when it last completed
    outputs TEXT NOT NULL          -- JSON: {path: sha256} of all its outputs then
);
CREATE TABLE files (
    path TEXT PRIMARY KEY,
    size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER,
    blake3 TEXT, sha256 TEXT, executable INTEGER,
    stamp_ns INTEGER               -- the build stamp when the file was hashed
);
"""
_RUNS_TABLES = """
CREATE TABLE runs (                -- each action's last run, and why (explain.py)
    output TEXT PRIMARY KEY,       -- its first output
    label TEXT NOT NULL, mnemonic TEXT NOT NULL,
    how TEXT NOT NULL,             -- local-cache, remote-cache, local, remote, failed, ...
    reasons TEXT NOT NULL,         -- JSON: [why it ran, ...]
    manifest TEXT NOT NULL,        -- JSON: what its key was made from
    duration REAL NOT NULL,
    build REAL NOT NULL            -- when the build that ran it started
);
CREATE TABLE meta (name TEXT PRIMARY KEY, value REAL NOT NULL);
"""
_UNCHANGED_TABLE = """
CREATE TABLE unchanged (           -- the actions a build found up to date (explain.py)
    build REAL PRIMARY KEY,        -- when that build started (only the last is kept)
    actions BLOB NOT NULL          -- zlib'd: first output, label, mnemonic, ... NUL-separated
);
"""
_FILES_TABLES = _DIGEST_TABLES + _RUNS_TABLES + _UNCHANGED_TABLE

FILES_LAYOUT = Layout(
    name="the file digests",
    version=3,
    schema=_FILES_TABLES,
    columns={
        "done": ("output", "fingerprint", "outputs"),
        "files": ("path", "size", "mtime_ns", "ctime_ns", "inode", "blake3", "sha256",
                  "executable", "stamp_ns"),
        "runs": ("output", "label", "mnemonic", "how", "reasons", "manifest", "duration",
                 "build"),
        "meta": ("name", "value"),
        "unchanged": ("build", "actions"),
    },
    migrations={
        # 0 -> 1: the layout before versions were recorded (version 1, as it was)
        0: _DIGEST_TABLES.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"),
        # 1 -> 2: each action's last run and why it ran (bp why, --explain)
        1: _RUNS_TABLES,
        # 2 -> 3: the actions the last build found up to date (bp log lists them)
        2: _UNCHANGED_TABLE,
    },
)


@dataclass(frozen=True)
class OutputEntry:
    path: str
    sha256: str
    size: int
    executable: bool
    is_directory: bool = False   # a tree artifact: sha256 names its REAPI Tree message
    is_symlink: bool = False     # an unresolved symlink: sha256 names a blob of its text


@dataclass(frozen=True)
class CacheEntry:
    outputs: tuple[OutputEntry, ...]
    exit_code: int
    stdout: str | None
    stderr: str | None


class RowsAsAsked:
    """A table's rows by key, read as they are asked for: one by one while few are (a
    build after a one-file edit, the proof vouching for the rest), all at once from the
    `few`th on, which is cheaper from there (a point query costs what reading a few
    hundred rows does). `one(key)` reads a row (None: there is none), `every()` all of
    them; what the build puts wins over what it reads. `rows`: all of them, when a
    long-lived bp kept them from its last build."""

    def __init__(self, one: Callable[[str], Any], every: Callable[[], dict[str, Any]],
                 few: int, rows: dict[str, Any] | None = None):
        self._one, self._every, self._few = one, every, few
        self.known: dict[str, Any] = rows if rows is not None else {}   # (None: no row)
        self._all = rows is not None

    def get(self, key: str) -> Any:
        known = self.known
        if key in known or self._all:
            return known.get(key)
        if len(known) >= self._few:
            return self.every().get(key)
        row = known[key] = self._one(key)
        return row

    def __setitem__(self, key: str, row: Any) -> None:
        self.known[key] = row

    def every(self) -> dict[str, Any]:
        """Every row, read once."""
        if not self._all:
            read = self._every()
            read.update(self.known)   # (what this build put or found is the newer)
            self.known = {key: row for key, row in read.items() if row is not None}
            self._all = True
        return self.known

    @property
    def rows(self) -> dict[str, Any] | None:
        """What a long-lived bp keeps for its next build: every row, when this build read
        them all; else None (the next build reads them from the database, which holds
        all this one put once it flushed)."""
        return self.known if self._all else None


def _quiet(text: str) -> None:
    pass


class ActionCache:
    """The action cache and the last run of each action; safe to use from worker threads.

    Writes are buffered and go to SQLite in one transaction every few seconds and when
    the build ends (`flush`). A bp killed in between loses only the entries of its last
    seconds (those actions run again); their blobs are already in the CAS, so the cache
    never points at a missing blob. The last use of entries and blobs (for the size
    bound) is buffered the same way: a hit costs no write of its own.
    """

    FLUSH_SECONDS = 2.0

    def __init__(self, db: Database):
        self.db = db
        self._lock = threading.Lock()
        self._entries: dict[str, tuple] = {}    # key -> row, not yet written
        self._runs: dict[tuple, tuple] = {}     # (label, mnemonic, output) -> row
        self._hits: dict[str, float] = {}       # key -> when it was last hit
        self._blobs: dict[str, tuple[int, float]] = {}   # digest -> (size, last use)
        self.used: set[str] = set()             # every blob this process stored or read
        self.added = False                      # whether it stored a blob not there before
        self._flushed = time.monotonic()

    def use_blob(self, digest: str, size: int, added: bool = False) -> None:
        """Note that this process stored (`added`: a new blob) or read a CAS blob."""
        with self._lock:
            self._blobs[digest] = (size, time.time())
            self.used.add(digest)
            if added:
                self.added = True

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
        try:
            outputs = tuple(OutputEntry(str(o[0]), str(o[1]), int(o[2]), bool(o[3]),
                                        len(o) > 4 and bool(o[4]), len(o) > 5 and bool(o[5]))
                            for o in json.loads(row[0]))
        except (ValueError, TypeError, IndexError, KeyError):   # a damaged row: a miss
            self.drop(key)
            return None
        now = time.time()
        with self._lock:
            self._hits[key] = now
            for output in outputs:   # (a hit may find the outputs in place, reading no blob)
                self._blobs[output.sha256] = (output.size, now)
                self.used.add(output.sha256)
            for printed in (row[2], row[3]):
                if printed:
                    self._blobs[printed] = (0, now)
                    self.used.add(printed)
        return CacheEntry(outputs, row[1], row[2], row[3])

    def put(self, key: str, entry: CacheEntry) -> None:
        outputs = json.dumps([[o.path, o.sha256, o.size, o.executable, o.is_directory]
                              + ([True] if o.is_symlink else [])   # (older bp: 5 fields)
                              for o in entry.outputs])
        now = time.time()
        with self._lock:
            self._entries[key] = (key, outputs, entry.exit_code, entry.stdout, entry.stderr,
                                  now, now)
            for output in entry.outputs:
                self._blobs[output.sha256] = (output.size, now)
                self.used.add(output.sha256)
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
        wanted = None if labels_and_mnemonics is None else set(labels_and_mnemonics)
        if wanted is not None and len(wanted) <= _FEW_DURATIONS:
            return self._durations_of(wanted)
        with self._lock:
            rows = self.db.execute("SELECT label, mnemonic, duration FROM last_runs "
                                   "WHERE cached = 0 ORDER BY finished").fetchall()
        return {(label, mnemonic): duration for label, mnemonic, duration in rows
                if wanted is None or (label, mnemonic) in wanted}

    def _durations_of(self, wanted: set[tuple[str, str]]) -> dict:
        """`durations` of a few actions (a build after a small edit), each found by the
        table's key instead of reading every row."""
        found = {}
        with self._lock:
            for label, mnemonic in wanted:
                row = self.db.execute(
                    "SELECT duration FROM last_runs WHERE label = ? AND mnemonic = ? AND "
                    "cached = 0 ORDER BY finished DESC LIMIT 1", (label, mnemonic)).fetchone()
                if row is not None:
                    found[label, mnemonic] = row[0]
        return found

    def flush(self) -> None:
        with self._lock:
            self._flush()

    def _flush_if_due(self) -> None:
        if time.monotonic() - self._flushed > self.FLUSH_SECONDS:
            self._flush()

    def _flush(self) -> None:
        self._flushed = time.monotonic()
        if not self._entries and not self._runs and not self._hits and not self._blobs:
            return
        hits = [(when, key) for key, when in self._hits.items() if key not in self._entries]
        blobs = [(digest, size, when) for digest, (size, when) in self._blobs.items()]
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO action_cache VALUES "
                                "(?, ?, ?, ?, ?, ?, ?)", self._entries.values())
            self.db.executemany("INSERT OR REPLACE INTO last_runs VALUES "
                                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self._runs.values())
            self.db.executemany("UPDATE action_cache SET last_used = ? WHERE key = ?", hits)
            self.db.executemany("INSERT INTO blobs VALUES (?, ?, ?) ON CONFLICT (digest) DO "
                                "UPDATE SET last_used = excluded.last_used", blobs)
        self._entries.clear()
        self._runs.clear()
        self._hits.clear()
        self._blobs.clear()


def open_cache_db(cache_dir: Path, say: Callable[[str], None] = _quiet) -> ActionCache:
    return ActionCache(open_database(cache_dir / "cache.sqlite", CACHE_LAYOUT, say))


def open_files_db(output_base: Path, say: Callable[[str], None] = _quiet) -> Database:
    return open_database(output_base / ".bp-state" / "files.sqlite", FILES_LAYOUT, say)
