"""Tracing: run a spawn under strace and name the exec-root files it used undeclared.

It knows one spawn and the strace log of its run. It does not know how the spawn is run
(the caller passes that in, normally the local strategy: a sandbox would hide the very
reads we look for), nor caches or the action graph.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterable

from buildpy.execution.spawn import Running, Spawn, SpawnResult

STRACE = "/usr/bin/strace"

# The system calls that reveal a file being read, run or probed. '?' tells strace not to
# fail where one does not exist (open, stat, ... are absent on aarch64).
SYSCALLS = ("open", "openat", "openat2", "execve", "stat", "lstat", "newfstatat", "statx",
            "access", "faccessat", "faccessat2", "readlink", "readlinkat")
_AT_SYSCALLS = frozenset({"openat", "openat2", "newfstatat", "statx", "faccessat",
                          "faccessat2", "readlinkat"})

_LINE = re.compile(r"^(?:(?P<pid>\d+)\s+)?(?P<rest>.*)$")
_UNFINISHED = " <unfinished ...>"
_RESUMED = re.compile(r"^<\.\.\. \w+ resumed>(?P<tail>.*)$")
_CALL = re.compile(r"^(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<ret>-?\d+)")
_STRING = r'"(?P<path>(?:[^"\\]|\\.)*)"'
_PLAIN_ARGS = re.compile(_STRING + r"(?P<rest>.*)$")
_AT_ARGS = re.compile(r"^(?P<fd>AT_FDCWD|-?\d+)(?:<(?P<dir>(?:[^>\\]|\\.)*)>)?,\s*"
                      + _STRING + r"(?P<rest>.*)$")
_CREATES = re.compile(r"\bO_(?:WRONLY|CREAT)\b")


@dataclass(frozen=True)
class Access:
    """One successful system call on a path, as strace logged it."""

    path: str               # as the process passed it: absolute, or relative to `directory`
    directory: str | None   # the directory a relative path is relative to; None: the cwd
    creates: bool           # opened for writing or creating (the action's own file)


def strace_path() -> str | None:
    return shutil.which("strace") or (STRACE if os.access(STRACE, os.X_OK) else None)


def tracing_available(strace: str | None = None) -> bool:
    """Whether strace is installed and may trace processes here (ptrace can be denied)."""
    strace = strace or strace_path()
    if strace is None:
        return False
    try:
        probe = subprocess.run([strace, "-f", "-qq", "-e", "trace=execve", "-o", os.devnull,
                                "--", "/bin/sh", "-c", ":"],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def strace_argv(spawn: Spawn, log: str, strace: str) -> tuple[str, ...]:
    trace_set = ",".join("?" + name for name in SYSCALLS)
    return (strace, "-f", "-qq", "-y", "-e", f"trace={trace_set}", "-o", log, "--",
            *spawn.argv)


def start_traced(spawn: Spawn, start: Callable[[Spawn], Running],
                 strace: str | None = None) -> Running:
    """Start `spawn` under strace with `start`; its result carries the exec-root files it
    read undeclared (`undeclared_reads`).

    `start` must let the process see the host's /tmp, where the strace log is written
    (the local strategy does).
    """
    strace = strace or strace_path() or STRACE
    handle, log = tempfile.mkstemp(prefix="bp-strace-", suffix=".log")
    os.close(handle)
    try:
        running = start(dataclasses.replace(spawn, argv=strace_argv(spawn, log, strace)))
    except BaseException:
        os.unlink(log)
        raise
    inner_then, inner_cleanup = running.then, running.cleanup

    def then(result: SpawnResult) -> SpawnResult:
        try:
            result = inner_then(result)
            with open(log, "rb") as lines:
                accesses = parse_log(lines)
        finally:
            os.unlink(log)
        return dataclasses.replace(result, undeclared_reads=undeclared_reads(spawn, accesses))

    def cleanup() -> None:
        inner_cleanup()
        os.unlink(log)

    running.then, running.cleanup = then, cleanup
    return running


def parse_log(lines: Iterable[bytes | str]) -> tuple[Access, ...]:
    """The successful path accesses in an `strace -f -y` log, in order."""
    pending: dict[str, str] = {}
    accesses: list[Access] = []
    for raw in lines:
        line = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
        match = _LINE.match(line.rstrip("\n"))
        pid, rest = match["pid"] or "", match["rest"]
        if rest.endswith(_UNFINISHED):
            pending[pid] = rest[:-len(_UNFINISHED)]
            continue
        resumed = _RESUMED.match(rest)
        if resumed:
            if pid not in pending:
                continue
            rest = pending.pop(pid) + resumed["tail"]
        access = _access(rest)
        if access is not None:
            accesses.append(access)
    return tuple(accesses)


def _access(call_text: str) -> Access | None:
    call = _CALL.match(call_text)
    if call is None or int(call["ret"]) < 0 or call["name"] not in SYSCALLS:
        return None
    name = call["name"]
    if name in _AT_SYSCALLS:
        args = _AT_ARGS.match(call["args"])
        if args is None:
            return None
        directory = _unescape(args["dir"]) if args["dir"] is not None else None
        if args["fd"] != "AT_FDCWD" and directory is None:
            directory = ""                      # relative to an fd we cannot name
    else:
        args = _PLAIN_ARGS.match(call["args"])
        if args is None:
            return None
        directory = None
    path = _unescape(args["path"])
    if not path or (directory == "" and not os.path.isabs(path)):
        return None
    creates = name.startswith("open") and bool(_CREATES.search(args["rest"]))
    return Access(path, directory, creates)


def _unescape(text: str) -> str:
    """Undo strace's C-style quoting (\\n, \\", \\ooo, \\xhh) into a file name."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\" or i + 1 == len(text):
            out += char.encode("utf-8", "surrogateescape")
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        elif nxt in "01234567":
            end = i + 1
            while end < min(i + 4, len(text)) and text[end] in "01234567":
                end += 1
            out.append(int(text[i + 1:end], 8) & 0xFF)
            i = end
        else:
            out += {"n": b"\n", "t": b"\t", "r": b"\r", "v": b"\v", "f": b"\f"}.get(
                nxt, nxt.encode())
            i += 2
    return os.fsdecode(bytes(out))


def undeclared_reads(spawn: Spawn, accesses: Iterable[Access]) -> tuple[str, ...]:
    """Exec paths of files (not directories) in the exec root that the accesses touched,
    other than the declared inputs and outputs and the files the action created itself.
    """
    exec_root = os.fspath(spawn.exec_root.absolute())
    roots = sorted({exec_root, os.path.realpath(exec_root)}, key=len, reverse=True)
    declared = tuple(spawn.inputs) + tuple(spawn.outputs)
    created: set[str] = set()
    used: set[str] = set()
    for access in accesses:
        full = access.path
        if not os.path.isabs(full):
            full = os.path.join(access.directory or exec_root, full)
        full = os.path.normpath(full)
        root = next((r for r in roots if full.startswith(r + "/")), None)
        if root is None:
            continue
        path = full[len(root) + 1:]
        (created if access.creates else used).add(path)
    reads = []
    for path in used - created:
        if any(path == d or path.startswith(d + "/") for d in declared):
            continue
        full = os.path.join(exec_root, path)
        if os.path.lexists(full) and not os.path.isdir(full):
            reads.append(path)
    return tuple(sorted(reads))
