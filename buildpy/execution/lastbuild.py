"""The proof that a build command's last run left everything it needs up to date, so that
the same command, run again, can say so from stat data alone (a no-op build, as ninja
does), without reading its saved analysis or looking at one action.

A build that succeeded looked at every input and output of every action it needed
(`FileDigests.seen`: the digest each had, checked or made by the build) and resolved
every tool. The next build of the same command, from the same analysis, would find every
action up to date exactly when each of those files still has that digest and each tool
resolves to the same file: the up-to-date check (`Executor.up_to_date`) compares nothing
else. The proof is the stat data of each file, taken where its digest is to be trusted
(`digests.py`: timestamps older than the stamp taken before the file was hashed), with
that digest; a file the build wrote last (a racy row) is hashed again under a new stamp
before it is written down. A build after an edit takes the digests of the files that did
not move from the proof (`Unmoved`), reading no digest row for them, and proves in turn
from those and what it looked at itself. A directory (an input, a tree artifact) counts
by its files and by the stat data of every directory in it, which moves when an entry
comes or goes; a declared symlink by its own stat data (lstat). An output the build
wrote without looking at it afterwards (a tree, a link) is looked at as the next build's
check would. No proof is written when the build saw a file with two digests (edited
while it ran), read the workspace status files (every build writes them anew), or needed
an action that is never taken as up to date.

Knows files, stat data and tools; not what the caller keeps beside the proof (the
analysis' own reads, the lines to print), which it stores without looking.
"""

from __future__ import annotations

import marshal
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from buildpy.execution.digests import FileInfo, stat_data, take_stamp
from buildpy.execution.explain import packed
from buildpy.execution.outputs import remove
from buildpy.execution.status import STABLE, VOLATILE

if TYPE_CHECKING:
    from buildpy.actions.graph import Action
    from buildpy.execution.executor import Executor

_MAGIC = "bp last build 3"   # 3: digests kept
KEPT = 8   # proofs kept per workspace (different commands)


