"""A no-op build told from the last one, in a fresh process: when a build command ran
before and succeeded, and nothing that build depended on has changed, bp says so without
reading the saved analysis or looking at one action.

What the build depended on is (1) the command itself: its words, flags, the workspace,
bp, the environment (the key of the proof); (2) what loading and analysis read: the
saved analysis' own evidence, checked as the saved analysis is (`Snapshot.valid`); and
(3) the files and tools the up-to-date checks looked at (`execution/lastbuild.py`).
When all three hold, the build would find every action up to date: it records that
(for `bp log` and `bp why`) and prints what such a build prints. When only (3) fails,
for some files, the build goes the ordinary way but need not look at the actions the
proof still shows up to date (`lastbuild.Unmoved`). Anything else (no proof, a changed
BUILD file, a flag that writes files of its own) takes the ordinary way; a build that
succeeds proves again for next time. tests/test_noop.py edits each kind of input and
checks that the next build is not taken for a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, fields
from operator import attrgetter
from pathlib import Path
from typing import Any

from buildpy.execution import lastbuild

# What a build reads of the environment, besides what the saved analysis' key holds (the
# `environ` of repository rules): PATH (for the actions that take the shell's, and to
# find tools), where the shared cache is, and bp's own variables. Another terminal, or
# a changed LANG, still finds the proof.
_ENVIRONMENT = ("PATH", "HOME", "XDG_CACHE_HOME")


@dataclass(frozen=True)
class Place:
    key: str
    path: Path


def applies(execution, only_executable: bool) -> bool:
    """Whether a build may be told a no-op this way: not for `bp run`, nor a remote
    build (outputs may stay remote), nor with flags that want files written for this
    build (--profile, --build_event_json_file, --explain), nor one traced (--tracing)."""
    return not only_executable and execution.remote is None and not (
        execution.profile or execution.build_event_json_file
        or execution.explain) and execution.tracing in ("never", None)


def place(workspace: Path, analysis_key: str, execution, runfile_links: bool) -> Place:
    """Where the proof of this command is kept, and its key: the saved analysis' key
    (words, flags, workspace, repositories, bp), the execution flags and what a build
    reads of the environment."""
    environment = sorted((k, v) for k, v in os.environ.items()
                         if k in _ENVIRONMENT or k.startswith("BP_"))
    key = hashlib.sha256(json.dumps({
        "analysis": analysis_key, "execution": repr(execution), "links": runfile_links,
        "environment": environment}).encode()).hexdigest()
    return Place(key, workspace / "bp-out" / ".bp-state" / "noop" / key[:16])


def forget(place: Place) -> None:
    lastbuild.forget(place.path)


def keep(place: Place, proof: lastbuild.Proof, stamp_ns: int, reads, exec_root: Path,
         shown: dict) -> None:
    """Save the proof after a build that succeeded, with the analysis' reads (taken
    after `stamp_ns`) and what a no-op build prints (`shown`: marshal's plain values)."""
    from buildpy.core.reads import FileProof

    plain = attrgetter(*(f.name for f in fields(FileProof)))   # (astuple copies deeply)
    files = {path: None if read is None else plain(read)
             for path, read in reads.files.items()}
    lastbuild.save(place.path, place.key, proof, {
        "stamp": stamp_ns, "files": files, "listings": dict(reads.listings),
        "recursive": dict(reads.recursive), "exec_root": os.fspath(exec_root), **shown})


def proof(place: Place, exec_root: Path) -> tuple[lastbuild.Proof, dict[str, Any], Any] | None:
    """The proof, what was kept with it and the reads of loading and analysis it kept
    (a Snapshot without payload), when it is for this command; else None. Whether
    those reads still hold is the caller's to ask (`Snapshot.valid`), and so is what
    the proof says of the files (`Proof.changed`, `lastbuild.Unmoved`)."""
    from buildpy.analysis.snapshot import Snapshot
    from buildpy.core.reads import FileProof

    found = lastbuild.load(place.path, place.key)
    if found is None:
        return None
    proof, kept = found
    if kept["exec_root"] != os.fspath(exec_root):
        return None
    files = {path: None if values is None else FileProof(*values)
             for path, values in kept["files"].items()}
    return proof, kept, Snapshot(place.key, kept["stamp"], files, kept["listings"],
                                 kept["recursive"])
