"""The local content-addressed store: blobs by SHA-256, written atomically, verified on read.

Knows files and digests; not actions or keys.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import threading
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _link(source: Path | str, link: str | Path) -> bool:
    """Hard-link `source` as `link`; False where that cannot be done (another file
    system, too many links, a file system without links)."""
    try:
        os.link(source, link)
    except OSError:
        return False
    return True


class CorruptBlob(Exception):
    """A stored blob whose content no longer matches its digest."""


class ContentStore:
    def __init__(self, root: Path):
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._directories: set[Path] = set()   # made by materialize() in this process

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_file(self, source: Path, digest: str) -> None:
        """Store a copy of `source` (whose SHA-256 is `digest`), where a link will not do.

        The copy goes to a temporary name and is renamed into place, so a killed bp
        leaves no partial blob; blobs are not fsynced one by one, and a blob damaged by a
        power loss fails its digest check on read and is discarded.
        """
        if self.has(digest):
            return
        tmp = self._tmp_name()
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o444)
        self._rename(tmp, digest)

    def put_output(self, source: Path | str) -> tuple[str, os.stat_result]:
        """Store an action's output; returns its digest and its stat data afterwards.

        A regular file with no other link becomes read-only (as Bazel leaves outputs)
        and is hard-linked into the store: no copy, no new inode. The store is
        read-only too, and blobs are verified when read, so an output changed in place
        after a `chmod` is caught as a damaged blob. Other files (a symlink, a hard
        link to a source, another file system) are copied. Raises FileNotFoundError
        when there is no such output, IsADirectoryError for a directory.
        """
        try:
            fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as error:
            if error.errno != errno.ELOOP:
                raise
            digest, _ = sha256_file(source)   # a symlink: store what it points at
            self.put_file(source, digest)
            return digest, os.stat(source)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory", str(source))
            digest = hashlib.sha256()
            while chunk := os.read(fd, _CHUNK):
                digest.update(chunk)
            digest = digest.hexdigest()
            if st.st_nlink != 1:   # a hard link to some other file: leave it as it is
                self.put_file(source, digest)
                return digest, st
            os.fchmod(fd, st.st_mode & 0o555)
            if not self._link_blob(source, digest):
                self.put_file(source, digest)
            return digest, os.fstat(fd)   # after the chmod and the link, which move ctime
        finally:
            os.close(fd)

    def _link_blob(self, source: Path | str, digest: str) -> bool:
        """Link `source` in as the blob `digest` (already there counts); False where
        links cannot be made."""
        target = self.path(digest)
        try:
            os.link(source, target)
        except FileExistsError:
            return True
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            return _link(source, target) or target.exists()
        except OSError:   # another file system, too many links, no links at all
            return False
        return True

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.has(digest):
            tmp = self._tmp_name()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            os.chmod(tmp, 0o444)
            self._rename(tmp, digest)
        return digest

    def _tmp_name(self) -> str:
        """A temporary name no other writer (process or thread) uses at the same time;
        a read-only leftover of a killed bp that had the same pid is removed."""
        name = os.path.join(self._tmp, f"{os.getpid()}-{threading.get_ident()}")
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
        return name

    def _rename(self, tmp: str, digest: str) -> None:
        target = self.path(digest)
        try:
            os.replace(tmp, target)
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)

    def get_bytes(self, digest: str) -> bytes:
        return self._read_verified(digest)[0]

    def _read_verified(self, digest: str) -> tuple[bytes, int]:
        """The blob's content and mode; a blob whose content no longer matches its digest
        is discarded (CorruptBlob)."""
        with open(self.path(digest), "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != digest:
            self.discard(digest)
            raise CorruptBlob(digest)
        return data, mode

    def materialize(self, digest: str, target: Path, executable: bool) -> None:
        """Put the blob at `target`, verified first (a corrupt blob is discarded): a hard
        link when the blob has the mode wanted, else a copy."""
        data, mode = self._read_verified(digest)
        if target.parent not in self._directories:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._directories.add(target.parent)
        tmp = target.with_name(f".{target.name}.bp-tmp")
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if bool(mode & 0o111) != executable or not _link(self.path(digest), tmp):
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o555 if executable else 0o444)
        os.replace(tmp, target)

    def discard(self, digest: str) -> None:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            pass
