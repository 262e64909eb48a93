"""Sandboxed spawns: run a process in a tree that holds only its declared inputs.

`sandboxed` (portable) copies the declared inputs into a sandbox directory and runs the
process there; `linux-sandbox` runs it under bubblewrap, in a tmpfs holding the inputs
read-only and the outputs' directories bound in from the sandbox directory, with a
private /tmp and no network. Both move the declared outputs back into the exec root and
nothing else, and reuse sandbox directories from one action to the next (sandboxdirs.py).
This module knows nothing of caches, keys or the action graph: it sees one `Spawn` at a
time.
"""

from __future__ import annotations

import dataclasses
import errno
import glob
import heapq
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from buildpy.execution.execroot import kept_link, real_path
from buildpy.execution.outputs import remove
from buildpy.execution.sandboxdirs import SandboxDirs
from buildpy.execution.sandboxslots import SlotError, SlotRunning, Slots, slot_argv
from buildpy.execution.symlinks import OutputLinkError, seal_outputs
from buildpy.execution.spawn import (
    BlockingRun, ProcessRegistry, Running, Spawn, SpawnResult, start_process,
)

FALLBACK_WARNING = ("linux-sandbox is not available here: {reason}; running actions with the "
                    "`sandboxed` strategy instead, which hides undeclared inputs but does not "
                    "block the network or protect the inputs from writes")

DEFAULT_FALLBACK_NOTE = ("actions run in the `sandboxed` strategy: linux-sandbox, the default "
                         "where it works, cannot run here ({reason})")

UNDECLARED_INPUT_HINT = ("'{path}' exists in the workspace but is not a declared input of "
                         "{label}; add it (or the target that generates it) to {attribute}")

# where an undeclared file goes: a genrule's programs in `tools`, what it reads in `srcs`
GENRULE_ATTRIBUTES = ("the genrule's `srcs`", "the genrule's `tools`")
RULE_ATTRIBUTES = "the rule's srcs, deps or data"

BWRAP_MISSING = ("bubblewrap (`bwrap`) is not installed; install the Debian package "
                 "`bubblewrap` (scripts/install-test-deps does)")

# System directories a tool may need, bound read-only into the linux sandbox.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/etc")

_PATH_TOKEN = re.compile(r"[\w.+@%~=,/-]+")
_HINT_SCAN_CHARS = 100_000
_HINT_MAX_CANDIDATES = 2_000


def fallback_warning(reason: str) -> str:
    """The warning to show when `linux-sandbox` was asked for but `sandboxed` is used."""
    return FALLBACK_WARNING.format(reason=reason)


def default_fallback_note(reason: str) -> str:
    """The note to show when the default strategy cannot be `linux-sandbox`."""
    return DEFAULT_FALLBACK_NOTE.format(reason=reason)


def parse_mount_pair(text: str) -> tuple[Path, Path]:
    """`--sandbox_add_mount_pair SRC[:DST]` -> (source, destination); DST defaults to SRC."""
    source, _, destination = text.partition(":")
    if not source or not os.path.isabs(source) or (destination and not os.path.isabs(destination)):
        raise ValueError(f"--sandbox_add_mount_pair={text}: expected an absolute SRC[:DST]")
    return Path(source), Path(destination or source)


# --- the sandbox tree -------------------------------------------------------------------

def _check_exec_path(path: str) -> str:
    if (not path or os.path.isabs(path) or os.path.normpath(path) != path
            or path == ".." or path.startswith("../")):
        raise ValueError(f"{path!r} is not a normalised exec path (relative, no '..')")
    return path


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent + "/")


def _within(path: str, directories: Iterable[str]) -> bool:
    """Whether `path` is at or below one of `directories` ("" is the top)."""
    return any(not d or _under(path, d) for d in directories)


