"""Damaged state heals itself: a damaged action cache or file-digest database, found on
opening or on any later use, is moved aside with one warning and the command goes on
with correct outputs; a damaged running.log is read past (schema.py, state.py)."""

from __future__ import annotations

import hashlib
import os
import random
import re
import sqlite3
from pathlib import Path

import pytest

from buildpy.execution.state import CacheEntry, OutputEntry, open_cache_db, open_files_db

GENRULES = "\n".join(
    f'genrule(name = "g{i}", srcs = ["in.txt"], outs = ["g{i}.out"], '
    f'cmd = "cat $< > $@; echo {i} >> $@")' for i in range(12))
WARNING = re.compile(r"^WARNING: (\S+) was damaged \((.+)\); moved it to (\S+) and started "
                     r"afresh$", re.M)


def _checkpoint(path: Path) -> None:
    """Write the write-ahead log into the file itself, so that damage to the file is
    what SQLite reads next."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _overwrite_pages(path: Path, seed: int, pages: int = 3) -> None:
    """Overwrite `pages` random 4 KB pages of `path` with random bytes (fixed seed)."""
    rng = random.Random(seed)
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        for _ in range(pages):
            handle.seek(rng.randrange(0, max(1, size // 4096)) * 4096)
            handle.write(rng.randbytes(4096))


def _damage(path: Path, kind: str) -> None:
    _checkpoint(path)
    if kind == "not a database":
        path.write_bytes(b"\x00garbage\xff" * 1000)
    elif kind == "malformed":   # the schema page overwritten: every query fails
        with open(path, "r+b") as handle:
            handle.seek(100)
            handle.write(random.Random(7).randbytes(3996))
    elif kind == "unsupported format":   # the header's schema format number scribbled on
        with open(path, "r+b") as handle:
            handle.seek(44)
            handle.write(b"\x7f\x00\x00\x09")
    elif kind == "directory":
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.unlink(f"{path}{suffix}")
        path.mkdir()
    elif kind == "journal directory":   # a directory where its write-ahead log belongs
        Path(f"{path}-wal").unlink(missing_ok=True)
        Path(f"{path}-wal").mkdir()
    else:
        _overwrite_pages(path, seed=int(kind.split()[-1]), pages=4)


@pytest.fixture
def built(bp, ws):
    root = ws({"p/BUILD": GENRULES, "p/in.txt": "in\n"})
    first = bp("-C", str(root), "build", "--spawn_strategy=local", "//p:all")
    assert first.code == 0, first.err
    return root


def _outputs_correct(root: Path) -> None:
    for i in range(12):
        assert (root / "bp-bin" / "p" / f"g{i}.out").read_text() == f"in\n{i}\n"


@pytest.mark.parametrize("which", ["cache", "files"])
@pytest.mark.parametrize("kind", ["not a database", "malformed", "unsupported format",
                                  "directory",
                                  "journal directory", "random pages 1", "random pages 2"])
def test_a_damaged_database_is_moved_aside_and_the_build_goes_on(bp, built, which, kind):
    root = built
    path = (Path(os.environ["XDG_CACHE_HOME"]) / "bp" / "cache.sqlite" if which == "cache"
            else root / "bp-out" / ".bp-state" / "files.sqlite")
    _damage(path, kind)
    (root / "p" / "in.txt").write_text("in\n")   # (same content: outputs from the cache)
    result = bp("-C", str(root), "build", "--spawn_strategy=local", "//p:all")
    assert result.code == 0, result.err
    assert "Traceback" not in result.err and "INTERNAL ERROR" not in result.err
    _outputs_correct(root)
    warnings = WARNING.findall(result.err)
    if not kind.startswith("random"):   # (random pages may hit pages no query reads)
        assert len(warnings) == 1, result.err
    for damaged, reason, aside in warnings:
        assert damaged == str(path)
        assert reason == {"directory": "a directory is in its place",
                          "journal directory": f"a directory is in the place of "
                                               f"{path.name}-wal",
                          "not a database": "file is not a database"}.get(
                              kind, reason)
        assert Path(aside).parent == path.parent
        assert Path(aside).name.startswith(f"{path.name}.damaged-")
        assert os.path.lexists(aside)
    again = bp("-C", str(root), "build", "--spawn_strategy=local", "//p:all")
    assert again.code == 0 and "WARNING" not in again.err, again.err
    _outputs_correct(root)


def test_a_damaged_running_log_is_read_past(bp, built):
    log = built / "bp-out" / ".bp-state" / "running.log"
    with open(log, "ab") as handle:
        handle.write(b"+12\xff\xfe 3.0\n-\xc3\n+99999999 not-a-time\n")
    result = bp("-C", str(built), "build", "--spawn_strategy=local", "//p:all")
    assert result.code == 0, result.err
    _outputs_correct(built)


def _sha(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


@pytest.mark.parametrize("seed", range(12))
def test_random_page_damage_never_escapes_the_state(tmp_path, seed):
    """Whatever pages are overwritten, every use of the action cache and the file
    digests answers (a miss at worst) and the files work afterwards."""
    cache = open_cache_db(tmp_path)
    for i in range(400):
        cache.put(_sha(i), CacheEntry((OutputEntry(f"out/{i}", _sha(i), i, False),), 0,
                                      None, None))
        cache.record(_sha(i), f"//p:{i}", "Genrule", f"out/{i}", {"in": _sha(i)}, {}, 0.1,
                     "local", False)
    cache.flush()
    cache.db.close()
    files = open_files_db(tmp_path / "out")
    files.executemany("INSERT INTO done VALUES (?, ?, ?)",
                      ((f"out/{i}", _sha(i), "{}") for i in range(400)))
    files.close()
    for path in (tmp_path / "cache.sqlite", tmp_path / "out" / ".bp-state" / "files.sqlite"):
        _checkpoint(path)
        _overwrite_pages(path, seed)
    said = []
    cache = open_cache_db(tmp_path, said.append)
    for i in range(400):
        entry = cache.get(_sha(i))
        assert entry is None or entry.outputs[0].path == f"out/{i}"
    cache.durations(None)
    cache.put("new", CacheEntry((), 0, None, None))
    cache.flush()
    assert cache.get("new") is not None
    files = open_files_db(tmp_path / "out", said.append)
    files.execute("SELECT * FROM done").fetchall()
    files.execute("SELECT * FROM files").fetchall()
    with files:
        files.execute("BEGIN")
        files.executemany("INSERT OR REPLACE INTO done VALUES (?, ?, ?)", [("x", "f", "{}")])
    assert files.execute("SELECT outputs FROM done WHERE output = 'x'").fetchone() == ("{}",)
    assert len(said) <= 2 and all(WARNING.match(line) for line in said)


@pytest.mark.parametrize("where, name, found", [
    ("state", "stamp", "a directory"), ("state", "analysis-stamp", "a directory"),
    ("state", "lock", "a directory"), ("state", "running.log", "a directory"),
    ("out", ".bp-state", "a file"), ("cache", "gc.lock", "a directory"),
    ("cache", "cas/tmp", "a file"), ("cache", "cas", "a file"),
])
def test_a_state_entry_of_the_wrong_kind_is_moved_aside(bp, built, where, name, found):
    base = {"state": built / "bp-out" / ".bp-state", "out": built / "bp-out",
            "cache": Path(os.environ["XDG_CACHE_HOME"]) / "bp"}[where]
    path = base / name
    if path.is_dir():
        os.rename(path, base.parent / f"{path.name}-kept")   # (a store with read-only blobs)
    else:
        path.unlink()
    if found == "a directory":
        path.mkdir()
    else:
        path.write_text("in the way")
    (built / "p" / "in.txt").write_text("again\n")   # a build that must write everything
    result = bp("-C", str(built), "build", "--spawn_strategy=local", "//p:all")
    assert result.code == 0, result.err
    aside, = path.parent.glob(f"{path.name}.damaged-*")
    assert f"WARNING: {path} was damaged ({found} is in its place); moved it to {aside} " \
           "and started afresh\n" in result.err
    assert (built / "bp-bin" / "p" / "g3.out").read_text() == "again\n3\n"


def _state_files(root: Path) -> list[Path]:
    """Every file of bp's own state: the workspace's and the shared cache's (not blobs)."""
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "bp"
    found = [p for p in (root / "bp-out" / ".bp-state").rglob("*") if p.is_file()]
    found += [p for p in cache.iterdir() if p.is_file()]
    found += [p for p in (cache / "analysis").rglob("*") if p.is_file()]
    return sorted(p for p in found if ".damaged-" not in p.name)


