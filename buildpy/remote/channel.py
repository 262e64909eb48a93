"""A connection to a REAPI server: its address, TLS, headers, deadlines and retries.

Knows gRPC channels and status codes; not which service is called nor what the
messages mean.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from typing import Sequence

import grpc

from buildpy.core.errors import RemoteError, UserError

RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                     grpc.StatusCode.DEADLINE_EXCEEDED})
MAX_MESSAGE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    text: str      # as the user wrote it
    target: str    # what grpcio dials
    secure: bool


def parse_endpoint(text: str, flag: str) -> Endpoint:
    """`grpc://host:port`, `grpcs://host:port`, `unix:/path` or `unix:///path`."""
    for scheme, secure in (("grpc://", False), ("grpcs://", True)):
        if text.startswith(scheme):
            rest = text[len(scheme):].rstrip("/")
            host, colon, port = rest.rpartition(":")
            if rest and colon and host and port.isdigit():
                return Endpoint(text, rest, secure)
            if rest and not colon:
                return Endpoint(text, f"{rest}:{443 if secure else 80}", secure)
            break
    else:
        if text.startswith("unix:"):
            path = "/" + text[len("unix:"):].lstrip("/")
            if len(path) > 1:
                return Endpoint(text, f"unix:{path}", False)
    raise UserError(f"invalid {flag} '{text}'",
                    hint=f"write {flag}=grpc://HOST:PORT, grpcs://HOST:PORT (TLS) or "
                         "unix:/PATH/TO/SOCKET")


class Connection:
    """One channel to a server, shared by every call of a build (thread-safe)."""

    def __init__(self, endpoint: Endpoint, *, instance: str = "",
                 headers: Sequence[tuple[str, str]] = (), tls_certificate: str | None = None,
                 timeout: float = 60.0, retries: int = 5, role: str = "remote server"):
        self.endpoint = endpoint
        self.instance = instance
        self.timeout = timeout
        self.retries = max(0, retries)
        self.role = role
        self._metadata = tuple((k.lower(), v) for k, v in headers)
        options = [("grpc.max_receive_message_length", MAX_MESSAGE),
                   ("grpc.max_send_message_length", MAX_MESSAGE)]
        if endpoint.secure:
            root = None
            if tls_certificate:
                try:
                    with open(tls_certificate, "rb") as handle:
                        root = handle.read()
                except OSError as error:
                    raise UserError(f"cannot read --tls_certificate '{tls_certificate}': "
                                    f"{error.strerror}") from None
            self.channel = grpc.secure_channel(endpoint.target,
                                               grpc.ssl_channel_credentials(root), options)
        else:
            self.channel = grpc.insecure_channel(endpoint.target, options)
        self._closed = threading.Event()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def call(self, method, request, *, timeout: float | None = None, raw: bool = False,
             started: grpc.Future | None = None):
        """A unary call with the headers, a deadline and retries of transient failures
        (exponential backoff with jitter); its first attempt may be `started` (by
        `start`). The last failure raises RemoteError, or the grpc.RpcError itself with
        `raw`."""
        delay = 0.1
        for attempt in range(self.retries + 1):
            try:
                if attempt == 0 and started is not None:
                    return started.result()
                return method(request, timeout=timeout or self.timeout,
                              metadata=self._metadata)
            except grpc.RpcError as error:
                code = error.code() if hasattr(error, "code") else None
                if code in RETRIED and attempt < self.retries and not self._closed.is_set():
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 5.0)
                    continue
                if raw:
                    raise
                raise self.error(error, _method_name(method)) from None
        raise AssertionError("unreachable")

    def start(self, method, request) -> grpc.Future:
        """The first attempt of a unary call, sent now; `call(..., started=)` waits
        for it (and retries), while the caller does something else meanwhile."""
        return method.future(request, timeout=self.timeout, metadata=self._metadata)

    def error(self, error: grpc.RpcError, what: str) -> RemoteError:
        """A RemoteError naming the server and the failed call (never the headers)."""
        code = error.code() if hasattr(error, "code") else None
        details = error.details() if hasattr(error, "details") else str(error)
        name = code.name if code is not None else "ERROR"
        hint = None
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            hint = ("is the server running and reachable? check --remote_executor / "
                    "--remote_cache, or pass --remote_local_fallback to run locally")
        elif code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            hint = "check the credentials passed with --remote_header"
        return RemoteError(f"{self.role} {self.endpoint.text}: {what} failed: {name}: "
                           f"{details}", hint=hint)

    def close(self) -> None:
        self._closed.set()
        self.channel.close()


def _method_name(method) -> str:
    name = getattr(method, "_method", None)
    if isinstance(name, bytes):
        name = name.decode()
    return str(name).rsplit("/", 1)[-1] if name else "a call"
