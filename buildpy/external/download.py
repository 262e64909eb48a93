"""Downloads for repository rules: the repository cache (files by SHA-256, shared by
every workspace), --distdir, http(s) and file URLs, retries, checksums.

Knows URLs, digests and files; not repositories, rules nor archives' contents.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from buildpy.core.errors import UserError

ATTEMPTS = 3            # tries per URL on transient errors (5xx, resets, timeouts)
TIMEOUT = 60.0          # seconds without data before a download counts as failed
_CHUNK = 1 << 20


class DownloadError(UserError):
    """A download that could not be done: every URL failed, or a checksum differs."""


@dataclass(frozen=True)
class Downloader:
    """Downloads through the repository cache (`cache`: None turns it off) and the
    --distdir directories (searched by file name, checked by digest)."""

    cache: Path | None
    distdirs: tuple[Path, ...] = ()
    say: Callable[[str], None] = lambda line: None

    def cached(self, sha256: str) -> Path | None:
        """The cache's file with this digest, if it has one (checked as it is read)."""
        if self.cache is None or not sha256:
            return None
        path = self.cache / "content_addressable" / "sha256" / sha256 / "file"
        if path.is_file():
            if _digest(path) == sha256:
                return path
            path.unlink()   # a damaged entry: fetched again
        return None

    def download(self, urls: Iterable[str], output: Path, sha256: str = "",
                 integrity: str = "", executable: bool = False, what: str = "") -> str:
        """Put the file that `urls` name (the first that works) at `output`; returns its
        SHA-256. With `sha256` (or an `integrity` of sha256/sha384/sha512), the cache
        and --distdir may serve it, and the bytes must match."""
        urls = [u for u in urls if u]
        if not urls:
            raise DownloadError(f"{what}: no URL to download from",
                                hint="give the rule 'url' or 'urls'")
        want = _wanted(sha256, integrity, what)
        output.parent.mkdir(parents=True, exist_ok=True)
        known = self.cached(want[1]) if want and want[0] == "sha256" else None
        if known is None and want:
            known = self._from_distdir(urls, want)
        if known is not None:
            _copy(known, output, executable)
            return _digest(known)
        errors: list[str] = []
        for url in urls:
            fetched = self._fetch(url, output, errors, what)
            if fetched:
                break
        else:
            raise DownloadError(
                f"{what}: could not download {urls[0]}"
                + (f" (and {len(urls) - 1} more URLs)" if len(urls) > 1 else "")
                + ": " + "; ".join(errors),
                hint="check the network, or put the file in the repository cache: "
                     "bp fetch with network once, or --distdir=DIR with the file in DIR")
        sha = _digest(output)
        if want:
            actual = _digest(output, want[0], base64_form=want[0] != "sha256")
            if actual != want[1]:
                output.unlink()
                raise DownloadError(
                    f"{what}: checksum mismatch for {url}: expected {want[0]} {want[1]}, "
                    f"got {actual}",
                    hint="if the file really changed, update the rule's sha256 "
                         "(or integrity) with the digest it got")
        self._remember(output, sha)
        if executable:
            os.chmod(output, 0o755)
        return sha

    def _fetch(self, url: str, output: Path, errors: list[str], what: str) -> bool:
        import urllib.error   # (only a build that downloads pays for urllib)
        import urllib.parse

        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https", "file"):
            errors.append(f"{url}: unsupported URL scheme '{parsed.scheme}'")
            return False
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(0.5 * 2 ** attempt)
            try:
                self._copy_url(url, output, what)
                return True
            except urllib.error.HTTPError as error:
                errors.append(f"{url}: HTTP {error.code} {error.reason}")
                if error.code < 500:
                    return False
            except (urllib.error.URLError, OSError, TimeoutError) as error:
                reason = getattr(error, "reason", None) or error
                errors.append(f"{url}: {reason}")
                if parsed.scheme == "file":
                    return False
        return False

    def _copy_url(self, url: str, output: Path, what: str) -> None:
        import urllib.request

        temporary = output.with_name(f".{output.name}.part")
        size = 0
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, \
                open(temporary, "wb") as sink:
            last = time.monotonic()
            while chunk := response.read(_CHUNK):
                sink.write(chunk)
                size += len(chunk)
                if time.monotonic() - last > 1.0:
                    self.say(f"Fetching {what}; {size / (1 << 20):.1f} MiB")
                    last = time.monotonic()
        os.replace(temporary, output)

    def _from_distdir(self, urls: list[str], want: tuple[str, str]) -> Path | None:
        import urllib.parse

        names = {os.path.basename(urllib.parse.urlparse(u).path) for u in urls}
        for directory in self.distdirs:
            for name in names:
                candidate = directory / name
                if candidate.is_file() and _digest(
                        candidate, want[0], base64_form=want[0] != "sha256") == want[1]:
                    self._remember(candidate, _digest(candidate))
                    return candidate
        return None

    def _remember(self, path: Path, sha256: str) -> None:
        """Keep a copy in the repository cache (written whole, then renamed)."""
        if self.cache is None:
            return
        entry = self.cache / "content_addressable" / "sha256" / sha256
        if (entry / "file").is_file():
            return
        entry.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=entry, prefix=".file.")
        os.close(handle)
        shutil.copyfile(path, temporary)
        os.replace(temporary, entry / "file")


def _wanted(sha256: str, integrity: str, what: str) -> tuple[str, str] | None:
    """(algorithm, digest) that the download must have: sha256 as hex, an integrity's
    as base64 (Subresource Integrity)."""
    if sha256:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
            raise DownloadError(f"{what}: invalid sha256 '{sha256}'",
                                hint="a SHA-256 digest is 64 hexadecimal digits")
        return "sha256", sha256.lower()
    if integrity:
        algorithm, _, value = integrity.partition("-")
        if algorithm not in ("sha256", "sha384", "sha512") or not value:
            raise DownloadError(f"{what}: invalid integrity '{integrity}'",
                                hint="write it as sha256-<base64>, as Subresource "
                                     "Integrity does")
        if algorithm == "sha256":   # the cache knows it by its hex form
            return "sha256", base64.b64decode(value).hex()
        return algorithm, value
    return None


def _digest(path: Path, algorithm: str = "sha256", base64_form: bool = False) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode() if base64_form else digest.hexdigest()


def _copy(source: Path, output: Path, executable: bool) -> None:
    shutil.copyfile(source, output)
    os.chmod(output, 0o755 if executable else 0o644)
