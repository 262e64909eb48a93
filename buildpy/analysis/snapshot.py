"""A saved analysis: the action graph of one build command, reused while nothing that
analysis read has changed (BUILD and .bzl files as they were read, files looked for and
absent, directory listings seen by glob(), the packages below recursive patterns, bp
itself and the Python and libraries it runs on, the flags).

The file lives in the shared cache; it is trusted only if its bytes have the SHA-256
that the workspace's own state (`bp-out/.bp-state`) recorded when this workspace saved
it, and it is read by an unpickler that builds nothing but an allowlist of plain data
classes. Anything else (a changed byte, a truncated file, a class outside the list, an
older format) means "analyze again", never a different build.

Knows which files analysis depended on and how to check them cheaply (stat data, with
content hashes when the stat data cannot be trusted); not how analysis works, nor what
its payload holds beyond the classes it is told to allow.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from buildpy.core.reads import FileProof, ReadLog, listing_digest

_MAGIC = b"bp saved analysis 3\n"   # 3: digests kept apart, restricted classes
KEPT = 8   # saved analyses kept per workspace (different flags, patterns or bp versions)

# The distributions whose code runs in (or shapes the result of) loading and analysis,
# as named in pyproject.toml: a different version, or the same version built anew,
# must not reuse an analysis made with the old one.
DISTRIBUTIONS = ("starlark-pyo3", "click", "networkx", "blake3", "grpcio", "protobuf",
                 "watchfiles", "buildgrid-common", "rich")


@dataclass(frozen=True)
class Snapshot:
    """What analysis read, and what it produced (opaque to this module)."""

    key: str                                   # flags, patterns and bp itself
    stamp_ns: int                              # file-system time before the files were read
    files: dict[str, FileProof | None] = field(default_factory=dict)   # absolute paths
    listings: dict[str, str] = field(default_factory=dict)   # glob package dir -> digest
    recursive: dict[str, tuple[str, ...]] = field(default_factory=dict)   # -> packages
    payload: Any = None

    @staticmethod
    def of(key: str, stamp_ns: int, reads: ReadLog, payload: Any) -> "Snapshot":
        return Snapshot(key, stamp_ns, dict(reads.files), dict(reads.listings),
                        dict(reads.recursive), payload)

    def valid(self, list_package, packages_below) -> bool:
        for path, proof in self.files.items():
            if proof is None:
                if os.path.exists(path):
                    return False
            elif not proof.holds(Path(path), self.stamp_ns):
                return False
        for package, digest in self.listings.items():
            if listing_digest(list_package(package)) != digest:
                return False
        return all(tuple(packages_below(pattern)) == packages
                   for pattern, packages in self.recursive.items())


# ---- the key: bp itself --------------------------------------------------------------

def bp_digest(directories: Iterable[Path], distributions: Iterable[str] = DISTRIBUTIONS,
              search_path: Iterable[str] | None = None) -> str:
    """A digest of bp itself: the Python that runs it, every file of its own code
    (Python and Starlark: the package, the prelude, the toolchains) and the installed
    files of the libraries it uses, so that a changed bp never reuses an old analysis.

    Content, not stat data: about a hundred small files take a few milliseconds. The
    libraries count by their wheel's RECORD, which lists a SHA-256 of each file."""
    digest = hashlib.sha256(sys.version.encode() + b"\0" +
                            sys.implementation.cache_tag.encode() + b"\0")
    roots = [d.resolve() for d in directories]
    for index, directory in enumerate(roots):
        if any(other != directory and other in directory.parents for other in roots):
            continue   # inside another one (an installed bp keeps its prelude inside)
        digest.update(f"dir\0{index}\0".encode())
        for name in _files_below(str(directory)):
            try:
                with open(os.path.join(directory, name), "rb") as handle:
                    data = handle.read()
            except OSError:   # a dangling symlink, a socket: only its name counts
                data = b""
            digest.update(f"{name}\0{len(data)}\0".encode())
            digest.update(data)
    for name, record in _distribution_records(
            distributions, sys.path if search_path is None else search_path):
        digest.update(f"dist\0{name}\0{len(record)}\0".encode() + record)
    return digest.hexdigest()


def _files_below(top: str) -> list[str]:
    """The files below `top` (relative, sorted), without `__pycache__` directories."""
    found = []
    for directory, subdirectories, files in os.walk(top):
        subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
        relative = os.path.relpath(directory, top)
        found += [f if relative == "." else f"{relative}/{f}" for f in files]
    return sorted(found)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _distribution_records(names: Iterable[str],
                          search_path: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """(`name-version.dist-info`, its RECORD) of each distribution, the first found on
    `search_path` as importlib.metadata finds it ("" and "absent" when missing). Lists
    the directories rather than using importlib.metadata, which costs 40 ms to import."""
    wanted = {_normalized(n) for n in names}
    found: dict[str, str] = {}
    for directory in search_path:
        try:
            entries = os.listdir(directory or ".")
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".dist-info"):
                name = _normalized(entry[:-len(".dist-info")].split("-", 1)[0])
                if name in wanted and name not in found:
                    found[name] = os.path.join(directory or ".", entry)
    for name in sorted(wanted):
        path = found.get(name)
        if path is None:
            yield name, b"absent"
            continue
        try:
            with open(os.path.join(path, "RECORD"), "rb") as handle:
                record = handle.read()
        except OSError:
            record = b""
        yield os.path.basename(path), record


