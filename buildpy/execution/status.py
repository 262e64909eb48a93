"""The workspace status files (Bazel's WorkspaceStatusAction), written before actions run.

`bp-out/stable-status.txt` and `bp-out/volatile-status.txt`: `KEY VALUE` lines, sorted.
Knows --stamp, --embed_label, the status command and its keys, and what stands for the
stamped volatile file in a local action key; not the actions that read the files (they
are plain inputs) nor how keys are made.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from buildpy.core.errors import UserError, environment_error

STABLE = "bp-out/stable-status.txt"       # ctx.info_file, as an exec path
VOLATILE = "bp-out/volatile-status.txt"   # ctx.version_file
UNSTAMPED_VOLATILE = "BUILD_TIMESTAMP 0\n"   # the volatile file without --stamp
# what the stamped volatile file stands for in a local action key (its content does not
# count, as in Bazel): any fixed text would do. The unstamped file is keyed by content.
VOLATILE_KEY = "bp-volatile-status"
COMMAND_TIMEOUT = 600.0   # seconds a status command may run


@dataclass(frozen=True)
class StatusOptions:
    """The flags that choose what the status files hold."""

    stamp: bool = False                 # --stamp
    command: str = ""                   # --workspace_status_command
    embed_label: str = ""               # --embed_label


def status_contents(options: StatusOptions, workspace: Path) -> tuple[str, str]:
    """(stable, volatile) file contents. Without --stamp they are fixed (the keys with
    empty values, BUILD_TIMESTAMP 0, the --embed_label) and no command runs, so that
    an unstamped build stays deterministic and cached; with --stamp, the host, the user,
    the time, and the lines of --workspace_status_command (STABLE_ keys to the stable
    file, the others to the volatile one)."""
    stable = {"BUILD_EMBED_LABEL": options.embed_label, "BUILD_HOST": "", "BUILD_USER": ""}
    volatile = {"BUILD_TIMESTAMP": "0"}   # UNSTAMPED_VOLATILE
    if options.stamp:
        stable["BUILD_HOST"] = socket.gethostname()
        stable["BUILD_USER"] = _user()
        volatile["BUILD_TIMESTAMP"] = str(int(time.time()))
        if options.command:
            for key, value in run_status_command(options.command, workspace):
                # as Bazel 4.2.3: a command's BUILD_HOST (or other key of the stable
                # file) replaces bp's there
                stable_key = key.startswith("STABLE_") or key in stable
                (stable if stable_key else volatile)[key] = value
    return _render(stable), _render(volatile)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):   # a uid with no name
        return str(os.getuid())


def _render(values: dict[str, str]) -> str:
    return "".join(f"{key} {values[key]}\n" for key in sorted(values))


def run_status_command(command: str, workspace: Path) -> list[tuple[str, str]]:
    """The (key, value) pairs the command prints, one `KEY VALUE` line each (a line
    with no space is skipped; a later line of a key wins). A program's path relative to
    the workspace (`tools/status.sh`) runs that program; anything else runs as `bash -c
    COMMAND`. It runs in the workspace root, with bp's environment; failing is a
    UserError naming it, its exit status and its stderr."""
    program = workspace / command
    argv = [str(program)] if not os.path.isabs(command) and program.is_file() else \
        ["/bin/bash", "-c", command]   # Bazel's form (a program, from the workspace root)
    try:
        done = subprocess.run(argv, cwd=workspace,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise UserError(f"--workspace_status_command '{command}' failed: Failed to "
                        f"determine workspace status: timed out after "
                        f"{COMMAND_TIMEOUT:.0f}s", hint=_HINT) from None
    except OSError as error:
        raise UserError(f"--workspace_status_command '{command}' failed: Failed to "
                        f"determine workspace status: {error}", hint=_HINT) from None
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").rstrip("\n")
        raise UserError(f"--workspace_status_command '{command}' failed: Failed to "
                        f"determine workspace status: Process exited with status "
                        f"{done.returncode}" + (f"\n{stderr}" if stderr else ""), hint=_HINT)
    pairs = []
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        key, space, value = line.partition(" ")
        if space:   # as in Bazel, a line with no space (blank or not) is no key
            pairs.append((key, value))
    return pairs


_HINT = ("the command runs in the workspace root and must exit 0, printing `KEY VALUE` "
         "lines (keys starting with STABLE_ go to bp-out/stable-status.txt)")


def write_status(output_base: Path, contents: tuple[str, str]) -> None:
    """Write the two files into the output base (bp-out), each only when its content
    changed, atomically (a rename), so that their digests stay cached otherwise."""
    for name, text in zip(("stable-status.txt", "volatile-status.txt"), contents):
        path = output_base / name
        data = text.encode()
        try:
            if path.read_bytes() == data:
                continue
        except OSError:
            pass
        temporary = path.with_name(f".{name}.tmp")
        try:
            temporary.write_bytes(data)
            os.replace(temporary, path)
        except OSError as error:   # a full disk, a read-only bp-out: the machine's fault
            raise environment_error(error, path) or error


def volatile_key(sha256: str) -> str | None:
    """The SHA-256 that stands for the volatile file's content `sha256` in a local action
    key: VOLATILE_KEY's for a stamped file, so that its changes alone run nothing again;
    None (its own) for the fixed unstamped one, so that an unstamped build is keyed by
    content (a tool that read a stamped file runs again once unstamped)."""
    return None if sha256 == _UNSTAMPED_SHA256 else _STANDS_FOR


_UNSTAMPED_SHA256 = hashlib.sha256(UNSTAMPED_VOLATILE.encode()).hexdigest()
_STANDS_FOR = hashlib.sha256(VOLATILE_KEY.encode()).hexdigest()
