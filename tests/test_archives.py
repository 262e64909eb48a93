"""Unit tests of the pieces under external repositories: archives (zip, tar.*, prefixes,
entries that escape), the downloader's cache and checksums, version order and minimal
version selection."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from buildpy.external.archives import ArchiveError, archive_type, extract
from buildpy.external.download import Downloader, DownloadError
from buildpy.external.modules import Dep, Module, select_versions, version_key


def _tar(path: Path, entries: list[tarfile.TarInfo | tuple[str, str]], mode: str) -> None:
    with tarfile.open(path, mode) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
                continue
            data = entry[1].encode()
            info = tarfile.TarInfo(entry[0])
            info.size = len(data)
            info.mode = 0o755 if entry[0].endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("kind, mode", [("tar.gz", "w:gz"), ("tar.xz", "w:xz"),
                                        ("tar.bz2", "w:bz2"), ("tar", "w")])
def test_tar_archives_with_strip_and_add_prefix(tmp_path, kind, mode):
    archive = tmp_path / f"a.{kind}"
    link = tarfile.TarInfo("top/link")
    link.type, link.linkname = tarfile.SYMTYPE, "dir/run.sh"
    _tar(archive, [("top/dir/run.sh", "echo\n"), ("top/README", "r"), link,
                   ("other/x", "not below the prefix")], mode)
    assert archive_type(archive.name) == kind
    extract(archive, tmp_path / "out", kind, strip_prefix="top", add_prefix="sub")
    assert (tmp_path / "out/sub/dir/run.sh").read_text() == "echo\n"
    assert os.access(tmp_path / "out/sub/dir/run.sh", os.X_OK)
    assert os.readlink(tmp_path / "out/sub/link") == "dir/run.sh"
    assert not (tmp_path / "out/other").exists()


def test_zip_and_the_errors(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zip_file:
        zip_file.writestr("pkg-1/BUILD", "x")
    extract(archive, tmp_path / "out", "zip", strip_prefix="pkg-1/")
    assert (tmp_path / "out/BUILD").read_text() == "x"
    with pytest.raises(ArchiveError, match="strip_prefix 'nope' matches no entry of a.zip"
                                           ".*\n?.*") as error:
        extract(archive, tmp_path / "o2", "zip", strip_prefix="nope")
    assert error.value.hint == "its top level holds: pkg-1"
    link = tarfile.TarInfo("evil")
    link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
    _tar(tmp_path / "b.tar", [link], "w")
    with pytest.raises(ArchiveError, match="'evil' is a symbolic link out of the repository"):
        extract(tmp_path / "b.tar", tmp_path / "o3", "tar")
    with pytest.raises(ArchiveError, match="cannot tell the archive type of 'x.bin'"):
        archive_type("x.bin")


def test_the_downloader_keeps_files_by_digest(tmp_path):
    source = tmp_path / "f.txt"
    source.write_text("content")
    sha = hashlib.sha256(b"content").hexdigest()
    downloader = Downloader(tmp_path / "cache")
    assert downloader.download([f"file://{source}"], tmp_path / "a", sha) == sha
    source.unlink()   # gone: the cache serves it
    assert downloader.download([f"file://{source}"], tmp_path / "b", sha) == sha
    assert (tmp_path / "b").read_text() == "content"
    with pytest.raises(DownloadError, match="could not download file://"):
        downloader.download([f"file://{source}"], tmp_path / "c", "1" * 64)
    source.write_text("other")
    with pytest.raises(DownloadError, match=f"expected sha256 {'1' * 64}, got "):
        downloader.download([f"file://{source}"], tmp_path / "d", "1" * 64)
    assert not (tmp_path / "d").exists()


def test_version_order():
    ordered = ["0.9", "1.0-rc1", "1.0", "1.0.1", "1.2", "1.10", "2.0.beta", ""]
    assert sorted(ordered, key=version_key) == ordered


def test_minimal_version_selection_takes_the_highest_and_drops_the_unreachable():
    graph = {
        ("a", "1.0"): Module("a", "1.0", deps=[Dep("c", "1.0", "c", False)]),
        ("b", "1.0"): Module("b", "1.0", deps=[Dep("c", "1.2", "c", False)]),
        ("c", "1.0"): Module("c", "1.0", deps=[Dep("old", "1.0", "old", False)]),
        ("c", "1.2"): Module("c", "1.2"),
        ("old", "1.0"): Module("old", "1.0"),
    }
    root = Module("root", deps=[Dep("a", "1.0", "a", False), Dep("b", "1.0", "b", False)])
    selected = select_versions(root, lambda name, version, at: graph[(name, version)])
    assert {n: m.version for n, m in selected.items()} == {"a": "1.0", "b": "1.0",
                                                            "c": "1.2"}


@pytest.mark.skipif(__import__("shutil").which("zstd") is None, reason="no zstd program")
def test_tar_zst_through_the_zstd_program(tmp_path):
    import subprocess

    _tar(tmp_path / "a.tar", [("top/f.txt", "zst\n")], "w")
    subprocess.run(["zstd", "-q", str(tmp_path / "a.tar"), "-o", str(tmp_path / "a.tar.zst")],
                   check=True)
    extract(tmp_path / "a.tar.zst", tmp_path / "out", archive_type("a.tar.zst"), "top")
    assert (tmp_path / "out/f.txt").read_text() == "zst\n"
