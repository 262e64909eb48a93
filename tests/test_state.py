"""bp's SQLite state has a lifecycle: versioned layouts that migrate or rebuild, and a
size-bounded CAS whose least recently used blobs go (schema.py, state.py, eviction.py)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from buildpy.execution.cas import ContentStore
from buildpy.execution.eviction import CacheUse, evict, format_size, needs_eviction, \
    parse_size
from buildpy.execution.state import CACHE_LAYOUT, FILES_LAYOUT, CacheEntry, OutputEntry, \
    open_cache_db, open_files_db

# the layout of both files before versions were recorded (user_version 0)
_UNVERSIONED_CACHE = """
CREATE TABLE action_cache (key TEXT PRIMARY KEY, outputs TEXT NOT NULL,
    exit_code INTEGER NOT NULL, stdout TEXT, stderr TEXT, created REAL NOT NULL);
CREATE TABLE last_runs (label TEXT NOT NULL, mnemonic TEXT NOT NULL, output TEXT NOT NULL,
    key TEXT NOT NULL, inputs TEXT NOT NULL, outputs TEXT NOT NULL, duration REAL NOT NULL,
    strategy TEXT NOT NULL, cached INTEGER NOT NULL, finished REAL NOT NULL,
    PRIMARY KEY (label, mnemonic, output));
"""
_UNVERSIONED_FILES = """
CREATE TABLE done (output TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, outputs TEXT NOT NULL);
CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,
    inode INTEGER, blake3 TEXT, sha256 TEXT, executable INTEGER, stamp_ns INTEGER);