def staged_inputs(spawn: Spawn) -> tuple[tuple[str, bool], ...]:
    """The declared inputs to place in a sandbox, as (exec path, is a directory).

    Inputs missing from the exec root are left out (the action then fails on them), and so
    are inputs inside a declared directory input, which arrive with their directory, and
    declared symlinks, which `make_sandbox` makes as they are.
    """
    staged: list[tuple[str, bool]] = []
    directories: list[str] = []
    exec_root = os.fspath(spawn.exec_root)
    for path in sorted(set(map(_check_exec_path, spawn.inputs)) - set(spawn.input_symlinks)):
        if any(_under(path, d) for d in directories):
            continue
        try:
            is_dir = stat.S_ISDIR(os.stat(os.path.join(exec_root, path)).st_mode)
        except OSError:   # missing (or unreadable)
            continue
        if is_dir:
            directories.append(path)
        staged.append((path, is_dir))
    return tuple(staged)


def mounted_inputs(spawn: Spawn, links: dict[str, str] | None = None
                   ) -> tuple[tuple[str, bool], ...]:
    """The declared inputs to mount read-only in a linux sandbox, as (exec path, is a dir).

    A directory input holding symlinks (the exec root is a symlink forest) is mounted file
    by file: mounted whole, its links would point at a workspace the sandbox does not see.
    The declared symlinks (`links`, as `input_links` gives them) are made, not mounted.
    """
    kept = input_links(spawn) if links is None else links
    mounts: list[tuple[str, bool]] = []
    for path, is_dir in staged_inputs(spawn):
        source = os.path.join(spawn.exec_root, path)
        if not is_dir or not _holds_symlinks(source):
            mounts.append((path, is_dir))
            continue
        for directory, _, files in os.walk(source, followlinks=True):
            relative = os.path.relpath(directory, spawn.exec_root)
            mounts += ((os.path.join(relative, name), False) for name in sorted(files)
                       if os.path.exists(os.path.join(directory, name))
                       and os.path.join(relative, name) not in kept)
    if len(mounts) > _MANY_MOUNTS:
        writable = {os.path.dirname(p) for p in (*spawn.outputs, *spawn.output_directories)}
        return _coalesced(os.fspath(spawn.exec_root), mounts, writable)
    return tuple(mounts)


# bubblewrap takes at most 9,000 arguments, three a mount: past _MANY_MOUNTS inputs, a
# directory whose every entry is an input is mounted whole, as one.
BWRAP_MAX_ARGS = 9000
_MANY_MOUNTS = 1000
TOO_MANY_MOUNTS = ("linux-sandbox cannot mount {count} inputs one by one (bubblewrap takes "
                   "at most 9000 arguments, three a mount); declare every file of their "
                   "directories, or run it with --strategy={mnemonic}=sandboxed")


def _coalesced(exec_root: str, mounts: list[tuple[str, bool]],
               writable: set[str]) -> tuple[tuple[str, bool], ...]:
    """`mounts` with each directory (below the top level) all of whose entries are mounted,
    none of which is a symlink, mounted as one instead: it shows the same files. A
    directory on the way to an output (`writable` holds their parents) stays writable."""
    kept = dict(mounts)
    for path in list(writable):
        while path:
            writable.add(path)
            path = os.path.dirname(path)
    children: dict[str, set[str]] = {}
    for path in kept:
        children.setdefault(os.path.dirname(path), set()).add(os.path.basename(path))
    deepest_first = [(-p.count("/"), p) for p in children if p]
    heapq.heapify(deepest_first)
    while deepest_first:
        _, parent = heapq.heappop(deepest_first)
        if parent in writable:
            continue
        try:
            with os.scandir(os.path.join(exec_root, parent)) as scan:
                entries = list(scan)
        except OSError:
            continue
        if any(e.is_symlink() for e in entries) or \
                {e.name for e in entries} != children[parent]:
            continue
        for entry in entries:
            del kept[os.path.join(parent, entry.name)]
        kept[parent] = True
        grandparent = os.path.dirname(parent)
        if grandparent and grandparent not in children:
            heapq.heappush(deepest_first, (-grandparent.count("/"), grandparent))
        children.setdefault(grandparent, set()).add(os.path.basename(parent))
    return tuple(sorted(kept.items()))


