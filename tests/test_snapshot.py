"""The saved analysis: sound (it proves what analysis read, as it was read, and bp's own
code) and trusted only when it is exactly what this workspace saved."""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from buildpy import session as session_module
from buildpy.analysis import snapshot

GENRULE = {"p/BUILD": 'genrule(name = "g", outs = ["g.out"], cmd = "echo one > $@")'}


def _build(bp, root: Path) -> str:
    _without_proof(root)
    result = bp("-C", str(root), "build", "//...")
    assert result.code == 0, result.err
    return (root / "bp-bin" / "p" / "g.out").read_text()


def _without_proof(root: Path) -> None:
    """The saved analysis is what these tests are about: a build that would be told a
    no-op from the last one's proof (noop.py, tests/test_noop.py) never reads it."""
    shutil.rmtree(root / "bp-out" / ".bp-state" / "noop", ignore_errors=True)


GLOBBED = {"p/BUILD": '''
    load(":defs.bzl", "WORD")
    genrule(name = "g", srcs = glob(["*.in"]), outs = ["g.out"],
            cmd = "echo " + WORD + " $(SRCS) > $@")
    ''', "p/defs.bzl": 'WORD = "one"', "p/a.in": ""}


def _edit(root: Path, what: str) -> None:
    if what == "a BUILD file":
        build = root / "p" / "BUILD"
        build.write_text(build.read_text().replace("echo ", "echo X"))
    elif what == "a .bzl file, same size":
        (root / "p" / "defs.bzl").write_text('WORD = "two"')
    elif what == "a new file for glob()":
        (root / "p" / "b.in").write_text("")
    else:   # a file looked for and absent
        (root / "p" / "BUILD.bazel").write_text(
            'genrule(name = "g", outs = ["g.out"], cmd = "echo bazel > $@")')


@pytest.mark.parametrize("what, after", [
    ("a BUILD file", "Xone p/a.in\n"),
    ("a .bzl file, same size", "two p/a.in\n"),
    ("a new file for glob()", "one p/a.in p/b.in\n"),
    ("a new BUILD.bazel beside BUILD", "bazel\n"),
])
def test_an_edit_during_analysis_is_seen_by_the_next_build(bp, ws, monkeypatch, what,
                                                           after):
    root = ws(GLOBBED)
    analyze = session_module._analyze_plan

    def analyze_then_edit(*args, **kwargs):
        plan = analyze(*args, **kwargs)
        _edit(root, what)   # after bp read the files, before it saves what it read
        return plan

    monkeypatch.setattr(session_module, "_analyze_plan", analyze_then_edit)
    assert _build(bp, root) == "one p/a.in\n"
    monkeypatch.setattr(session_module, "_analyze_plan", analyze)
    assert _build(bp, root) == after
    assert _build(bp, root) == after


# ---- helpers -------------------------------------------------------------------------

@pytest.fixture
def starts(monkeypatch):
    """How each build started: "PlannedBuild" (the saved analysis reused) or
    "_Unplanned" (analyzing)."""
    seen: list[str] = []
    start = session_module._start_plan

    def spy(*args, **kwargs):
        result = start(*args, **kwargs)
        seen.append(type(result).__name__)
        return result

    monkeypatch.setattr(session_module, "_start_plan", spy)
    return seen


def _saved(root: Path) -> tuple[Path, Path]:
    """The saved analysis (in the shared cache) and its digest (in the workspace)."""
    [saved] = (Path(os.environ["XDG_CACHE_HOME"]) / "bp" / "analysis").glob("*/*.pickle")
    [digest] = (root / "bp-out" / ".bp-state" / "analysis").glob("*.sha256")
    assert digest.name.split(".")[0] == saved.name.split(".")[0]
    return saved, digest


# ---- reuse, and what makes bp analyze again ------------------------------------------

def test_the_example_monorepo_reuses_its_saved_analysis(bp, tmp_path, starts):
    # every class a real plan holds (cc, py, sh, runfiles, tests) must be read back
    root = tmp_path / "monorepo"
    shutil.copytree(REPO_ROOT / "examples" / "monorepo", root,
                    ignore=shutil.ignore_patterns("bp-out", "bp-bin"))
    for _ in range(2):
        _without_proof(root)
        result = bp("-C", str(root), "build", "//...")
        assert result.code == 0, result.err
    assert "INFO: the saved analysis" not in result.err
    assert starts == ["_Unplanned", "PlannedBuild"]


