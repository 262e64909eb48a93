"""The state's lifecycle end to end: a bounded disk cache, damaged state files, and
`bp clean` under the workspace lock (with real bp processes where a lock is held)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIG = {"e/BUILD": '''
    genrule(name = "a", outs = ["a.out"], cmd = "head -c 1000 /dev/zero | tr '\\\\0' a > $@")
    genrule(name = "b", outs = ["b.out"], cmd = "head -c 1000 /dev/zero | tr '\\\\0' b > $@")
    '''}


def _blob(letter: str) -> Path:
    digest = hashlib.sha256(letter.encode() * 1000).hexdigest()
    return Path(os.environ["XDG_CACHE_HOME"]) / "bp" / "cas" / digest[:2] / digest


def _executed(err: str) -> int:
    line = [l for l in err.splitlines() if "actions:" in l][-1]
    return int(line.split(": ")[2].split(" executed")[0])


def test_a_tiny_bound_evicts_old_blobs_and_an_evicted_action_runs_again(bp, ws):
    root = ws(BIG)
    build = lambda *args: bp("-C", str(root), "build", "--disk_cache_max_size=1500", *args)
    first = build("//e:a")
    assert first.code == 0 and "trimmed" not in first.err, first.err
    assert _blob("a").exists()
    second = build("//e:b")
    assert second.code == 0, second.err
    assert "INFO: trimmed the disk cache to 1000 B (removed 1 least recently used blobs, " \
           "1000 B, and 1 action cache entries)" in second.err
    assert not _blob("a").exists() and _blob("b").exists()   # this build's blob stays
    assert (root / "bp-bin" / "e" / "a.out").read_text() == "a" * 1000   # outputs stay
    assert bp("-C", str(root), "clean").code == 0
    again = build("//e:a")
    assert again.code == 0 and _executed(again.err) == 1, again.err
    assert "damaged" not in again.err and "WARNING" not in again.err
    assert (root / "bp-bin" / "e" / "a.out").read_text() == "a" * 1000
    assert _blob("a").exists() and not _blob("b").exists()
    unbounded = bp("-C", str(root), "build", "--disk_cache_max_size=0", "//e:b")
    assert unbounded.code == 0 and "trimmed" not in unbounded.err
    assert _blob("a").exists() and _blob("b").exists()


def test_no_eviction_while_another_build_uses_the_cache(bp, ws):
    from buildpy.execution.eviction import CacheUse

    root = ws(BIG)
    build = lambda *args: bp("-C", str(root), "build", "--disk_cache_max_size=1500", *args)
    assert build("//e:a").code == 0
    running = CacheUse(Path(os.environ["XDG_CACHE_HOME"]) / "bp", print)   # another build
    try:
        over = build("//e:b")
        assert over.code == 0 and "trimmed" not in over.err, over.err
        assert _blob("a").exists() and _blob("b").exists()
        blocked = bp("-C", str(root), "clean", "--gc", "--noblock_for_lock")
        assert blocked.code == 36
        assert blocked.err.startswith("ERROR: bp commands are using the disk cache ")
    finally:
        running.release()
    ws({"e/BUILD": BIG["e/BUILD"].replace("1000", "10")})
    later = build("//e:a")   # the next build that stores a blob trims the cache
    assert "INFO: trimmed the disk cache" in later.err, later.err
    assert not _blob("a").exists() and _blob("b").exists()


def test_clean_gc_trims_the_cache_now(bp, ws):
    root = ws(BIG)
    assert bp("-C", str(root), "build", "//e:a").code == 0
    assert bp("-C", str(root), "build", "//e:b").code == 0
    result = bp("-C", str(root), "clean", "--gc", "--disk_cache_max_size=1500")
    assert result.code == 0, result.err
    assert "INFO: the disk cache holds 1000 B: removed 1 blobs (1000 B) and 1 action cache " \
           "entries\n" in result.err
    assert not _blob("a").exists() and _blob("b").exists()
    assert (root / "bp-bin" / "e" / "a.out").exists()   # only the cache was trimmed
    bad = bp("-C", str(root), "build", "--disk_cache_max_size=lots", "//e:a")
    assert bad.code == 2
    assert bad.err.startswith("ERROR: invalid --disk_cache_max_size 'lots'\n")


def test_damaged_state_files_are_rebuilt_with_one_line(bp, ws):
    root = ws(BIG)
    assert bp("-C", str(root), "build", "//e:a").code == 0
    files = root / "bp-out" / ".bp-state" / "files.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{files}{suffix}").unlink(missing_ok=True)
    files.write_bytes(b"this is not a database" * 100)
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "bp" / "cache.sqlite"
    db = __import__("sqlite3").connect(cache)
    db.execute("PRAGMA user_version = 99")   # as a newer bp would leave it
    db.close()
    (root / "bp-bin" / "e" / "a.out").unlink()   # (not a no-op: it looks in the cache)
    result = bp("-C", str(root), "build", "//e:a")
    assert result.code == 0, result.err
    aside, = files.parent.glob("files.sqlite.damaged-*")   # kept, to look at
    assert f"WARNING: {files} was damaged (file is not a database); moved it to {aside} " \
           "and started afresh\n" in result.err
    assert f"INFO: the action cache at {cache} has version 99, newer than this bp's 2; " \
           "starting a new one\n" in result.err
    assert "Traceback" not in result.err
    again = bp("-C", str(root), "build", "//e:a")
    assert "INFO: the" not in again.err and _executed(again.err) == 0


@pytest.fixture
def held(ws, bp):
    """A built workspace whose lock another process (pid 12345) holds: `held.release()`."""
    root = ws(BIG)
    assert bp("-C", str(root), "build", "//e:a").code == 0
    lock = root / "bp-out" / ".bp-state" / "lock"
    handle = open(lock, "a+")
    fcntl.flock(handle, fcntl.LOCK_EX)
    handle.seek(0)
    handle.truncate()
    handle.write("pid 12345")
    handle.flush()
    handle.root = root
    handle.inode = os.stat(lock).st_ino
    handle.release = lambda: fcntl.flock(handle, fcntl.LOCK_UN)
    yield handle
    handle.close()


def _bp_process(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "buildpy", "-C", str(root), *args],
                            stderr=subprocess.PIPE, text=True)


def test_clean_fails_on_a_held_lock_with_noblock_for_lock(bp, held):
    result = bp("-C", str(held.root), "clean", "--noblock_for_lock")
    assert result.code == 36
    assert result.err.startswith("ERROR: another bp command (pid 12345) is running in this "
                                 "workspace\n")
    assert (held.root / "bp-bin" / "e" / "a.out").exists()


def test_clean_waits_for_the_running_command(held):
    clean = _bp_process(held.root, "clean")
    try:
        line = clean.stderr.readline()   # it says so, then waits: nothing is removed yet
        assert line == "INFO: Another bp command (pid 12345) is running in this workspace; " \
                       "waiting for it to finish...\n"
        assert (held.root / "bp-bin" / "e" / "a.out").exists()
        held.release()
        assert clean.wait(timeout=60) == 0, clean.stderr.read()
    finally:
        clean.kill()
    assert not (held.root / "bp-out" / "linux_x86_64-fastbuild").exists()


def test_expunge_keeps_the_lock_file_so_bp_commands_still_exclude_each_other(bp, held):
    expunge = _bp_process(held.root, "clean", "--expunge")
    try:
        assert "waiting for it to finish" in expunge.stderr.readline()
        held.release()
        assert expunge.wait(timeout=60) == 0, expunge.stderr.read()
    finally:
        expunge.kill()
    state = held.root / "bp-out" / ".bp-state"
    assert sorted(p.name for p in state.iterdir()) == ["lock"]
    assert sorted(p.name for p in (held.root / "bp-out").iterdir()) == [".bp-state"]
    assert os.stat(state / "lock").st_ino == held.inode
    # whoever waited on the lock during the expunge still excludes every later bp
    fcntl.flock(held, fcntl.LOCK_EX)
    result = bp("-C", str(held.root), "build", "--noblock_for_lock", "//e:a")
    assert result.code == 36 and "another bp command" in result.err


def test_expunge_fails_on_a_held_lock_with_noblock_for_lock(bp, held):
    result = bp("-C", str(held.root), "clean", "--expunge", "--noblock_for_lock")
    assert result.code == 36
    assert result.err.startswith("ERROR: another bp command (pid 12345) is running in this "
                                 "workspace\n")
    assert (held.root / "bp-out" / ".bp-state" / "files.sqlite").exists()   # nothing gone
