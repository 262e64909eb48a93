"""The disk cache's size bound: least-recently-used eviction of CAS blobs, and of the
action-cache entries that name them, only while no build uses the cache.

Every bp that builds holds a shared lock on `<cache>/gc.lock` while it runs; eviction
needs the lock exclusively, so it never removes a blob a running build (of any workspace
sharing the cache) may still read. Last uses come from the `blobs` table that the action
cache writes in its batched flushes; the store is listed now and then to count blobs that
table never heard of (a killed bp's, an older bp's). Knows the cache directory, blob
sizes and last uses; not actions or builds.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

DEFAULT_MAX_SIZE = 10 * 1024 ** 3   # 10 GiB
KEEP_FRACTION = 0.9                 # eviction goes down to 90% of the bound
RESCAN_SECONDS = 7 * 24 * 3600      # list the store at least this often
_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(I?B)?", re.IGNORECASE)
_DIGEST = re.compile(r"[0-9a-f]{64}")


def parse_size(text: str) -> int:
    """Bytes from `10G`, `500M`, `1024` (powers of 1024); ValueError if it is not one."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(text)
    return int(match[1]) * _UNITS[match[2].upper()]


def format_size(size: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if size >= _UNITS[unit]:
            return f"{size / _UNITS[unit]:.1f} {unit}iB"
    return f"{size} B"


class CacheUse:
    """A hold on the shared cache: shared by running builds, exclusive for eviction."""

    def __init__(self, cache_dir: Path, say: Callable[[str], None], exclusive: bool = False,
                 block: bool = True):
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.handle = open(cache_dir / "gc.lock", "a+")
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(self.handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if not block:
                self.handle.close()
                raise
            say("waiting for other bp commands to finish with the disk cache..."
                if exclusive else "waiting for another bp to finish trimming the disk cache...")
            fcntl.flock(self.handle, mode)

    def try_exclusive(self) -> bool:
        """Whether this hold became exclusive (no other build uses the cache). A failed
        try may lose the shared hold: call it only once done with the cache."""
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if not self.handle.closed:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()


@dataclass(frozen=True)
class Eviction:
    """What one eviction did."""

    blobs: int          # blobs removed
    freed: int          # their bytes
    entries: int        # action-cache entries dropped
    total: int          # the store's size afterwards


def needs_eviction(db: sqlite3.Connection, max_size: int, now: float | None = None) -> bool:
    """Whether the store is over `max_size` (0: no bound) or due to be listed."""
    if not max_size:
        return False
    scanned = db.execute("SELECT value FROM gc WHERE name = 'scanned'").fetchone()
    if scanned is None or (now or time.time()) - scanned[0] > RESCAN_SECONDS:
        return True
    return _total(db) > max_size


def evict(db: sqlite3.Connection, store: Path, max_size: int, keep: Iterable[str] = (),
          rescan: bool = False, now: float | None = None) -> Eviction:
    """Remove least recently used blobs until the store is within KEEP_FRACTION of
    `max_size` (0: no bound), never one in `keep`, and drop the action-cache entries that
    name a removed blob or were last used before it. The caller holds the cache
    exclusively (CacheUse)."""
    now = now or time.time()
    scanned = db.execute("SELECT value FROM gc WHERE name = 'scanned'").fetchone()
    if rescan or scanned is None or now - scanned[0] > RESCAN_SECONDS:
        _scan(db, store, now)
    total = _total(db)
    if not max_size or total <= max_size:
        return Eviction(0, 0, 0, total)
    keep = set(keep)
    goal = int(max_size * KEEP_FRACTION)
    removed: list[str] = []
    freed, cutoff = 0, None
    for digest, size, last_used in db.execute(
            "SELECT digest, size, last_used FROM blobs ORDER BY last_used").fetchall():
        if total - freed <= goal:
            break
        if digest in keep:
            continue
        try:
            os.unlink(store / digest[:2] / digest)
        except FileNotFoundError:
            pass
        removed.append(digest)
        freed += size
        cutoff = last_used
    gone = set(removed)
    dropped = [key for key, outputs, stdout, stderr, last_used in db.execute(
        "SELECT key, outputs, stdout, stderr, last_used FROM action_cache")
        if (cutoff is not None and last_used <= cutoff)
        or not gone.isdisjoint(_DIGEST.findall(f"{outputs} {stdout} {stderr}"))]
    with db:
        db.execute("BEGIN")
        db.executemany("DELETE FROM blobs WHERE digest = ?", ((d,) for d in removed))
        db.executemany("DELETE FROM action_cache WHERE key = ?", ((k,) for k in dropped))
    return Eviction(len(removed), freed, len(dropped), total - freed)


def _total(db: sqlite3.Connection) -> int:
    return db.execute("SELECT COALESCE(SUM(size), 0) FROM blobs").fetchone()[0]


def _scan(db: sqlite3.Connection, store: Path, now: float) -> None:
    """Make the `blobs` table list exactly the store's blobs (a blob it did not know
    counts as last used when it was written), and empty the store's temporary files (no
    writer runs while the cache is held exclusively)."""
    found: dict[str, tuple[int, float]] = {}
    try:
        shards = [e for e in os.scandir(store) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        shards = []
    for shard in shards:
        if shard.name == "tmp":
            shutil.rmtree(shard.path, ignore_errors=True)
            os.makedirs(shard.path, exist_ok=True)
            continue
        for entry in os.scandir(shard.path):
            if _DIGEST.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                found[entry.name] = (st.st_size, st.st_mtime)
    known = {row[0] for row in db.execute("SELECT digest FROM blobs")}
    with db:
        db.execute("BEGIN")
        db.executemany("DELETE FROM blobs WHERE digest = ?",
                       ((d,) for d in known - found.keys()))
        db.executemany("INSERT INTO blobs VALUES (?, ?, ?)",
                       ((d, *found[d]) for d in found.keys() - known))
        db.execute("INSERT OR REPLACE INTO gc VALUES ('scanned', ?)", (now,))
