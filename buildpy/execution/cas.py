"""The local content-addressed store: blobs by SHA-256, written atomically, verified on read.

Knows files and digests; not actions or keys.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
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


class CorruptBlob(Exception):
    """A stored blob whose content no longer matches its digest."""


class ContentStore:
    def __init__(self, root: Path):
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_file(self, source: Path, digest: str) -> None:
        """Store a copy of `source` (whose SHA-256 is `digest`).

        A copy, not a hard link: an output edited in place later must not change the
        stored blob. The copy goes to a temporary name and is renamed into place, so a
        killed bp leaves no partial blob; blobs are not fsynced one by one, and a blob
        damaged by a power loss fails its digest check on read and is discarded.
        """
        target = self.path(digest)
        if target.is_file():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        os.close(fd)
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._tmp)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        return digest

    def get_bytes(self, digest: str) -> bytes:
        data = self.path(digest).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            self.discard(digest)
            raise CorruptBlob(digest)
        return data

    def materialize(self, digest: str, target: Path, executable: bool) -> None:
        """Put the blob at `target` (verified first); a corrupt blob is discarded."""
        data = self.get_bytes(digest)   # read once: verified, then written
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.bp-tmp")
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        with open(tmp, "wb") as handle:   # a copy: editing the output leaves the blob intact
            handle.write(data)
        os.chmod(tmp, 0o555 if executable else 0o444)
        os.replace(tmp, target)

    def discard(self, digest: str) -> None:
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            pass