def test_a_new_build_bazel_beside_build_is_seen(bp, ws, starts):
    root = ws(GENRULE)
    assert _build(bp, root) == "one\n"
    (root / "p" / "BUILD.bazel").write_text(GENRULE["p/BUILD"].replace("one", "two"))
    assert _build(bp, root) == "two\n"   # BUILD.bazel wins, as in Bazel
    assert starts == ["_Unplanned", "_Unplanned"]


def test_one_changed_byte_in_the_saved_analysis_means_analyzing_again(bp, ws, starts):
    root = ws(GENRULE)
    assert _build(bp, root) == "one\n"
    saved, _ = _saved(root)
    data = saved.read_bytes()
    assert data.count(b"echo one") == 1
    saved.write_bytes(data.replace(b"echo one", b"echo owe"))   # still a valid pickle
    (root / "bp-bin" / "p" / "g.out").unlink()
    result = bp("-C", str(root), "build", "//...")
    assert result.code == 0, result.err
    assert f"INFO: the saved analysis {saved} is not the one this workspace saved " \
           "(changed or damaged); analyzing again\n" in result.err
    assert (root / "bp-bin" / "p" / "g.out").read_text() == "one\n"
    assert starts == ["_Unplanned", "_Unplanned"]
    assert _build(bp, root) == "one\n" and starts[-1] == "PlannedBuild"   # saved anew


def test_a_truncated_saved_analysis_means_analyzing_again(bp, ws, starts):
    root = ws(GENRULE)
    assert _build(bp, root) == "one\n"
    saved, _ = _saved(root)
    saved.write_bytes(saved.read_bytes()[:100])
    assert _build(bp, root) == "one\n"
    assert starts == ["_Unplanned", "_Unplanned"]


def test_without_the_workspace_state_the_saved_analysis_is_not_trusted(bp, ws, starts):
    root = ws(GENRULE)
    assert _build(bp, root) == "one\n"
    shutil.rmtree(root / "bp-out")
    result = bp("-C", str(root), "build", "//...")
    assert result.code == 0 and "INFO: the saved analysis" not in result.err
    assert starts == ["_Unplanned", "_Unplanned"]


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_with_code_in_place_of_the_saved_analysis_is_not_run(bp, ws, starts,
                                                                       tmp_path):
    root = ws(GENRULE)
    assert _build(bp, root) == "one\n"
    saved, digest = _saved(root)
    marker = tmp_path / "ran"
    saved.write_bytes(pickle.dumps(_Payload(marker)))   # whoever can write the cache
    assert _build(bp, root) == "one\n"
    assert not marker.exists()
    # even with the digest rewritten too, the unpickler builds no such thing
    data = snapshot._MAGIC + pickle.dumps((2, _Payload(marker)))
    saved.write_bytes(data)
    digest.write_text(f"{hashlib.sha256(data).hexdigest()} {len(data)}")
    _without_proof(root)
    result = bp("-C", str(root), "build", "//...")
    assert result.code == 0, result.err
    assert f"INFO: the saved analysis {saved} holds a value of class posix.system that " \
           "bp does not read back; analyzing again\n" in result.err
    assert not marker.exists()
    assert starts == ["_Unplanned", "_Unplanned", "_Unplanned"]


# ---- snapshot.load and save ----------------------------------------------------------

def _saved_pair(tmp_path: Path) -> tuple[Path, Path]:
    path, digest = tmp_path / "cache" / "a.pickle", tmp_path / "state" / "a.sha256"
    snapshot.save(path, digest, snapshot.Snapshot("k", 1, payload=("x", 1)))
    return path, digest


def test_load_reads_back_what_save_wrote(tmp_path):
    path, digest = _saved_pair(tmp_path)
    assert snapshot.load(path, digest, "k", ()) == snapshot.Snapshot("k", 1, payload=("x", 1))
    assert snapshot.load(path, digest, "other key", ()) is None
    assert list(digest.parent.iterdir()) == [digest]   # no temporary file left