def input_links(spawn: Spawn) -> dict[str, str]:
    """The declared symlinks a sandbox holds as links (exec path -> text): those among
    the inputs, and those in the inputs' runfiles trees."""
    links = {p: os.readlink(spawn.exec_root / p) for p in spawn.input_symlinks}
    for path in spawn.inputs:
        links.update(tree_links(spawn.exec_root, path))
    return links


def tree_links(exec_root: Path, path: str) -> dict[str, str]:
    """The declared symlinks in the runfiles tree at `path` (exec path -> text), which a
    sandbox holds as links; none for another directory."""
    if not path.endswith(".runfiles"):
        return {}
    found = {}
    top = os.path.join(exec_root, path)
    for directory, _, files in os.walk(top, followlinks=True):
        for name in files:
            full = os.path.join(directory, name)
            if os.path.islink(full) and kept_link(full):
                found[os.path.relpath(full, exec_root)] = os.readlink(full)
    return found


def _holds_symlinks(directory: str) -> bool:
    for parent, dirs, files in os.walk(directory):
        if any(os.path.islink(os.path.join(parent, name)) for name in (*dirs, *files)):
            return True
    return False


def make_sandbox(base: Path, spawn: Spawn, inputs: tuple[tuple[str, bool], ...], *,
                 copy_inputs: bool, links: dict[str, str] | None = None) -> Path:
    """A fresh directory under `base`, staged (`stage_tree`): kept by --sandbox_debug."""
    base.mkdir(parents=True, exist_ok=True)
    prefix = re.sub(r"[^\w.-]", "_", spawn.mnemonic or "spawn") + "-"
    sandbox = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    stage_tree(sandbox, spawn, inputs, copy_inputs=copy_inputs, links=links)
    return sandbox


def stage_tree(sandbox: Path, spawn: Spawn, inputs: tuple[tuple[str, bool], ...], *,
               copy_inputs: bool, links: dict[str, str] | None = None) -> None:
    """Put the inputs and the outputs' parent directories in `sandbox`, a directory that
    holds none of the inputs (and no directory but those `tree_directories` names).

    With `copy_inputs` each input is a copy of its file (or directory) in the exec root, so
    that a write to an input changes the copy only; without, it is an empty file or
    directory for bubblewrap to mount the input on, read-only.
    """
    outputs = tuple(map(_check_exec_path, spawn.outputs))
    exec_root = spawn.exec_root.absolute()
    for path, is_dir in inputs:
        target = sandbox / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if copy_inputs and is_dir:   # (an output's directory inside it may exist already)
            shutil.copytree(exec_root / path, target, ignore_dangling_symlinks=True,
                            copy_function=shutil.copy, dirs_exist_ok=True)
        elif copy_inputs:
            shutil.copy(exec_root / path, target)
        elif is_dir:
            target.mkdir(exist_ok=True)
        else:
            target.touch()
    links = input_links(spawn) if links is None else links
    for path, text in links.items():   # declared symlinks: the same link, not what it names
        target = sandbox / _check_exec_path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        remove(os.fspath(target))
        os.symlink(text, target)
    for path in outputs:
        (sandbox / path).parent.mkdir(parents=True, exist_ok=True)
    for path in (*spawn.output_directories, *spawn.scratch_directories):
        (sandbox / path).mkdir(parents=True, exist_ok=True)   # as in Bazel: they exist
    (sandbox / _check_exec_path(spawn.working_directory or ".")).mkdir(parents=True,
                                                                       exist_ok=True)


def tree_directories(spawn: Spawn, inputs: tuple[tuple[str, bool], ...],
                     links: dict[str, str]) -> tuple[str, ...]:
    """The directories `stage_tree` makes (with their parents): those of the inputs,
    links and outputs, the declared output and scratch directories, the working
    directory. A reused sandbox directory keeps them for the next action."""
    parents = {os.path.dirname(p) for p in (*(p for p, _ in inputs), *links, *spawn.outputs)}
    return (*parents, *spawn.output_directories, *spawn.scratch_directories,
            _working_directory(spawn))


