"""The analysis server: the analysis of a build kept alive in a process of its own, so
that a later `bp build` of the same command, in a fresh process, gets its plan from it
after BUILD files changed, loading and analyzing only what changed (what watch mode
does in memory), instead of loading, configuring and analyzing everything again.

The server is the analysis process of a build that analyzed, forked once more into a
session of its own when it has sent its plan: it holds the loaded packages, the
configured graph and the Starlark state that can analyze again. It listens on a Unix
socket named after the workspace, in a directory only its user may enter (the peer's
user is checked too), answers one request at a time, and exits after `idle_secs`
without one, when asked to (`bp shutdown`), or when a newer server took its socket.

A request is a pair (kind, value), pickled behind its length as the reply is. This
module knows sockets and processes; what the server answers is the caller's.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import select
import signal
import socket
import stat
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

_HEADER = struct.Struct("<Q")
_CHECK_EVERY = 30.0   # seconds between the server's checks that its socket is still its own
_LOG_BOUND = 1 << 20   # bytes: a longer log starts afresh with the next server
SHUTDOWN = ("shutdown", None)
WAITING_AFTER = 5.0   # seconds without an answer before a client says it waits


def _private_directory() -> Path:
    """The directory of this user's servers: made 0700; refused (OSError) when it is not
    a directory this user owns that no one else may enter."""
    directory = Path(tempfile.gettempdir()) / f"bp-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{directory} is not a private directory of this user")
    return directory


def socket_path(workspace: Path) -> Path:
    """Where the server of `workspace` listens (OSError when there cannot be one)."""
    name = hashlib.sha256(str(workspace).encode()).hexdigest()[:16]
    return _private_directory() / f"{name}.sock"


def log_path(workspace: Path) -> Path:
    """What the server of `workspace` says about each request it answers."""
    return socket_path(workspace).with_suffix(".log")


def ask(workspace: Path, request: tuple[str, Any], loads: Callable[[bytes], Any],
        timeout: float | None = None, waiting: Callable[[], None] = lambda: None) -> Any:
    """The answer of the server of `workspace` to `request` (read by `loads`), or None
    when there is no server, it is not this user's, or it went away mid-answer.
    `waiting()` is called once if no answer has begun after WAITING_AFTER seconds (the
    server answers one build at a time, and an answer may be a whole analysis)."""
    try:
        path = socket_path(workspace)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(timeout)
            connection.connect(str(path))
            if _peer_uid(connection) != os.getuid():
                return None
            _send(connection, pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
            if not select.select([connection], [], [], WAITING_AFTER)[0]:
                waiting()
            data = _receive(connection)
    except OSError:   # no server (or a stale socket), or it died: the caller does the work
        return None
    return None if data is None else loads(data)


def shutdown(workspace: Path, timeout: float = 60.0) -> bool:
    """Stop the server of `workspace` (once it has answered the build it may be
    answering); False when there was none, or it did not answer within `timeout`."""
    return ask(workspace, SHUTDOWN, pickle.loads, timeout) is not None


def start(workspace: Path, answer: Callable[[tuple[str, Any]], tuple[Any, Callable | None]],
          idle_secs: float, prepare: Callable[[], None] = lambda: None) -> int | None:
    """Fork the server of `workspace` (stopping the one before it) and return its pid,
    or None when no server can listen there. In the server, `prepare()` runs first (a
    request that comes meanwhile waits), and `answer(request)` gives the reply and what
    to do once it is sent (or None); it runs until `idle_secs` pass with no request, a
    SHUTDOWN request, or a newer server's socket in the place of its own."""
    try:
        path = socket_path(workspace)
        shutdown(workspace)
        log_file = log_path(workspace)
        big = log_file.exists() and log_file.stat().st_size > _LOG_BOUND
        log = open(log_file, "wb" if big else "ab", buffering=0)   # noqa: SIM115 - its own
    except OSError:
        return None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fresh = path.with_name(f"{path.stem}.{os.getpid()}.sock")
    try:
        fresh.unlink(missing_ok=True)
        listener.bind(str(fresh))
        listener.listen(8)
        os.rename(fresh, path)   # (a client never sees a socket no one listens on)
        inode = os.stat(path).st_ino
    except OSError:
        listener.close()
        log.close()
        fresh.unlink(missing_ok=True)
        return None
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    pid = os.fork()
    if pid:
        listener.close()
        log.close()
        return pid
    try:   # the server: a session of its own, so that no terminal signal reaches it
        os.setsid()
        for name in ("SIGINT", "SIGHUP", "SIGQUIT", "SIGTSTP"):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        _let_go(null, {0, 1, 2, null, listener.fileno()})
        prepare()
        _serve(listener, path, inode, answer, idle_secs)
    except BaseException:   # noqa: BLE001 - said in the log; the server is gone either way
        import traceback

        traceback.print_exc()
    finally:
        os._exit(0)


def _let_go(null: int, keep: set[int]) -> None:
    """Let go of every descriptor the server inherited but `keep` (the lock files of the
    build that forked it, among them). Each becomes /dev/null rather than closed: an
    object of the build that still holds its number may close it when collected, and
    must not close a connection of the server's that got the same number."""
    try:
        open_now = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:   # (no /proc: every number a build is likely to have used)
        open_now = list(range(1024))
    for fd in open_now:
        if fd not in keep:
            try:
                os.dup2(null, fd)
            except OSError:
                pass   # (the listing's own descriptor, closed since)


def _serve(listener: socket.socket, path: Path, inode: int,
           answer: Callable[[tuple[str, Any]], tuple[Any, Callable | None]],
           idle_secs: float) -> None:
    say(f"listening on {path} (pid {os.getpid()})")
    deadline = time.monotonic() + idle_secs
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            say(f"no request for {idle_secs:.0f} s: exiting")
            break
        listener.settimeout(min(left, _CHECK_EVERY))
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            if not _still_mine(path, inode):
                say("another server took the socket: exiting")
                return
            continue
        with connection:
            connection.settimeout(None)
            if _peer_uid(connection) != os.getuid():
                continue
            try:
                data = _receive(connection)
                if data is None:   # (the client went away before it asked)
                    continue
                request = pickle.loads(data)
            except (OSError, pickle.UnpicklingError, EOFError):
                continue
            if request == SHUTDOWN:
                _reply(connection, "stopping")
                say("asked to stop: exiting")
                break
            reply, after = answer(request)
            _reply(connection, reply)
        if after is not None:
            after()
        gc.collect()   # (bp builds with the cyclic collector off: a server collects between)
        deadline = time.monotonic() + idle_secs
    if _still_mine(path, inode):
        path.unlink(missing_ok=True)


def say(line: str) -> None:
    """One line of the server's log."""
    print(time.strftime("%Y-%m-%d %H:%M:%S ") + line, flush=True)


def _reply(connection: socket.socket, reply: Any) -> None:
    try:
        _send(connection, pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        pass   # the client went away (Ctrl-C): the next request finds the state the same


def _still_mine(path: Path, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _peer_uid(connection: socket.socket) -> int:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                        struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]


def _send(connection: socket.socket, data: bytes) -> None:
    connection.sendall(_HEADER.pack(len(data)) + data)


def _receive(connection: socket.socket) -> bytes | None:
    """One message, or None when the other end closed before all of it came."""
    header = _exactly(connection, _HEADER.size)
    if header is None:
        return None
    return _exactly(connection, _HEADER.unpack(header)[0])


def _exactly(connection: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = connection.recv(min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