@dataclass(frozen=True)
class Proof:
    """The files (exec paths, or absolute for tools), each with its stat data (size,
    mtime, ctime, inode), digest and executable bit; the directories and declared
    symlinks with their stat data (a link's own, from lstat); the tools (how each was
    found -> its real path); and the actions the build needed, as `mark_up_to_date`
    takes them."""

    paths: tuple[str, ...]
    stats: tuple[tuple[int, int, int, int], ...]
    sha256s: tuple[str, ...]
    executables: tuple[bool, ...]
    directories: tuple[str, ...]
    directory_stats: tuple[tuple[int, int, int, int], ...]
    links: tuple[str, ...]
    link_stats: tuple[tuple[int, int, int, int], ...]
    tools: tuple[tuple[Any, str | None], ...]
    actions: int
    unchanged: bytes

    def changed(self, exec_root: Path) -> list[str] | None:
        """The files whose stat data moved since the proof (none: it holds); None when a
        tool is another file, or a directory or a declared symlink moved (what is in
        them is not known file by file), or the exec root is gone."""
        prefix = os.path.realpath(exec_root) + os.sep
        if any(tool_path(key, prefix) != real for key, real in self.tools):
            return None
        try:
            root = os.open(exec_root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return None
        try:
            if _moved(root, os.stat, self.directories, self.directory_stats, True) or \
                    _moved(root, os.lstat, self.links, self.link_stats, True):
                return None
            return _moved(root, os.stat, self.paths, self.stats, False)
        finally:
            os.close(root)


def _moved(root: int, look, paths: tuple[str, ...],
           stats: tuple[tuple[int, int, int, int], ...], first: bool) -> list[str]:
    """The paths (below the directory open as `root`, or absolute) whose stat data is
    not `stats`; with `first`, the first such path only."""
    moved = []
    for path, known in zip(paths, stats):
        try:   # (relative to a directory's descriptor: no path to join, a shorter walk)
            if stat_data(look(path, dir_fd=root)) == known:
                continue
        except OSError:
            pass
        moved.append(path)
        if first:
            break
    return moved


class Unmoved:
    """What a proof still says when some of its files moved (`moved`, from
    `Proof.changed`): every action whose inputs and outputs are all files it proves,
    none of them moved, is up to date, unless it reads what an action not known so
    writes. Given to `LocalBuild.run` as `settled` (the protocol of settled.py's, which
    knows the same from file events): those actions are not looked at, and the files
    the proof still vouches for count as looked at, with the digests it kept, for the
    next proof (`FileDigests.vouch`). `moved` must still be all that moved: the caller
    found it under the workspace lock and no other bp held the lock since."""

    def __init__(self, proof: Proof, moved: list[str]):
        self.proof = proof
        self.moved = moved

    def up_to_date(self, actions: Sequence[Action], workspace: Path, executor: Executor
                   ) -> dict[int, Mapping[str, FileInfo]]:
        if any(os.path.isabs(p) for p in self.moved):
            return {}   # (a tool's own file: which actions run it is not recorded)
        proof, moved = self.proof, set(self.moved)
        if proof.directories:   # (a file in a tree artifact goes with the tree, whose
            #                     action may write it anew: it is looked at as the tree)
            inside = set(proof.directories)
            moved.update(p for p in proof.paths if os.path.dirname(p) in inside)
        digests = executor.digests
        digests.vouch(proof.paths, proof.stats, proof.sha256s, proof.executables, moved)
        good = set(proof.paths).difference(moved)
        proved, looks_up = good.issuperset, executor.looks_up
        candidates: list[int] = []
        unknown_outputs: set[str] = set()
        clear = unknown_outputs.isdisjoint   # (reads no output of one not known so)
        for index, action in enumerate(actions):
            inputs = action.all_inputs
            if proved(inputs) and proved(action.outputs) and clear(inputs) and \
                    looks_up(action):
                candidates.append(index)
            else:
                unknown_outputs.update(action.outputs)
        while True:   # (until nothing reads an output of an action not known so)
            still = []
            for index in candidates:
                action = actions[index]
                if clear(action.all_inputs):
                    still.append(index)
                else:
                    unknown_outputs.update(action.outputs)
            if len(still) == len(candidates):
                break
            candidates = still
        outputs = [path for index in candidates for path in actions[index].outputs]
        stats, sha256s, executables = digests.entries(outputs)
        infos = dict(zip(outputs, map(FileInfo, sha256s, [s[0] for s in stats],
                                      executables)))
        return {index: {path: infos[path] for path in actions[index].outputs}
                for index in candidates}

    def learn(self, actions: Sequence[Action], report, executor: Executor) -> None:
        """(Nothing to learn: the build proves anew when it succeeds.)"""


def tool_path(key: str | tuple[str, str], exec_root_prefix: str) -> str | None:
    """The real path of a tool, by its absolute path or (name, PATH); None when it is not
    found, or is a file of the exec root (an input, proved as such)."""
    import shutil

    found = key if isinstance(key, str) else shutil.which(key[0], path=key[1])
    if found is None:
        return None
    real = os.path.realpath(found)
    return None if real.startswith(exec_root_prefix) else real


def prove(actions: Iterable[Action], executor: Executor, stamp_path: Path) -> Proof | None:
    """The proof that `actions` (all that a build which succeeded needed) are up to date,
    or None where it cannot be given (see the module's docstring)."""
    digests = executor.digests
    seen = digests.seen
    needed = list(actions)
    if digests.unsteady or STABLE in seen or VOLATILE in seen or \
            any(not executor.looks_up(a) for a in needed):
        return None   # (the status files are written anew by every build that runs)
    trees, links = digests.trees, digests.links
    try:
        # from here on, a file that changes has timestamps no older than `stamp`
        stamp = digests.stamp_ns = take_stamp(stamp_path)
        # what the build wrote last, hashed again (a row kept from an earlier build is
        # never racy: `digest` reuses no other); a directory or link it wrote, never
        # looked at since, looked at as the next build's up-to-date check would
        for path in [p for p in digests.fresh if p in seen and p not in trees
                     and p not in links and not digests.trusted(p)]:
            digests.digest(path)
        for action in needed:
            for path in action.outputs:
                if path not in seen:
                    found = digests.link(path) if path in action.output_symlinks else \
                        digests.digest(path)
                    if found.sha256 != executor.recorded_outputs(action).get(path):
                        return None
        link_paths = tuple(links)
        link_stats = tuple(stat_data(os.lstat(os.path.join(digests.root, p)))
                           for p in link_paths)
        directories = _directories_below(digests, seen)
    except OSError:
        return None
    finally:
        digests.flush()
    if directories is None or digests.unsteady or \
            not seen.keys() >= {p for a in needed for p in a.all_inputs}:
        return None
    if any(not digests.trusted(p) for p in digests.fresh if p in seen
           and p not in trees and p not in links) or any(
            _racy_stat(known, stamp) for known in (*directories.values(), *link_stats)):
        return None   # changed since the build looked, or just now: no proof
    files = tuple(p for p in seen if p not in trees and p not in links)
    stats, sha256s, executables = digests.entries(files)
    prefix = os.path.realpath(executor.exec_root) + os.sep
    tools = tuple((key, known[0][0] if known else None)
                  for key, known in executor.tool_identities.items())
    if any(tool_path(key, prefix) != real for key, real in tools):
        return None
    unchanged = packed((a.outputs[0], a.owner_label, a.mnemonic) for a in needed)
    return Proof(files, stats, sha256s, executables, tuple(directories),
                 tuple(directories.values()), link_paths, link_stats, tools, len(needed),
                 unchanged)


def _racy_stat(known: tuple[int, int, int, int], stamp_ns: int) -> bool:
    return known[1] >= stamp_ns or known[2] >= stamp_ns


def _directories_below(digests, seen) -> dict[str, tuple[int, int, int, int]] | None:
    """The stat data of each directory in (and of) the directories the build looked at:
    a file added or removed anywhere in one changes its directory's. None when a file
    is there that the build did not see (it came after)."""
    found: dict[str, tuple[int, int, int, int]] = {}
    root = os.fspath(digests.root)
    for tree in digests.trees:
        for directory, _, files in os.walk(os.path.join(root, tree)):
            relative = os.path.relpath(directory, root)
            found[relative] = stat_data(os.stat(directory))
            if any(os.path.join(relative, name) not in seen for name in files):
                return None
    return found


def save(path: Path, key: str, proof: Proof, kept: dict) -> None:
    """Write the proof for the command `key`, with what the caller keeps beside it
    (`kept`: marshal's plain values); atomically, so that a killed bp leaves the old
    file or the new one, and only the newest KEPT files of the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove(os.fspath(path))   # (whatever stands there: a damaged state is replaced)
    data = marshal.dumps((_MAGIC, key, *(getattr(proof, f.name) for f in fields(Proof)),
                          kept))
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(data)
    os.replace(temporary, path)
    others = sorted(path.parent.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[KEPT:]:
        remove(os.fspath(old))


def load(path: Path, key: str) -> tuple[Proof, dict] | None:
    """The proof saved for the command `key` and what was kept beside it; None when
    there is none, or it is for another command, another format, or damaged."""
    try:
        data = marshal.loads(path.read_bytes())
        magic, saved_key, *values, kept = data
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if magic != _MAGIC or saved_key != key or len(values) != len(fields(Proof)):
        return None
    return Proof(*values), kept


def forget(path: Path) -> None:
    """No proof for this command any more (a build of it is under way)."""
    remove(os.fspath(path))
