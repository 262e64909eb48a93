"""What a command read from the workspace, each file as it was read: the evidence that a
saved analysis checks before it is reused.

Records files (stat data taken before the read, the digest of the bytes read), files
looked for and absent, and directory listings. Knows nothing about what the contents
mean, nor about saving or reusing an analysis.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class FileProof:
    """How a file looked when it was read: stat data from just before the read, and the
    SHA-256 of the bytes read."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    sha256: str

    def holds(self, path: Path, stamp_ns: int) -> bool:
        """Does `path` still hold what was read? Stat data decides only for a file whose
        timestamps are older than `stamp_ns` (taken before the read): a file written in
        the same clock tick may change again without its timestamps moving."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) == (
                self.size, self.mtime_ns, self.ctime_ns, self.inode) \
                and st.st_mtime_ns < stamp_ns and st.st_ctime_ns < stamp_ns:
            return True
        try:
            return st.st_size == self.size and _sha256(path) == self.sha256
        except OSError:
            return False


def listing_digest(listing: tuple[list[str], list[str]]) -> str:
    """The digest of a package's (files, directories) listing, in any order."""
    files, dirs = listing
    text = "\n".join(sorted(files)) + "\0" + "\n".join(sorted(dirs))
    return hashlib.sha256(text.encode()).hexdigest()


_CONFLICT = FileProof(-1, -1, -1, -1, "")   # seen both absent and present: never holds


@dataclass
class ReadLog:
    """The files one command read (absolute path -> proof, or None for a file looked for
    and absent), glob listings (package -> digest) and the packages found below
    recursive patterns (package -> packages). The first observation of a path wins; a
    file seen both absent and present gets a proof that never holds."""

    files: dict[str, FileProof | None] = field(default_factory=dict)
    listings: dict[str, str] = field(default_factory=dict)
    recursive: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def read_bytes(self, path: Path) -> bytes:
        st = os.stat(path)   # before reading: an edit after this moves what holds() sees
        data = path.read_bytes()
        key = str(path)
        proof = FileProof(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                          hashlib.sha256(data).hexdigest())
        known = self.files.get(key, proof)
        self.files[key] = proof if known == proof else _CONFLICT
        return data

    def read_text(self, path: Path) -> str:
        """The text of a UTF-8 file, newlines translated as `Path.read_text` does."""
        text = self.read_bytes(path).decode("utf-8")
        return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text

    def is_file(self, path: Path) -> bool:
        """`path.is_file()`, remembering a file found absent."""
        if path.is_file():
            if str(path) in self.files and self.files[str(path)] is None:
                self.files[str(path)] = _CONFLICT
            return True
        self.files.setdefault(str(path), None)
        return False

    def listed(self, package: str, listing: tuple[list[str], list[str]]) -> None:
        self.listings.setdefault(package, listing_digest(listing))

    def found_below(self, package: str, packages: list[str]) -> None:
        self.recursive.setdefault(package, tuple(packages))