# ---- reading and writing -------------------------------------------------------------

class _Refused(Exception):
    """The saved bytes name a class outside the allowlist."""


class _Unpickler(pickle.Unpickler):
    """Builds only the classes it is given (their constructors are the only callables a
    saved analysis can reach); imports no module."""

    def __init__(self, data: bytes, classes: dict[tuple[str, str], type]):
        super().__init__(io.BytesIO(data))
        self._classes = classes

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._classes[module, name]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def _allowed(payload_classes: Iterable[type]) -> dict[tuple[str, str], type]:
    return {(c.__module__, c.__qualname__): c
            for c in (Snapshot, FileProof, *payload_classes)}


def load(path: Path, digest_path: Path, key: str, payload_classes: Iterable[type],
         say: Callable[[str], None] = lambda line: None) -> Snapshot | None:
    """The snapshot saved at `path` if its bytes have the digest recorded at
    `digest_path` and it was saved under `key`; else None (and a line to `say` when a
    saved analysis was there but could not be trusted)."""
    try:
        expected, size = digest_path.read_text().split()
        data = _read_regular_file(path, int(size))
    except (OSError, UnicodeDecodeError, ValueError):
        return None   # never saved here, or the workspace's state is gone: analyze
    if data is None or hashlib.sha256(data).hexdigest() != expected:
        say(f"INFO: the saved analysis {path} is not the one this workspace saved "
            "(changed or damaged); analyzing again")
        return None
    if not data.startswith(_MAGIC):
        return None   # another format: written by another version of bp
    try:
        snapshot = _Unpickler(data[len(_MAGIC):], _allowed(payload_classes)).load()
    except _Refused as refused:
        say(f"INFO: the saved analysis {path} holds a value of class {refused} that bp "
            "does not read back; analyzing again")
        return None
    except Exception:   # noqa: BLE001 - whatever the bytes are, the answer is "analyze"
        say(f"INFO: the saved analysis {path} could not be read; analyzing again")
        return None
    if not isinstance(snapshot, Snapshot) or snapshot.key != key:
        return None
    return snapshot


def loads(data: bytes, payload_classes: Iterable[type]) -> Any:
    """What `data` (a pickle) holds, built of Snapshot, FileProof and `payload_classes`
    only; None when it holds anything else or cannot be read."""
    try:
        return _Unpickler(data, _allowed(payload_classes)).load()
    except Exception:   # noqa: BLE001 - whatever the bytes are, the answer is "none"
        return None


def _read_regular_file(path: Path, size: int) -> bytes | None:
    """The bytes of `path` if it is a regular file of `size` bytes, else None: a FIFO,
    a device or a huge file put in its place neither blocks bp nor fills its memory."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(size + 1)
    finally:
        os.close(fd)


def save(path: Path, digest_path: Path, snapshot: Snapshot) -> None:
    """Atomically, the snapshot into the cache and then its digest into the workspace's
    state: a build killed between the two leaves a pair that does not match, which
    only means the next build analyzes again."""
    # (written as it is pickled, never whole in memory: at 100,000 targets it is about
    # 100 MB, at the end of the analysis, when the process holds the most)
    written = _write_atomically(path, lambda out: pickle.dump(
        snapshot, out, protocol=pickle.HIGHEST_PROTOCOL), _MAGIC)
    _write_atomically(digest_path, lambda out: out.write(
        f"{written.hash.hexdigest()} {written.size}\n".encode()))
    _keep_newest(path.parent, KEPT)
    _keep_newest(digest_path.parent, KEPT)


def _keep_newest(directory: Path, count: int) -> None:
    """Remove all but the `count` newest files of `directory`: one is saved for every
    set of flags and every version of bp, and an old one is rarely used again."""
    try:
        entries = sorted(((e.stat().st_mtime_ns, e.path) for e in os.scandir(directory)
                          if e.is_file() and not e.name.endswith(".tmp")), reverse=True)
        for _, old in entries[count:]:
            os.unlink(old)
    except OSError:
        pass   # another bp removed it first


class _Written:
    """A file being written, with the SHA-256 and size of what was written so far."""

    def __init__(self, handle):
        self._handle, self.hash, self.size = handle, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self.hash.update(data)
        self.size += len(data)


def _write_atomically(path: Path, write: Callable[[_Written], Any], head: bytes = b""
                      ) -> _Written:
    """A new file under a name nobody can foresee (O_EXCL), `head` and then what `write`
    writes in it, renamed into place; returns what was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            written = _Written(handle)
            written.write(head)
            write(written)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return written