"""
SHA = "ab" * 32


def _make(path: Path, script: str, version: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(script)
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def test_new_files_get_the_current_version(tmp_path):
    cache = open_cache_db(tmp_path)
    files = open_files_db(tmp_path / "out")
    assert cache.db.execute("PRAGMA user_version").fetchone()[0] == CACHE_LAYOUT.version
    assert files.execute("PRAGMA user_version").fetchone()[0] == FILES_LAYOUT.version
    said = []
    again = open_files_db(tmp_path / "out", said.append)   # the same version: used as is
    assert again.execute("SELECT count(*) FROM done").fetchone() == (0,) and said == []


def test_an_unversioned_cache_is_migrated_keeping_its_entries(tmp_path):
    path = tmp_path / "cache.sqlite"
    _make(path, _UNVERSIONED_CACHE)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO action_cache VALUES ('k', ?, 0, NULL, NULL, 5.0)",
               (json.dumps([["out/a", SHA, 3, False]]),))
    db.commit()
    db.close()
    said = []
    cache = open_cache_db(tmp_path, said.append)
    assert said == []   # a migration keeps the cache: nothing to say
    assert cache.get("k") == CacheEntry((OutputEntry("out/a", SHA, 3, False),), 0, None, None)
    assert cache.db.execute("SELECT last_used FROM action_cache").fetchone() == (5.0,)
    assert _columns(cache.db, "blobs") == ["digest", "size", "last_used"]
    assert cache.db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_an_unversioned_files_db_is_kept(tmp_path):
    path = tmp_path / "out" / ".bp-state" / "files.sqlite"
    _make(path, _UNVERSIONED_FILES + "INSERT INTO done VALUES ('o', 'f', '{}');")
    db = open_files_db(tmp_path / "out")
    assert db.execute("SELECT * FROM done").fetchall() == [("o", "f", "{}")]
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3   # migrated: runs too
    assert db.execute("SELECT * FROM runs").fetchall() == []
    assert db.execute("SELECT * FROM unchanged").fetchall() == []


@pytest.mark.parametrize("damage, reason", [
    ("garbage", "was damaged (file is not a database)"),
    ("old layout", "has tables this bp does not know"),
    ("newer", "has version 99, newer than this bp's 3"),
])
def test_a_damaged_or_unknown_files_db_is_rebuilt_with_one_line(tmp_path, damage, reason):
    path = tmp_path / "out" / ".bp-state" / "files.sqlite"
    if damage == "garbage":
        path.parent.mkdir(parents=True)
        path.write_bytes(b"\x00garbage, not a database\xff" * 200)
    elif damage == "old layout":   # `done` without its outputs column
        _make(path, "CREATE TABLE done (output TEXT PRIMARY KEY, fingerprint TEXT);"
                    "INSERT INTO done VALUES ('o', 'f');")
    else:
        _make(path, _UNVERSIONED_FILES + "INSERT INTO done VALUES ('o', 'f', '{}');", 99)
    said = []
    db = open_files_db(tmp_path / "out", said.append)
    if damage == "garbage":   # moved aside, not lost
        aside, = path.parent.glob("files.sqlite.damaged-*")
        assert said == [f"WARNING: {path} {reason}; moved it to {aside} and started afresh"]
    else:
        assert said == [f"the file digests at {path} {reason}; starting a new one"]
    assert db.execute("SELECT count(*) FROM done").fetchone() == (0,)
    assert _columns(db, "done") == ["output", "fingerprint", "outputs"]
    db.execute("INSERT INTO done VALUES ('o', 'f', '{}')")   # usable
    said.clear()
    open_files_db(tmp_path / "out", said.append)
    assert said == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "newer", "wrong columns"])
def test_a_damaged_cache_db_is_rebuilt(tmp_path, damage):
    path = tmp_path / "cache.sqlite"
    if damage == "garbage":
        path.write_bytes(b"not sqlite at all\n" * 100)
    elif damage == "truncated":   # the header of a database, then nothing
        _make(path, _UNVERSIONED_CACHE)
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "newer":
        _make(path, _UNVERSIONED_CACHE, 7)
    else:
        _make(path, "CREATE TABLE action_cache (key TEXT PRIMARY KEY, value BLOB);")
    said = []
    cache = open_cache_db(tmp_path, said.append)
    assert len(said) == 1 and said[0].startswith(
        f"WARNING: {path} was damaged" if damage in ("garbage", "truncated")
        else f"the action cache at {path} ")
    cache.put("k", CacheEntry((OutputEntry("o", SHA, 1, False),), 0, None, None))
    cache.flush()
    assert open_cache_db(tmp_path).get("k") is not None


def test_hits_and_stores_record_last_use_in_the_batched_flush(tmp_path, monkeypatch):
    cache = open_cache_db(tmp_path)
    store = ContentStore(tmp_path / "cas", cache.use_blob)
    digest = store.put_bytes(b"hello")
    assert cache.added and digest in cache.used
    assert cache.db.execute("SELECT count(*) FROM blobs").fetchone() == (0,)   # not yet
    cache.put("k", CacheEntry((OutputEntry("o", digest, 5, False),), 0, None, None))
    cache.flush()
    (stored,), = cache.db.execute("SELECT last_used FROM action_cache WHERE key = 'k'")
    monkeypatch.setattr("time.time", lambda: stored + 100)
    assert cache.get("k") is not None
    cache.flush()
    assert cache.db.execute("SELECT last_used FROM action_cache").fetchone() == (stored + 100,)
    assert cache.db.execute("SELECT size, last_used FROM blobs").fetchall() == \
        [(5, stored + 100)]


def _store_with(tmp_path: Path, blobs: dict[bytes, float]):
    """A cache and store holding `blobs`, each last used at the given time."""
    cache = open_cache_db(tmp_path)
    store = ContentStore(tmp_path / "cas")
    for data, when in blobs.items():
        digest = store.put_bytes(data)
        cache.db.execute("INSERT INTO blobs VALUES (?, ?, ?)", (digest, len(data), when))
        cache.db.execute("INSERT INTO action_cache VALUES (?, ?, 0, NULL, NULL, ?, ?)",
                         (f"key-{data[:1].decode()}", json.dumps([["o", digest, len(data),
                                                                    False]]), when, when))
    cache.db.execute("INSERT INTO gc VALUES ('scanned', 1000.0)")
    return cache, store


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_eviction_removes_least_recently_used_blobs_and_their_entries(tmp_path):
    blobs = {b"a" * 100: 1.0, b"b" * 100: 2.0, b"c" * 100: 3.0, b"d" * 100: 4.0}
    cache, store = _store_with(tmp_path, blobs)
    assert needs_eviction(cache.db, 399, now=1000.0)
    assert not needs_eviction(cache.db, 400, now=1000.0)
    assert not needs_eviction(cache.db, 0, now=1000.0)   # 0: no bound
    done = evict(cache.db, store.root, 300, keep={_sha(b"a" * 100)}, now=1000.0)
    # down to 90% of 300: two blobs go, the oldest but the one a build still uses
    assert (done.blobs, done.freed, done.total) == (2, 200, 200)
    assert [store.has(_sha(d)) for d in blobs] == [True, False, False, True]
    # entries unused since the newest removed blob go too, even key-a, whose blob stays
    assert cache.db.execute("SELECT key FROM action_cache").fetchall() == [("key-d",)]
    assert done.entries == 3


def test_eviction_lists_the_store_to_count_blobs_it_did_not_record(tmp_path):
    cache, store = _store_with(tmp_path, {b"x" * 50: 10.0})
    unknown = store.put_bytes(b"y" * 500)            # say, a bp killed before its flush
    (store.root / "tmp" / "leftover").write_text("")
    done = evict(cache.db, store.root, 1000, rescan=True, now=2000.0)
    assert done == type(done)(0, 0, 0, 550)
    assert not (store.root / "tmp" / "leftover").exists()
    assert cache.db.execute("SELECT size FROM blobs WHERE digest = ?",
                            (unknown,)).fetchone() == (500,)
    store.discard(unknown)
    assert evict(cache.db, store.root, 1000, rescan=True, now=2000.0).total == 50


def test_a_store_not_listed_for_a_week_is_listed_again(tmp_path):
    cache, _ = _store_with(tmp_path, {b"x": 1.0})
    assert not needs_eviction(cache.db, 10, now=1000.0 + 3600)
    assert needs_eviction(cache.db, 10, now=1000.0 + 8 * 24 * 3600)


def test_eviction_waits_for_builds_that_use_the_cache(tmp_path):
    build = CacheUse(tmp_path, print)
    other = CacheUse(tmp_path, print)   # builds share the cache
    with pytest.raises(BlockingIOError):
        CacheUse(tmp_path, print, exclusive=True, block=False)
    assert not build.try_exclusive()
    other.release()
    build = CacheUse(tmp_path, print)
    assert build.try_exclusive()
    with pytest.raises(BlockingIOError):
        CacheUse(tmp_path, print, block=False)
    build.release()


@pytest.mark.parametrize("text, size", [("0", 0), ("1024", 1024), ("10G", 10 << 30),
                                        ("500m", 500 << 20), ("2KiB", 2048), ("1TB", 1 << 40)])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ten", "1.5G", "-1", "10X"])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_format_size():
    assert [format_size(n) for n in (12, 2048, 10 << 30)] == ["12 B", "2.0 KiB", "10.0 GiB"]


def test_durations_of_a_few_actions_are_those_read_from_every_row(tmp_path, monkeypatch):
    """A build with few actions to look at finds their last durations by the table's
    key; the answer is the one all rows give: the latest run that was not a cache hit."""
    import itertools
    import time
    import types

    from buildpy.execution import state

    clock = itertools.count(1000)   # (each run finishes after the one before)
    monkeypatch.setattr(state, "time", types.SimpleNamespace(
        time=lambda: float(next(clock)), monotonic=time.monotonic))
    cache = open_cache_db(tmp_path)
    runs = [("//a:a", "Genrule", "a1", 1.0, False), ("//a:a", "Genrule", "a2", 2.0, False),
            ("//a:a", "Genrule", "a3", 9.0, True), ("//b:b", "Genrule", "b", 3.0, False),
            ("//c:c", "CppCompile", "c", 4.0, True)]
    for label, mnemonic, output, duration, cached in runs:
        cache.record("k", label, mnemonic, output, {}, {}, duration, "local", cached)
        cache.flush()
    wanted = [("//a:a", "Genrule"), ("//b:b", "Genrule"), ("//c:c", "CppCompile"),
              ("//d:d", "Genrule")]
    few = cache.durations(wanted)
    monkeypatch.setattr(state, "_FEW_DURATIONS", 0)
    assert few == cache.durations(wanted) == {("//a:a", "Genrule"): 2.0,
                                             ("//b:b", "Genrule"): 3.0}
    cache.db.close()
