"""Archives unpacked into repositories: zip and tar (gz, bz2, xz, zst), with Bazel's
strip_prefix and add_prefix; no entry may land outside the destination.

Knows archive formats and paths; not downloads, repositories nor rules.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

from buildpy.core.errors import UserError

# archive type -> the file name endings that mean it
TYPES = {"zip": (".zip", ".jar", ".war", ".aar", ".nupkg", ".whl"),
         "tar.gz": (".tar.gz", ".tgz"), "tar.bz2": (".tar.bz2", ".tbz"),
         "tar.xz": (".tar.xz", ".txz"), "tar.zst": (".tar.zst", ".tzst"), "tar": (".tar",)}


class ArchiveError(UserError):
    """An archive that cannot be unpacked as asked."""


def archive_type(name: str, given: str = "") -> str:
    """The type of the archive called `name` (a URL or a path), or `given`."""
    if given:
        kind = given.lstrip(".")
        if kind in ("tgz",):
            kind = "tar.gz"
        if kind not in TYPES and kind not in ("jar", "war", "aar", "nupkg", "whl"):
            raise ArchiveError(f"unsupported archive type '{given}'",
                               hint="use one of: " + ", ".join(sorted(TYPES)))
        return "zip" if kind in ("jar", "war", "aar", "nupkg", "whl") else kind
    base = name.split("?", 1)[0].lower()
    for kind, endings in TYPES.items():
        if base.endswith(endings):
            return kind
    raise ArchiveError(f"cannot tell the archive type of '{name}'",
                       hint="give the rule type = \"zip\" (or tar.gz, tar.xz, ...)")


def extract(archive: Path, destination: Path, kind: str, strip_prefix: str = "",
            add_prefix: str = "") -> None:
    """Unpack `archive` into `destination`: only the entries below `strip_prefix`,
    without it, each under `add_prefix`. An entry escaping the destination (an
    absolute path, `..`) is refused, and so is a strip_prefix that matches nothing."""
    strip = strip_prefix.strip("/")
    add = _checked(add_prefix.strip("/"), add_prefix) if add_prefix.strip("/") else ""
    destination.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    if kind == "zip":
        _unzip(archive, destination, strip, add, names)
    else:
        _untar(archive, destination, kind, strip, add, names)
    if strip and not names:
        raise ArchiveError(f"strip_prefix '{strip_prefix}' matches no entry of {archive.name}",
                           hint=_prefix_hint(archive, kind))


def _relocated(name: str, strip: str, add: str) -> str | None:
    """Where an entry goes, relative to the destination; None if not below `strip`."""
    original = name
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/")
    if strip:
        if name == strip:
            return None
        if not name.startswith(strip + "/"):
            return None
        name = name[len(strip) + 1:]
    if not name:
        return None
    path = _checked(name, original)
    return f"{add}/{path}" if add else path


def _checked(path: str, shown: str) -> str:
    normal = posixpath.normpath(path)
    if path.startswith("/") or normal == ".." or normal.startswith("../"):
        raise ArchiveError(f"archive entry '{shown}' would be written outside the "
                           "repository", hint="the archive is malformed or hostile; use "
                                              "another")
    return normal


def _untar(archive: Path, destination: Path, kind: str, strip: str, add: str,
           names: list[str]) -> None:
    if kind == "tar.zst":
        opened = tarfile.open(fileobj=io.BytesIO(_unzstd(archive)), mode="r:")
    else:
        mode = {"tar.gz": "r:gz", "tar.bz2": "r:bz2", "tar.xz": "r:xz", "tar": "r:"}[kind]
        try:
            opened = tarfile.open(archive, mode)
        except (tarfile.TarError, OSError) as error:
            raise ArchiveError(f"cannot read {archive.name} as {kind}: {error}") from None
    with opened as tar:
        for member in tar:
            where = _relocated(member.name, strip, add)
            if where is None:
                continue
            target = destination / where
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                _remove(target)
            if member.issym():
                _symlink(member.linkname, target, where, member.name)
            elif member.islnk():
                source = _relocated(member.linkname, strip, add)
                if source is None:
                    raise ArchiveError(f"archive entry '{member.name}' is a hard link to "
                                       f"'{member.linkname}', outside strip_prefix")
                shutil.copy2(destination / source, target)
            elif member.isfile():
                with tar.extractfile(member) as data, open(target, "wb") as sink:
                    shutil.copyfileobj(data, sink)
                os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
            else:
                continue   # devices and fifos: not for a build
            names.append(where)


def _unzip(archive: Path, destination: Path, strip: str, add: str,
           names: list[str]) -> None:
    try:
        opened = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveError(f"cannot read {archive.name} as zip: {error}") from None
    with opened as zip_file:
        for info in zip_file.infolist():
            where = _relocated(info.filename, strip, add)
            if where is None:
                continue
            target = destination / where
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                _symlink(zip_file.read(info).decode(), target, where, info.filename)
            else:
                with zip_file.open(info) as data, open(target, "wb") as sink:
                    shutil.copyfileobj(data, sink)
                os.chmod(target, 0o755 if mode & 0o111 else 0o644)
            names.append(where)


def _symlink(link: str, target: Path, where: str, entry: str) -> None:
    """An entry that is a symbolic link; one that leads out of the repository is refused."""
    if link.startswith("/") or posixpath.normpath(
            posixpath.join(posixpath.dirname(where), link)).startswith("../"):
        raise ArchiveError(f"archive entry '{entry}' is a symbolic link out of the "
                           f"repository ('{link}')")
    os.symlink(link, target)


def _unzstd(archive: Path) -> bytes:
    try:
        import zstandard
    except ImportError:
        zstandard = None
    if zstandard is not None:
        with open(archive, "rb") as handle:
            return zstandard.ZstdDecompressor().stream_reader(handle).read()
    program = shutil.which("zstd")
    if program is None:
        raise ArchiveError(f"cannot unpack {archive.name}: tar.zst needs the zstd program "
                           "or the zstandard Python package", hint="apt-get install zstd")
    return subprocess.run([program, "-dc", str(archive)], check=True,
                          capture_output=True).stdout


def _prefix_hint(archive: Path, kind: str) -> str:
    """The archive's top-level directories, which strip_prefix usually names."""
    tops: set[str] = set()
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zip_file:
                tops = {n.split("/", 1)[0] for n in zip_file.namelist()}
        elif kind != "tar.zst":
            with tarfile.open(archive) as tar:
                tops = {n.removeprefix("./").split("/", 1)[0] for n in tar.getnames()}
    except (tarfile.TarError, zipfile.BadZipFile, OSError):
        pass
    tops.discard("")
    return ("its top level holds: " + ", ".join(sorted(tops)[:5])) if tops else \
        "check the archive's layout"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
