"""The remote content-addressable storage: find, upload and download blobs by digest.

Batches below the server's size limit, ByteStream above it; every download verified
(SHA-256 and size) and fetched once more when it does not match. Knows the CAS and
ByteStream services; not actions nor where the bytes come from.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from typing import Iterable, Iterator

from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi, remote_execution_pb2_grpc as reapi_grpc)
from buildgrid.common.protos.google.bytestream import bytestream_pb2, bytestream_pb2_grpc

from buildpy.core.errors import RemoteError
from buildpy.remote.channel import Connection

CHUNK = 1024 * 1024
EMPTY = hashlib.sha256(b"").hexdigest()
OVERHEAD = 1024   # bytes of a batch request besides the blobs' data, per blob


@dataclass(frozen=True)
class Blob:
    digest: reapi.Digest
    data: bytes | None = None
    path: str | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        with open(self.path, "rb") as handle:
            return handle.read()

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            for start in range(0, len(self.data), CHUNK):
                yield self.data[start:start + CHUNK]
            return
        with open(self.path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk


class CorruptDownload(RemoteError):
    """A blob whose bytes did not match its digest, twice."""


def _key(digest: reapi.Digest) -> tuple[str, int]:
    return digest.hash, digest.size_bytes


def _matches(digest: reapi.Digest, data: bytes) -> bool:
    return len(data) == digest.size_bytes and hashlib.sha256(data).hexdigest() == digest.hash


class Cas:
    def __init__(self, connection: Connection, max_batch_bytes: int = 4 * 1024 * 1024):
        self.connection = connection
        self.max_batch_bytes = max_batch_bytes or 4 * 1024 * 1024
        self._cas = reapi_grpc.ContentAddressableStorageStub(connection.channel)
        self._bytestream = bytestream_pb2_grpc.ByteStreamStub(connection.channel)
        self.instance = connection.instance

    # ---- upload --------------------------------------------------------------------

    def find_missing(self, digests: Iterable[reapi.Digest]) -> list[reapi.Digest]:
        unique = {_key(d): d for d in digests if d.hash != EMPTY}
        if not unique:
            return []
        missing: list[reapi.Digest] = []
        items = list(unique.values())
        for start in range(0, len(items), 10_000):
            response = self.connection.call(
                self._cas.FindMissingBlobs, reapi.FindMissingBlobsRequest(
                    instance_name=self.instance, blob_digests=items[start:start + 10_000]))
            missing.extend(response.missing_blob_digests)
        return missing

    def upload(self, blobs: Iterable[Blob]) -> int:
        """Send what the server lacks; returns the bytes sent."""
        by_key = {_key(b.digest): b for b in blobs if b.digest.hash != EMPTY}
        if not by_key:
            return 0
        missing = self.find_missing(b.digest for b in by_key.values())
        return self.upload_all(by_key[_key(d)] for d in missing)

    def upload_all(self, blobs: Iterable[Blob]) -> int:
        """Send every blob, without asking what the server has."""
        sent = 0
        batch: list[Blob] = []
        size = 0
        for blob in blobs:
            if blob.digest.hash == EMPTY:
                continue
            length = blob.digest.size_bytes
            if length + OVERHEAD > self.max_batch_bytes:
                self._write(blob)
                sent += length
                continue
            if batch and size + length + OVERHEAD > self.max_batch_bytes:
                self._batch_update(batch)
                batch, size = [], 0
            batch.append(blob)
            size += length + OVERHEAD
            sent += length
        if batch:
            self._batch_update(batch)
        return sent

    def _batch_update(self, batch: list[Blob]) -> None:
        request = reapi.BatchUpdateBlobsRequest(instance_name=self.instance, requests=[
            reapi.BatchUpdateBlobsRequest.Request(digest=b.digest, data=b.read())
            for b in batch])
        response = self.connection.call(self._cas.BatchUpdateBlobs, request)
        failed = [r for r in response.responses if r.status.code != 0]
        if failed:
            raise RemoteError(f"remote cache {self.connection.endpoint.text}: could not store "
                              f"{len(failed)} blob(s): {failed[0].status.message or failed[0].status.code}")

    def _write(self, blob: Blob) -> None:
        prefix = f"{self.instance}/" if self.instance else ""
        name = (f"{prefix}uploads/{uuid.uuid4()}/blobs/{blob.digest.hash}/"
                f"{blob.digest.size_bytes}")

        def requests() -> Iterator[bytestream_pb2.WriteRequest]:
            offset = 0
            first = True
            for chunk in blob.chunks():
                yield bytestream_pb2.WriteRequest(
                    resource_name=name if first else "", write_offset=offset, data=chunk,
                    finish_write=offset + len(chunk) >= blob.digest.size_bytes)
                first = False
                offset += len(chunk)

        def write(_request, timeout, metadata):
            return self._bytestream.Write(requests(), timeout=timeout, metadata=metadata)

        write._method = b"/google.bytestream.ByteStream/Write"
        self.connection.call(write, None, timeout=max(self.connection.timeout, 300.0))

    # ---- download ------------------------------------------------------------------

    def read(self, digest: reapi.Digest) -> bytes:
        return self.read_many([digest])[digest.hash]

    def read_many(self, digests: Iterable[reapi.Digest]) -> dict[str, bytes]:
        """The blobs by hash, each verified (fetched once more if it does not match)."""
        unique = {_key(d): d for d in digests}
        found: dict[str, bytes] = {}
        small: list[reapi.Digest] = []
        for digest in unique.values():
            if digest.hash == EMPTY:
                found[digest.hash] = b""
            elif digest.size_bytes + OVERHEAD > self.max_batch_bytes:
                found[digest.hash] = self._verified(digest, lambda d=digest: self._read_stream(d))
            else:
                small.append(digest)
        batch: list[reapi.Digest] = []
        size = 0
        for digest in small:
            if batch and size + digest.size_bytes + OVERHEAD > self.max_batch_bytes:
                found.update(self._batch_read(batch))
                batch, size = [], 0
            batch.append(digest)
            size += digest.size_bytes + OVERHEAD
        if batch:
            found.update(self._batch_read(batch))
        return found

    def _batch_read(self, digests: list[reapi.Digest]) -> dict[str, bytes]:
        response = self.connection.call(self._cas.BatchReadBlobs, reapi.BatchReadBlobsRequest(
            instance_name=self.instance, digests=digests))
        got: dict[str, bytes] = {}
        for item in response.responses:
            if item.status.code != 0:
                raise self._missing(item.digest, item.status.message)
            if _matches(item.digest, item.data):
                got[item.digest.hash] = item.data
        for digest in digests:
            if digest.hash not in got:   # corrupted on the way (or by the server): again
                got[digest.hash] = self._verified(digest, lambda d=digest: self._read_one(d),
                                                  tries=1)
        return got

    def _read_one(self, digest: reapi.Digest) -> bytes:
        response = self.connection.call(self._cas.BatchReadBlobs, reapi.BatchReadBlobsRequest(
            instance_name=self.instance, digests=[digest]))
        item = response.responses[0]
        if item.status.code != 0:
            raise self._missing(digest, item.status.message)
        return item.data

    def _read_stream(self, digest: reapi.Digest) -> bytes:
        prefix = f"{self.instance}/" if self.instance else ""
        name = f"{prefix}blobs/{digest.hash}/{digest.size_bytes}"
        try:
            parts = [r.data for r in self._bytestream.Read(
                bytestream_pb2.ReadRequest(resource_name=name),
                timeout=max(self.connection.timeout, 300.0),
                metadata=self.connection.metadata())]
        except Exception as error:   # grpc.RpcError
            import grpc
            if isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.NOT_FOUND:
                raise self._missing(digest, error.details()) from None
            if isinstance(error, grpc.RpcError):
                raise self.connection.error(error, "ByteStream.Read") from None
            raise
        return b"".join(parts)

    def _verified(self, digest: reapi.Digest, fetch, tries: int = 2) -> bytes:
        for _ in range(tries):
            data = fetch()
            if _matches(digest, data):
                return data
        raise CorruptDownload(
            f"remote cache {self.connection.endpoint.text}: blob {digest.hash}/"
            f"{digest.size_bytes} arrived with other content twice",
            hint="the server's storage or the network corrupts data; bp kept nothing of it")

    def _missing(self, digest: reapi.Digest, message: str) -> RemoteError:
        error = RemoteError(f"remote cache {self.connection.endpoint.text}: blob "
                            f"{digest.hash}/{digest.size_bytes} is missing ({message})")
        error.missing = digest
        return error

    def download(self, digest: reapi.Digest, path: str, executable: bool = False) -> None:
        data = self.read(digest)
        write_file(path, data, executable)

    def get_tree(self, root: reapi.Digest) -> dict[str, reapi.Directory]:
        """Every Directory under `root` (included), by hash."""
        found: dict[str, reapi.Directory] = {}
        level = [root]
        while level:
            blobs = self.read_many(level)
            following = []
            for digest in level:
                directory = reapi.Directory()
                directory.ParseFromString(blobs[digest.hash])
                found[digest.hash] = directory
                following.extend(d.digest for d in directory.directories
                                 if d.digest.hash not in found)
            level = list({d.hash: d for d in following}.values())
        return found


def write_file(path: str, data: bytes, executable: bool) -> None:
    """`data` at `path`, through a temporary name in the same directory."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.bp-download")
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.chmod(temporary, 0o755 if executable else 0o644)
    os.replace(temporary, path)