def _random_damage(path: Path, rng: random.Random) -> None:
    kind = rng.choice(["garbage", "empty", "half", "directory", "pages", "not text"])
    data = path.read_bytes()
    if kind == "directory":
        path.unlink()
        path.mkdir()
    elif kind == "pages" and len(data) >= 4096:
        _overwrite_pages(path, rng.randrange(1000), pages=2)
    elif kind == "not text":
        path.write_bytes(data + b"\xff\xfe\x00 \xc3(\n")
    else:
        path.write_bytes({"garbage": rng.randbytes(max(1, len(data))), "empty": b"",
                          "half": data[:len(data) // 2]}.get(kind, rng.randbytes(64)))


def test_any_damage_to_any_state_file_never_stops_the_next_build(bp, built):
    """The invariant behind the cases above: whatever state file is damaged however,
    the next build succeeds with correct outputs (fixed seed; more rounds on demand
    with BP_STATE_FUZZ_ROUNDS)."""
    rng = random.Random(1234)
    for round in range(int(os.environ.get("BP_STATE_FUZZ_ROUNDS", "8"))):
        for path in rng.sample(_state_files(built), 2):
            _random_damage(path, rng)
        (built / "p" / "in.txt").write_text(rng.choice(["in\n", "again\n"]))
        result = bp("-C", str(built), "build", "--spawn_strategy=local", "//p:all")
        assert result.code == 0, (round, result.err)
        assert "Traceback" not in result.err
        text = (built / "p" / "in.txt").read_text()
        for i in range(12):
            assert (built / "bp-bin" / "p" / f"g{i}.out").read_text() == f"{text}{i}\n"
