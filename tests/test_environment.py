"""The environment's faults exit 36 with the path and what to do, as early as they can
be known: bp-out that is a file or a dangling link, a read-only bp-out, cache or
workspace, a cache directory that cannot exist, a full disk (local.py, schema.py, and
the safety net in cli.py)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from buildpy.core.errors import environment_error

BUILD = {"p/BUILD": 'genrule(name = "g", srcs = ["in.txt"], outs = ["g.out"], '
                    'cmd = "cat $< > $@")\n'
                    'genrule(name = "big", outs = ["big.out"], '
                    'cmd = "head -c 3000000 /dev/zero > $@")\n',
         "p/in.txt": "in\n"}
BP = str(Path(sys.executable).parent / "bp")
CACHE_HINT = "hint: make it writable, or give bp another one with --disk_cache=DIR (or " \
    "XDG_CACHE_HOME)\n"
OUTPUT_HINT = "hint: bp keeps its outputs and state in bp-out: make the workspace (or " \
    "bp-out) writable\n"
SPACE_HINT = "hint: free some space on that disk (bp clean --gc trims the shared cache to " \
    "--disk_cache_max_size), then run the command again\n"


def _bwrap_works() -> bool:
    if shutil.which("bwrap") is None:
        return False
    probe = subprocess.run(["bwrap", "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                            "--tmpfs", "/mnt", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


needs_bwrap = pytest.mark.skipif(not _bwrap_works(), reason="needs bubblewrap with mount "
                                 "namespaces (read-only binds, small tmpfs)")


def _isolated(args: list[str], cwd: Path, *mounts: str) -> subprocess.CompletedProcess:
    """Run bp under bubblewrap with extra `mounts` (read-only binds, small tmpfs)."""
    command = ["bwrap", "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *mounts,
               "--chdir", str(cwd), BP, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))


def test_bp_out_as_a_regular_file(bp, ws):
    root = ws(BUILD)
    (root / "bp-out").write_text("not a directory")
    result = bp("-C", str(root), "build", "//p:g")
    assert result.code == 36
    assert result.err == (f"ERROR: {root}/bp-out is not a directory\n"
                          "hint: bp keeps its outputs in bp-out: move that file away, then "
                          "run the command again\n")


def test_bp_out_as_a_dangling_symlink(bp, ws, tmp_path):
    root = ws(BUILD)
    (root / "bp-out").symlink_to(tmp_path / "gone")
    for command in ("build", "test"):
        result = bp("-C", str(root), command, "//p:g")
        assert result.code == 36
        assert result.err == (f"ERROR: {root}/bp-out is a symlink to {tmp_path}/gone, which "
                              "does not exist\nhint: create that directory, or remove the "
                              "link (bp then makes bp-out itself)\n")


def test_a_cache_directory_that_cannot_be_made(bp, ws, monkeypatch):
    root = ws(BUILD)
    monkeypatch.setenv("XDG_CACHE_HOME", "/proc/nope")
    result = bp("-C", str(root), "build", "//p:g")
    assert result.code == 36
    assert result.err == ("ERROR: cannot create the disk cache /proc/nope/bp: No such file "
                          "or directory\n" + CACHE_HINT)
    assert not (root / "bp-out" / "p").exists()   # said before anything was built
    result = bp("-C", str(root), "clean", "--gc")
    assert result.code == 36
    assert result.err == ("ERROR: cannot create the disk cache /proc/nope/bp: No such file "
                          "or directory\n" + CACHE_HINT)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permissions")
def test_a_cache_directory_without_write_permission(bp, ws, tmp_path):
    root = ws(BUILD)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o555)
    try:
        result = bp("-C", str(root), "build", f"--disk_cache={cache}", "//p:g")
    finally:
        cache.chmod(0o755)
    assert result.code == 36
    assert result.err == (f"ERROR: cannot write to the disk cache {cache}: Permission "
                          "denied\n" + CACHE_HINT)


@needs_bwrap
def test_read_only_cache_output_directory_and_workspace(bp, ws):
    root = ws(BUILD)
    assert bp("-C", str(root), "build", "//p:g").code == 0
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "bp"
    (root / "p" / "in.txt").write_text("changed\n")   # a build that must write

    result = _isolated(["build", "//p:g"], root, "--ro-bind", str(cache), str(cache))
    assert result.returncode == 36, result.stderr
    assert result.stderr == (f"ERROR: cannot write to the disk cache {cache}: Read-only "
                             "file system\n" + CACHE_HINT)

    for read_only in (root / "bp-out", root):
        result = _isolated(["build", "//p:g"], root, "--ro-bind", str(read_only),
                           str(read_only))
        assert result.returncode == 36, result.stderr
        assert result.stderr == (f"ERROR: cannot write to the output directory "
                                 f"{root}/bp-out: Read-only file system\n" + OUTPUT_HINT)


@needs_bwrap
def test_a_read_only_workspace_without_bp_out(bp, ws):
    root = ws(BUILD)
    result = _isolated(["build", "//p:g"], root, "--ro-bind", str(root), str(root))
    assert result.returncode == 36, result.stderr
    assert result.stderr == (f"ERROR: cannot create the output directory {root}/bp-out: "
                             "Read-only file system\n" + OUTPUT_HINT)


@needs_bwrap
@pytest.mark.parametrize("size", [4096, 16384, 65536, 1048576])
@pytest.mark.parametrize("where", ["cache", "bp-out"])
def test_a_full_disk_is_the_environment(ws, tmp_path, where, size):
    """Wherever the disk fills up while bp opens its state (the lock, stamps, SQLite
    files), bp says which file it could not write and what to do."""
    root = ws(BUILD)
    cache = tmp_path / "small"
    cache.mkdir()
    full = cache if where == "cache" else root / "bp-out"
    full.mkdir(exist_ok=True)
    result = _isolated(["build", "--spawn_strategy=local", f"--disk_cache={cache}/bp",
                        "//p:big"], root, "--size", str(size), "--tmpfs", str(full))
    if "Genrule failed: exit code 1" in result.stderr:   # the action's own write failed:
        assert result.returncode == 1                    # its failure, as in Bazel
        assert "No space left on device" in result.stderr
        return
    if "could not store its outputs" in result.stderr:   # room for the state, not the
        assert result.returncode == 36, result.stderr      # action's outputs
        assert "could not store its outputs: [Errno 28] No space left on device" in \
            result.stderr
        assert result.stderr.endswith(f"{SPACE_HINT}INFO: 1 actions: 0 executed, 0 cache "
                                      "hits\n"), result.stderr
        return
    assert result.returncode == 36, result.stderr
    first, hint = result.stderr.splitlines()[:2]
    assert first.startswith(f"ERROR: cannot write {full}") or first.startswith(
        f"ERROR: cannot write the {'action cache' if where == 'cache' else 'file digests'} "
        f"at {full}"), result.stderr
    assert first.endswith(("No space left on device", "no space left on the device"))
    assert hint + "\n" == SPACE_HINT
    assert "Traceback" not in result.stderr


def test_uncaught_environment_errors_exit_36_naming_the_file(bp, ws, monkeypatch):
    """The safety net: an OSError of the environment no nearer code reported."""
    root = ws(BUILD)
    for number, text in [(errno.ENOSPC, "cannot write /x/state: No space left on device"),
                         (errno.EROFS, "cannot write /x/state: Read-only file system"),
                         (errno.EACCES, "cannot access /x/state: Permission denied"),
                         (errno.EDQUOT, "cannot write /x/state: Disk quota exceeded")]:
        def fail(*args, number=number, **kwargs):
            raise OSError(number, os.strerror(number), "/x/state")

        monkeypatch.setattr("buildpy.session.open_session", fail)
        result = bp("-C", str(root), "query", "//p:all")
        assert result.code == 36
        assert result.err.startswith(f"ERROR: {text}\nhint: ")
    assert environment_error(OSError(errno.ENOENT, "No such file")) is None

    def bug(*args, **kwargs):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr("buildpy.session.open_session", bug)
    assert bp("-C", str(root), "query", "//p:all").code == 37   # still a bug of ours


def test_a_full_disk_under_the_store_names_the_file(tmp_path, monkeypatch):
    """Writes into the CAS that find the disk full say which file (the write seam)."""
    from buildpy.execution import cas

    store = cas.ContentStore(tmp_path / "cas")

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cas, "_write_all", full)
    with pytest.raises(OSError) as raised:
        store.put_bytes(b"data")
    assert raised.value.errno == errno.ENOSPC
    assert raised.value.filename.startswith(str(tmp_path / "cas" / "tmp"))
    assert environment_error(raised.value).render().startswith(
        f"cannot write {raised.value.filename}: No space left on device\nhint: free some")
