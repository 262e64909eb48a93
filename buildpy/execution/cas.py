"""The local content-addressed store: blobs by SHA-256, written atomically, verified on read.

Tells a `used` callback about every blob it stores or reads (the size bound evicts the
least recently used ones, see eviction.py). Knows files and digests; not actions or keys.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Callable

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


@contextlib.contextmanager
def _naming(path: Path | str):
    """An OSError without a file name (a write or close that found the disk full) gets
    `path`, so that whoever reports it can say which file."""
    try:
        yield
    except OSError as error:
        if error.filename is None and error.errno is not None:
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise


class CorruptBlob(Exception):
    """A stored blob whose content no longer matches its digest."""


def _unused(digest: str, size: int, added: bool = False) -> None:
    pass


class ContentStore:
    def __init__(self, root: Path, used: Callable[[str, int, bool], None] = _unused):
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._directories: set[Path] = set()   # made by materialize() in this process
        self._used = used   # (digest, size, whether the blob is new): for the size bound

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_file(self, source: Path, digest: str, size: int | None = None) -> None:
        """Store a copy of `source` (whose SHA-256 is `digest`), where a link will not do.

        The copy goes to a temporary name and is renamed into place, so a killed bp
        leaves no partial blob; blobs are not fsynced one by one, and a blob damaged by a
        power loss fails its digest check on read and is discarded.
        """
        if size is None:
            size = os.stat(source).st_size
        if self.has(digest):
            self._used(digest, size, False)
            return
        tmp = self._tmp_name()
        with _naming(tmp):
            shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o444)
        self._rename(tmp, digest)
        self._used(digest, size, True)

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
            fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)   # a fifo
                                                                   # must not block
        except OSError as error:
            if error.errno != errno.ELOOP:
                raise
            if not stat.S_ISREG(os.stat(source).st_mode):
                raise OSError(errno.EINVAL, "is not a regular file", str(source)) from None
            digest, size = sha256_file(source)   # a symlink: store what it points at
            self.put_file(source, digest, size)
            return digest, os.stat(source)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory", str(source))
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "is not a regular file", str(source))
            digest = hashlib.sha256()
            while chunk := os.read(fd, _CHUNK):
                digest.update(chunk)
            digest = digest.hexdigest()
            if st.st_nlink != 1:   # a hard link to some other file: leave it as it is
                self.put_file(source, digest, st.st_size)
                return digest, st
            os.fchmod(fd, st.st_mode & 0o555)
            linked = self._link_blob(source, digest)
            if linked is None:
                self.put_file(source, digest, st.st_size)
            else:
                self._used(digest, st.st_size, linked)
            return digest, os.fstat(fd)   # after the chmod and the link, which move ctime
        finally:
            os.close(fd)

    def _link_blob(self, source: Path | str, digest: str) -> bool | None:
        """Link `source` in as the blob `digest`: True when linked, False when the blob
        was there already, None where links cannot be made."""
        target = self.path(digest)
        try:
            os.link(source, target)
        except FileExistsError:
            return False
        except FileNotFoundError:
            target.parent.mkdir(parents=True, exist_ok=True)
            if _link(source, target):
                return True
            return False if target.exists() else None
        except OSError:   # another file system, too many links, no links at all
            return None
        return True

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        added = not self.has(digest)
        if added:
            tmp = self._tmp_name()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
            try:
                with _naming(tmp):
                    _write_all(fd, data)
            finally:
                os.close(fd)
            os.chmod(tmp, 0o444)
            self._rename(tmp, digest)
        self._used(digest, len(data), added)
        return digest

    def _tmp_name(self) -> str:
        """A temporary name no other writer (process or thread) uses at the same time;
        a read-only leftover of a killed bp that had the same pid is removed. The
        directory is made again if the store was removed under a running build."""
        name = os.path.join(self._tmp, f"{os.getpid()}-{threading.get_ident()}")
        try:
            os.unlink(name)
        except FileNotFoundError:
            self._tmp.mkdir(parents=True, exist_ok=True)
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
        self._used(digest, len(data), False)
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
            with _naming(tmp), open(tmp, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o555 if executable else 0o444)
        os.replace(tmp, target)

    def discard(self, digest: str) -> None:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            pass