def writable_directories(spawn: Spawn) -> tuple[str, ...]:
    """The directories a linux sandbox binds writable from its sandbox directory: those
    of the outputs and the scratch directories, none inside another ("" for all of it,
    when an output is at the top)."""
    found: list[str] = []
    for path in sorted({os.path.dirname(o) for o in map(_check_exec_path, spawn.outputs)}
                       | set(map(_check_exec_path, spawn.scratch_directories)),
                       key=lambda p: (p.count("/"), p)):
        if not _within(path, found):
            found.append(path)
    return tuple(found)


def _working_directory(spawn: Spawn) -> str:
    path = _check_exec_path(spawn.working_directory or ".")
    return "" if path == "." else path


def _inside(root: Path | str, path: str) -> str:
    return os.path.join(root, path) if path else os.fspath(root)


def move_outputs(sandbox: Path, spawn: Spawn) -> tuple[str, ...]:
    """Move each declared output the action wrote back to the exec root; returns them."""
    moved = []
    for path in spawn.outputs:
        source = os.path.join(sandbox, path)
        destination = os.path.join(spawn.exec_root, path)
        try:   # the common case, in one call: a file over nothing or over a file
            os.replace(source, destination)
        except OSError as error:
            if not os.path.lexists(source):
                continue
            if error.errno not in _MOVED_SLOWLY:
                raise
            _move(source, destination)
        moved.append(path)
    return tuple(moved)


# why a plain rename of an output failed, when it can still be moved: no parent
# directory yet, a directory in the way (or over a file), another file system
_MOVED_SLOWLY = {errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST,
                 errno.EXDEV}


def _move(source: str, destination: str) -> None:
    """Move `source` to `destination`, whatever is there now, making its parents."""
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    remove(destination)
    try:
        os.replace(source, destination)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        shutil.move(source, destination)   # another file system


def reenter_command(sandbox: Path, spawn: Spawn, argv: Iterable[str]) -> str:
    """A shell line that runs the action again in a kept sandbox."""
    env = spawn.environment(sandbox)
    words = ["env", "-i", *(f"{k}={v}" for k, v in sorted(env.items())), *argv]
    directory = os.fspath(sandbox / spawn.working_directory)
    return f"cd {shlex.quote(directory)} && {shlex.join(words)}"


# --- the hint for reads of undeclared files ---------------------------------------------

def undeclared_input_hint(spawn: Spawn, stderr: bytes | str,
                          sandbox: Path | None = None) -> str | None:
    """A note for each path named in `stderr` that exists in the exec root, undeclared.

    Paths may be exec paths (`a/b.txt`, `./a/b.txt`) or absolute ones under the exec root
    or under `sandbox`. Returns None when stderr names no such path.
    """
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    roots = [os.fspath(spawn.exec_root.absolute()), os.path.realpath(spawn.exec_root)]
    if sandbox is not None:
        roots += [os.fspath(sandbox.absolute()), os.path.realpath(sandbox)]
    roots.sort(key=len, reverse=True)      # a sandbox may lie inside the exec root
    declared = tuple(spawn.inputs) + tuple(spawn.outputs)
    label = f"`{spawn.label}`" if spawn.label else "the action"
    found: list[str] = []
    seen: set[str] = set()
    for token in _PATH_TOKEN.findall(text[:_HINT_SCAN_CHARS]):
        if len(seen) >= _HINT_MAX_CANDIDATES:
            break
        token = token.rstrip(".,")
        if token in seen or ("/" not in token and "." not in token):
            continue
        seen.add(token)
        path = _as_exec_path(token, roots)
        if (path is None or path in found
                or any(_under(path, d) or _under(d, path) for d in declared)
                or not os.path.lexists(spawn.exec_root / path)):
            continue
        found.append(path)
    if not found:
        return None
    return "\n".join(UNDECLARED_INPUT_HINT.format(path=p, label=label,
                                                  attribute=_attribute(spawn, p))
                     for p in found)