def test_only_the_newest_saved_analyses_are_kept(tmp_path):
    for index in range(snapshot.KEPT + 3):
        path = tmp_path / "cache" / f"{index:02}.pickle"
        digest = tmp_path / "state" / f"{index:02}.sha256"
        snapshot.save(path, digest, snapshot.Snapshot(str(index), 1))
        os.utime(path, ns=(index * 10**9, index * 10**9))
        os.utime(digest, ns=(index * 10**9, index * 10**9))
    kept = [f"{index:02}" for index in range(3, snapshot.KEPT + 3)]
    assert sorted(p.stem for p in (tmp_path / "cache").iterdir()) == kept
    assert sorted(p.stem for p in (tmp_path / "state").iterdir()) == kept


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "fifo", "grown",
                                    "old format", "no digest", "bad digest file"])
def test_load_answers_none_for_anything_but_what_was_saved(tmp_path, damage):
    path, digest = _saved_pair(tmp_path)
    data = path.read_bytes()
    said: list[str] = []
    if damage == "flip":
        path.write_bytes(data[:-3] + bytes([data[-3] ^ 1]) + data[-2:])
    elif damage == "truncate":
        path.write_bytes(data[:-5])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "fifo":   # would block a plain read
        path.unlink()
        os.mkfifo(path)
    elif damage == "grown":
        path.write_bytes(data + b"\0" * 1000)
    elif damage == "no digest":
        digest.unlink()
    elif damage == "bad digest file":
        digest.write_text("\xff not a digest")
    if damage in ("old format",):   # the digest matches: bp wrote it, another version
        data = pickle.dumps((2, snapshot.Snapshot("k", 1)))
        path.write_bytes(data)
        digest.write_text(f"{hashlib.sha256(data).hexdigest()} {len(data)}")
    assert snapshot.load(path, digest, "k", (), said.append) is None
    assert len(said) == (1 if damage in ("flip", "truncate", "empty", "fifo", "grown")
                         else 0)


def test_load_never_raises_on_bytes_that_match_their_digest(tmp_path):
    # damage bp itself might write (a bug, a torn page that the digest was taken of)
    path, digest = _saved_pair(tmp_path)
    data = path.read_bytes()
    rng = random.Random(15)
    for _ in range(300):
        cut = bytearray(data[:rng.randrange(len(snapshot._MAGIC), len(data) + 1)])
        for _ in range(rng.randrange(3)):
            if len(cut) > len(snapshot._MAGIC):
                cut[rng.randrange(len(snapshot._MAGIC), len(cut))] = rng.randrange(256)
        path.write_bytes(bytes(cut))
        digest.write_text(f"{hashlib.sha256(bytes(cut)).hexdigest()} {len(cut)}")
        loaded = snapshot.load(path, digest, "k", ())
        assert loaded is None or isinstance(loaded, snapshot.Snapshot)


# ---- the key covers bp itself ----------------------------------------------------------

def test_bp_digest_covers_bps_code_and_the_libraries(tmp_path):
    code = tmp_path / "buildpy"
    (code / "analysis").mkdir(parents=True)
    (code / "analysis" / "x.py").write_text("A = 1\n")
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    site = tmp_path / "site"
    (site / "starlark_pyo3-2026.1.3.dist-info").mkdir(parents=True)
    (site / "starlark_pyo3-2026.1.3.dist-info" / "RECORD").write_text("starlark.so,sha256=a\n")

    def digest() -> str:
        return snapshot.bp_digest([code], ["starlark-pyo3", "networkx"], [str(site)])

    first = digest()
    assert digest() == first
    (code / "__pycache__" / "x.pyc").write_bytes(b"compiled again")   # not source
    assert digest() == first
    (code / "analysis" / "x.py").write_text("A = 2\n")                 # bp's Python code
    second = digest()
    assert second != first
    (site / "starlark_pyo3-2026.1.3.dist-info" / "RECORD").write_text("starlark.so,sha256=b\n")
    third = digest()                                                  # the same version rebuilt
    assert third != second
    (site / "starlark_pyo3-2026.1.3.dist-info").rename(site / "starlark_pyo3-2026.2.0.dist-info")
    fourth = digest()                                                 # another version
    assert fourth != third
    (site / "networkx-3.6.1.dist-info").mkdir()                       # one that was absent
    assert digest() != fourth


def test_bp_digest_names_every_dependency_of_bp():
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0] for d in project["dependencies"]}
    assert names == set(snapshot.DISTRIBUTIONS)


def test_bp_digest_sees_the_running_python_and_starlark():
    records = dict(snapshot._distribution_records(["starlark-pyo3"], sys.path))
    [(name, record)] = records.items()
    assert name.startswith("starlark_pyo3-") and b"starlark" in record