def _attribute(spawn: Spawn, path: str) -> str:
    """The attribute an undeclared file belongs in (an executable file of a genrule is
    most likely a tool it runs)."""
    if spawn.mnemonic != "Genrule":
        return RULE_ATTRIBUTES
    executable = os.access(spawn.exec_root / path, os.X_OK) and \
        not os.path.isdir(spawn.exec_root / path)
    return GENRULE_ATTRIBUTES[executable]


def _as_exec_path(token: str, roots: list[str]) -> str | None:
    if os.path.isabs(token):
        token = os.path.normpath(token)
        root = next((r for r in roots if token.startswith(r + "/")), None)
        if root is None:
            return None
        token = token[len(root) + 1:]
    path = os.path.normpath(token)
    if path in (".", "..") or path.startswith("../"):
        return None
    return path


# --- the strategies ---------------------------------------------------------------------

def _process(spawn: Spawn, start_in: str, command: Callable[[Path], list[str]],
             registry: ProcessRegistry | None) -> Callable[[Path], Running]:
    """What starts `command(sandbox)` as a process of its own, in the sandbox's directory
    `start_in`."""
    def launch(sandbox: Path) -> Running:
        return start_process(command(sandbox), spawn.environment(sandbox),
                             Path(_inside(sandbox, start_in)), spawn.timeout, registry)
    return launch


def _start_in_sandbox(spawn: Spawn, sandbox: Path, release: Callable[[], None],
                      inputs: tuple[tuple[str, bool], ...],
                      launch: Callable[[Path], Running], kept: list[str] | None = None
                      ) -> Running:
    """`launch(sandbox)` in the staged `sandbox`; when it ends, the outputs (their links
    resolved inside the sandbox) move back and `release()` clears the sandbox, once; a
    sandbox `kept` (the command line it ran) stays, and the result says how to enter it
    again."""
    released = []

    def cleanup() -> None:
        if not released:
            released.append(True)
            release()

    try:
        running = launch(sandbox)
    except BaseException:
        cleanup()
        raise

    def then(result: SpawnResult) -> SpawnResult:
        notes = list(result.notes)
        try:
            seal_outputs(sandbox, spawn.exec_root.absolute(),
                         [o for o in spawn.outputs if o not in spawn.output_symlinks],
                         spawn.output_directories, inputs)
            move_outputs(sandbox, spawn)   # even when it failed: a test's logs
        except OutputLinkError as error:
            result = dataclasses.replace(result, error=str(error))
        except BaseException:
            cleanup()
            raise
        if result.exit_code != 0 and not result.timed_out:
            hint = undeclared_input_hint(spawn, result.stderr, sandbox)
            if hint:
                notes.append(hint)
        cleanup()
        if kept is not None:
            notes.append(f"sandbox kept at {sandbox}; to run the action in it again: "
                         f"{reenter_command(sandbox, spawn, kept)}")
            return dataclasses.replace(result, sandbox=sandbox, notes=tuple(notes))
        return dataclasses.replace(result, notes=tuple(notes))

    running.then, running.cleanup = then, cleanup
    return running


def _start_reused(spawn: Spawn, dirs: SandboxDirs, visible: tuple[str, ...],
                  needed: Iterable[str], inputs: tuple[tuple[str, bool], ...],
                  launch: Callable[[Path], Running],
                  stage: Callable[[Path], None] | None = None) -> Running:
    """`_start_in_sandbox` in a reused directory: the directories `needed` made and
    (below `visible`, what the process can see of it) nothing else, then `stage`d; after
    the action, emptied for the next one. That nothing of an earlier action shows is
    what tests/test_sandbox.py's test_a_reused_directory_shows_nothing_of_the_last_action
    checks."""
    directory = dirs.take()

    def release() -> None:
        dirs.give_back(directory, visible)

    try:
        directory.prepare(visible, needed)
        if stage is not None:
            stage(directory.path)
    except BaseException:
        release()
        raise
    return _start_in_sandbox(spawn, directory.path, release, inputs, launch)


def _kept() -> None:
    """What releasing a sandbox kept by --sandbox_debug does: nothing."""


class SandboxedStrategy(BlockingRun):
    """Runs the process in a directory holding copies of its declared inputs.

    Portable; it hides undeclared files from relative paths and keeps the inputs safe from
    writes (the process changes its copies), but it does not hide the rest of the file
    system from absolute paths, nor stop the network. The directory is reused by a later
    action (`reuse`), emptied of all but the directories that action needs; with `keep`
    (--sandbox_debug) each action gets a fresh one, kept.
    """

    name = "sandboxed"

    def __init__(self, base: Path, keep: bool = False,
                 registry: ProcessRegistry | None = None, reuse: bool = True):
        self.base = Path(base)
        self.keep = keep
        self.registry = registry
        self.dirs = SandboxDirs(self.base, reuse)

    def start(self, spawn: Spawn) -> Running:
        inputs, links = staged_inputs(spawn), input_links(spawn)
        working = _working_directory(spawn)
        launch = _process(spawn, working, lambda _: list(spawn.argv), self.registry)
        if self.keep:
            sandbox = make_sandbox(self.base, spawn, inputs, copy_inputs=True, links=links)
            return _start_in_sandbox(spawn, sandbox, _kept, inputs, launch,
                                     kept=list(spawn.argv))
        return _start_reused(   # the process sees all of the directory
            spawn, self.dirs, ("",), tree_directories(spawn, inputs, links), inputs, launch,
            lambda path: stage_tree(path, spawn, inputs, copy_inputs=True, links=links))

    def close(self) -> None:
        self.dirs.close()


@dataclasses.dataclass(frozen=True)
class Tree:
    """A linux sandbox's tree, as absolute paths: a tmpfs at the sandbox directory's path
    holding `directories` (made empty), the `writable` directories bound from the same
    paths in the sandbox directory, each input mounted read-only from its `source` in the
    exec root (source, target, is a directory), the declared symlinks (text, path), and
    the `working` directory the process starts in."""

    directories: list[str]
    writable: list[str]
    inputs: list[tuple[str, str, bool]]
    links: list[tuple[str, str]]
    working: str

    @staticmethod
    def of(spawn: Spawn, sandbox: Path, inputs: tuple[tuple[str, bool], ...],
           links: dict[str, str]) -> Tree:
        root = os.fspath(sandbox)
        working = _working_directory(spawn)
        writable = writable_directories(spawn)
        exec_root = os.fspath(spawn.exec_root.absolute())
        return Tree(
            [_inside(root, working)] if working and not _within(working, writable) else [],
            [_inside(root, path) for path in writable],
            [(os.path.join(exec_root, path), os.path.join(root, path), is_dir)
             for path, is_dir in inputs],
            [(text, os.path.join(root, _check_exec_path(path))) for path, text in links.items()],
            _inside(root, working))


class LinuxSandboxStrategy(BlockingRun):
    """Runs the process under bubblewrap: declared inputs read-only, no network.

    The process's tree is a tmpfs at the sandbox directory's path, in which bubblewrap
    mounts each declared input read-only and binds the outputs' directories writable from
    the sandbox directory (`writable_directories`): what the process writes anywhere else
    is gone when it ends, and the inputs' mount points (which bubblewrap makes) cost no
    file on the disk. The system directories are read-only, /tmp, /dev and /proc private;
    the workspace is not visible. The sandbox directory is reused by a later action
    (`reuse`), emptied of all but the directories that action needs. With `keep`
    (--sandbox_debug) each action gets a fresh directory holding its whole tree (a mount
    point for each input), bound writable whole, and kept.
    """

    name = "linux-sandbox"

    def __init__(self, base: Path, keep: bool = False,
                 mount_pairs: Iterable[str | tuple[Path | str, Path | str]] = (),
                 bwrap: str | None = None, registry: ProcessRegistry | None = None,
                 reuse: bool = True, slots: bool = True):
        self.base = Path(base)
        self.keep = keep
        self.registry = registry
        self.dirs = SandboxDirs(self.base, reuse)
        self.bwrap = bwrap or shutil.which("bwrap") or "bwrap"
        self.system = _system_args()   # (the same for every action of a build)
        pairs = []
        for pair in mount_pairs:
            source, destination = (parse_mount_pair(pair) if isinstance(pair, str)
                                   else (Path(pair[0]), Path(pair[1])))
            if not source.exists():
                raise ValueError(f"--sandbox_add_mount_pair: '{source}' does not exist")
            pairs.append((source, destination))
        self.mount_pairs = tuple(pairs)
        # Actions run in slots (sandboxslots.py) unless each gets a kept sandbox, or a
        # mount pair goes where each action's own /tmp or /dev/shm would cover it.
        self._resolved: dict[str, str] = {}   # real paths of the inputs' directories: the
        # exec root is made before the build, its links fixed for the build (execroot.py)
        covered = any(_under(os.fspath(d), t) for _, d in self.mount_pairs
                      for t in ("/tmp", "/dev/shm"))
        self._slots = Slots(slot_argv(self.bwrap, self._shared(False), self.base),
                            registry) if slots and not keep and not covered else None

    @staticmethod
    def available(bwrap: str | None = None) -> tuple[bool, str]:
        """(True, "") when bwrap runs a sandbox here, else (False, why not)."""
        path = bwrap or shutil.which("bwrap")
        if path is None:
            return False, BWRAP_MISSING
        argv = [path, *_namespace_args(False), *_system_args(), "--", "/bin/sh", "-c", ":"]
        try:
            probe = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                   timeout=10)
        except (OSError, subprocess.TimeoutExpired) as error:
            return False, f"bwrap cannot run: {error}"
        if probe.returncode != 0:
            detail = probe.stderr.decode(errors="replace").strip() or f"exit {probe.returncode}"
            return False, f"bwrap cannot create a sandbox here ({detail})"
        return True, ""

    def bwrap_argv(self, spawn: Spawn, sandbox: Path,
                   inputs: tuple[tuple[str, bool], ...] | None = None,
                   links: dict[str, str] | None = None, *, staged: bool = False
                   ) -> list[str]:
        """The bwrap command line running `spawn` in `sandbox`, which holds its writable
        directories (`writable_directories`) only: the tree is a tmpfs at its path, with
        those directories bound in, the inputs mounted and the declared symlinks
        (`links`, as `input_links` gives them) made (`Tree`). A `staged` sandbox is the
        whole tree instead (`make_sandbox`), bound writable."""
        argv = [self.bwrap, *self._shared(spawn.requires_network)]
        root = os.fspath(sandbox)
        tree = Tree.of(spawn, sandbox, mounted_inputs(spawn) if inputs is None else inputs,
                       {} if staged else input_links(spawn) if links is None else links)
        if staged:
            argv += ["--bind", root, root]
        else:
            argv += ["--tmpfs", root]
            for path in tree.directories:
                argv += ["--dir", path]
            for path in tree.writable:
                argv += ["--bind", path, path]
        for source, target, _ in tree.inputs:
            argv += ["--ro-bind", source, target]
        for text, path in tree.links:
            argv += ["--symlink", text, path]
        return [*argv, "--chdir", tree.working, "--", *spawn.argv]

    def _shared(self, network: bool) -> list[str]:
        """bwrap's arguments for what each action's sandbox holds alike: the namespaces,
        the system directories, the mount pairs."""
        argv = [*_namespace_args(network), *self.system]
        for source, destination in self.mount_pairs:
            argv += ["--ro-bind", os.fspath(source), os.fspath(destination)]
        return argv

    def helper_request(self, spawn: Spawn, sandbox: Path,
                       inputs: tuple[tuple[str, bool], ...], links: dict[str, str]) -> dict:
        """What a slot's helper needs to make the tree `bwrap_argv` describes (not
        staged) and run `spawn` in it (sandboxhelper.py): the inputs' sources resolved
        here, where their symbolic links point, as bubblewrap resolves them."""
        tree = Tree.of(spawn, sandbox, inputs, links)
        base = os.fspath(self.base)
        exec_root = spawn.exec_root.absolute()
        return {"argv": list(spawn.argv), "env": spawn.environment(sandbox),
                "base": base, "root": os.fspath(sandbox), "dirs": tree.directories,
                "binds": [[os.path.relpath(p, base), p] for p in tree.writable],
                "inputs": [[real_path(exec_root, path, self._resolved), target, is_dir]
                           for (path, _), (_, target, is_dir) in zip(inputs, tree.inputs)],
                "links": tree.links, "cwd": tree.working}

    def start(self, spawn: Spawn) -> Running:
        links = input_links(spawn)   # (walked once: the mounts and the sandbox need them)
        inputs = mounted_inputs(spawn, links)
        count = len(inputs) + len(links)
        if 3 * count > BWRAP_MAX_ARGS - 100:   # the system mounts take the rest
            raise OSError(errno.E2BIG, TOO_MANY_MOUNTS.format(
                count=count, mnemonic=spawn.mnemonic or "<mnemonic>"))
        if self.keep:
            sandbox = make_sandbox(self.base, spawn, inputs, copy_inputs=False, links=links)
            staged = self.bwrap_argv(spawn, sandbox, inputs, staged=True)
            return _start_in_sandbox(spawn, sandbox, _kept, inputs,
                                     _process(spawn, "", lambda _: staged, self.registry),
                                     kept=staged)
        writable = writable_directories(spawn)
        working = _working_directory(spawn)
        needed = [*(os.path.dirname(o) for o in spawn.outputs), *spawn.output_directories,
                  *spawn.scratch_directories, *([working] if _within(working, writable) else [])]
        launch = _process(spawn, "", lambda s: self.bwrap_argv(spawn, s, inputs, links),
                          self.registry)
        if self._slots is not None and not spawn.requires_network:
            launch = self._in_slot(spawn, inputs, links, launch)
        return _start_reused(spawn, self.dirs, writable, needed, inputs, launch)

    def _in_slot(self, spawn: Spawn, inputs: tuple[tuple[str, bool], ...],
                 links: dict[str, str], alone: Callable[[Path], Running]
                 ) -> Callable[[Path], Running]:
        """What runs `spawn` in a slot (sandboxslots.py); where a slot cannot start, this
        and every later action run under a bubblewrap of their own (`alone`) instead."""
        def launch(sandbox: Path) -> Running:
            if self._slots is None:
                return alone(sandbox)
            request = self.helper_request(spawn, sandbox, inputs, links)
            try:
                return SlotRunning(self._slots, request, spawn.timeout)
            except SlotError:
                self._slots = None
                return alone(sandbox)
        return launch

    def prestart(self) -> None:
        """Start a slot ahead of the first action (sandboxslots.Slots.prestart)."""
        if self._slots is not None:
            self.base.mkdir(parents=True, exist_ok=True)   # (the slot mounts it)
            self._slots.prestart()

    def close(self) -> None:
        if self._slots is not None:
            self._slots.close()
        self.dirs.close()


def _namespace_args(network: bool) -> list[str]:
    return ["--unshare-all", *(["--share-net"] if network else []),
            "--die-with-parent", "--new-session"]


def _system_args() -> list[str]:
    """Read-only system directories (symlinks such as /bin -> usr/bin kept as symlinks),
    then private /dev, /proc and /tmp."""
    argv: list[str] = []
    for path in (*SYSTEM_DIRS, *sorted(glob.glob("/lib*"))):
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    return argv + ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
