"""Watch mode: build (test, run) once, then again after every change to a file the last
build depended on (its input closure), until Ctrl-C.

Knows which files an iteration depended on (what loading read, the directories glob()
listed, the source inputs of the planned actions), which file events touch them, and how
to stop and start the program of `bp run --watch`; not how a build runs: each iteration
is the caller's function, the normal build code in this process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, TextIO

from buildpy.core.errors import BpError, EnvError
from buildpy.core.workspace import BUILD_FILES

EXIT_INTERRUPTED = 8
STOP_GRACE = 5.0   # seconds between SIGTERM and SIGKILL for the program of `bp run`
_SHOWN = 5         # changed files named in a summary line
_EDITOR_FILE = re.compile(r"(\.sw[a-z]|~|\.tmp)$|^\.#|^#.*#$")   # swap, backup, lock files


def editor_file(name: str) -> bool:
    """Files editors write beside the one being saved: vim's swap files and its `4913`
    probe (4913, 5036, ... in steps of 123), backups (`name~`), emacs locks and
    autosaves (`.#name`, `#name#`)."""
    if name.isdigit() and int(name) >= 4913 and (int(name) - 4913) % 123 == 0:
        return True
    return _EDITOR_FILE.search(name) is not None


@dataclass(frozen=True)
class Closure:
    """What a build depended on, as absolute paths: files read (or looked for and found
    absent) and source inputs of its actions; directories whose listing glob() read
    (a file added there or removed counts); directories below which recursive patterns
    looked for packages (a BUILD file added there or removed counts)."""

    files: frozenset[str] = frozenset()
    listed: frozenset[str] = frozenset()
    below: frozenset[str] = frozenset()

    def __or__(self, other: "Closure") -> "Closure":
        return Closure(self.files | other.files, self.listed | other.listed,
                       self.below | other.below)

    def touches(self, path: str, added_or_deleted: bool) -> bool:
        if path in self.files:
            return True
        if not added_or_deleted:
            return False
        parents = [str(p) for p in Path(path).parents]
        if any(p in self.listed for p in parents):
            return True
        return os.path.basename(path) in BUILD_FILES and any(p in self.below
                                                             for p in parents)


class WatchState:
    """One watch session's state, passed to every iteration (run_build and run_test fill
    it in when given one as `state`). `begin()` clears what one iteration tells the
    loop: what loading read, the actions planned, how many actions ran. What outlives
    the iterations (`kept`: the loader, the configured graph and the analysis, a
    `buildpy.warm.Warm`) is made and used by run_build and run_test."""

    def __init__(self) -> None:
        self.kept = None
        self._sources_of: tuple = (None, frozenset(), frozenset())   # the last graph's
        self.begin()

    def begin(self, touched: set[str] | None = None) -> None:
        # every path that changed since the last iteration began (None: not known)
        self.touched = touched
        self.root: Path | None = None
        self.workspace = None        # the session's Workspace: its ignored directories
        self.reads = None            # the session's ReadLog, as it grows
        self.planned = False         # the actions are known: the closure is whole
        self.sources: set[str] = set()   # source inputs, relative to the workspace
        self.executed = 0
        self.cached = 0              # cache hits and actions found up to date

    def reading(self, workspace, reads) -> None:
        self.workspace, self.root, self.reads = workspace, workspace.root, reads

    def acting(self, actions: Iterable) -> None:
        """The source inputs of `actions`: inputs no action of theirs writes, in the
        workspace (not under bp-out, nor in an external repository). (The same list
        of actions as the last iteration's, kept in memory, has the same sources.)"""
        if isinstance(actions, (list, tuple)) and actions is self._sources_of[0]:
            self.sources.update(self._sources_of[1])
            return
        given = actions
        actions = list(actions)
        outputs = {o for a in actions for o in a.outputs}
        sources = frozenset(p for a in actions for p in a.all_inputs if p not in outputs and
                            not p.startswith(("bp-out/", "external/")))
        self.sources.update(sources)
        if isinstance(given, (list, tuple)):
            self._sources_of = (given, sources, frozenset())

    def prepare(self) -> None:
        """Between iterations: make the next one cheaper ahead of it (Warm.prepare)."""
        if self.kept is not None:
            self.kept.prepare()

    def ran(self, report) -> None:
        self.executed += report.executed
        self.cached += report.total - report.executed - len(report.failed) - report.skipped

    def closure(self) -> Closure:
        if self.root is None:
            return Closure()
        root = self.root
        given, sources, absolute = self._sources_of
        if self.sources != sources or not absolute:
            prefix = f"{root}/"
            absolute = frozenset(prefix + p for p in self.sources)
            self._sources_of = (given, frozenset(self.sources), absolute)
        files = set(absolute)
        listed: set[str] = set()
        below: set[str] = set()
        if self.reads is not None:
            files.update(self.reads.files)
            listed = {str(root / p) if p else str(root) for p in self.reads.listings
                      if not p.startswith("@")}
            below = {str(root / p) if p else str(root) for p in self.reads.recursive}
        return Closure(frozenset(files), frozenset(listed), frozenset(below))


def relevant_changes(changes: Iterable[tuple[object, str]], closure: Closure, root: Path,
                     ignored: Callable[[str], bool]) -> list[str]:
    """The workspace-relative paths of `changes` (watchfiles' (Change, path) pairs) that
    touch `closure`: not under bp-out, not in an ignored directory, not an editor's
    swap or backup file."""
    from watchfiles import Change

    kinds: dict[str, set] = {}
    for change, path in changes:
        kinds.setdefault(path, set()).add(change)
    found: set[str] = set()
    for path, seen in kinds.items():
        try:
            relative = Path(path).relative_to(root).as_posix()
        except ValueError:
            continue
        parts = relative.split("/")
        if parts[0] == "bp-out" or editor_file(parts[-1]) or (
                len(parts) > 1 and ignored("/".join(parts[:-1]))):
            continue
        # (a temporary file made and removed within one batch changed no listing)
        listing = (Change.added in seen) != (Change.deleted in seen) or (
            Change.added in seen and os.path.lexists(path))
        if closure.touches(path, listing):
            found.add(relative)
    return sorted(found)


def summary(changed: list[str], state: WatchState, seconds: float, code: int) -> str:
    """`[watch] 2 files changed (a/x.c, a/BUILD): 3 actions run, 12 cached, 0.41 s, OK`."""
    if changed:
        names = ", ".join(changed[:_SHOWN]) + (", ..." if len(changed) > _SHOWN else "")
        head = f"{len(changed)} file{'s' if len(changed) != 1 else ''} changed ({names})"
    else:
        head = "initial build"
    result = "OK" if code == 0 else f"FAILED (exit {code})"
    return (f"[watch] {head}: {state.executed} action{'s' if state.executed != 1 else ''} "
            f"run, {state.cached} cached, {seconds:.2f} s, {result}")


def watch(root: Path, iteration: Callable[[WatchState], int], *, err: TextIO,
          report_error: Callable[[BpError], None],
          debounce_ms: int = 1600, step_ms: int = 20,
          idle: Callable[[], None] = lambda: None) -> int:
    """Run `iteration` (which returns an exit code, or raises a BpError that
    `report_error` shows), then again after each debounced batch of changes that touch
    its input closure; `idle()` runs about five times a second while it waits. Returns
    0 when Ctrl-C stops the watch while it waits, 8 when it interrupts a build.

    Watching starts before the first build, so an edit made while a build runs starts
    the next one. An iteration that failed before its actions were known (a BUILD
    file's error) keeps the previous closure and adds what it read, so that fixing
    the error resumes."""
    import gc

    from watchfiles import watch as watch_files

    events = watch_files(root, watch_filter=None, debounce=debounce_ms, step=step_ms,
                         rust_timeout=200, yield_on_timeout=True, raise_interrupt=True,
                         ignore_permission_denied=True)
    try:
        _next(events, root)   # watching from here on (what came before the first build is moot)
        closure = Closure()
        ignored: Callable[[str], bool] = lambda directory: False   # noqa: E731
        changed: list[str] = []
        touched: set[str] | None = None   # (the first build: not known)
        state = WatchState()
        while True:
            state.begin(touched)
            touched = set()
            started = time.monotonic()
            try:
                code = iteration(state)
            except BpError as error:
                report_error(error)
                code = error.exit_code
            except KeyboardInterrupt:
                err.write("ERROR: build interrupted\n")
                return EXIT_INTERRUPTED
            if code == EXIT_INTERRUPTED:
                return EXIT_INTERRUPTED
            latest = state.closure()
            closure = latest if state.planned else closure | latest
            if state.workspace is not None:
                ignored = state.workspace.is_ignored
            err.write(summary(changed, state, time.monotonic() - started, code) + "\n")
            err.flush()
            state.prepare()   # (changes made meanwhile are seen next)
            gc.collect()   # (a build runs with the cyclic collector off)
            err.write(f"[watch] Watching {len(closure.files)} files; Ctrl-C to stop\n")
            sys.stdout.flush()   # (a test summary goes there)
            err.flush()
            changed = []
            while not changed:
                batch = _next(events, root)
                if not batch:
                    idle()
                touched.update(path for _, path in batch)
                changed = relevant_changes(batch, closure, root, ignored)
    except KeyboardInterrupt:   # while waiting: the user is done watching
        err.write("[watch] stopped\n")
        return 0
    finally:
        events.close()


def _next(events, root: Path):
    """The next batch of changes; a file system that cannot be watched is the
    environment's fault (exit 36)."""
    try:
        return next(events)
    except OSError as error:
        hint = ("every directory of the workspace (bp-out too) takes one inotify watch: "
                "raise the limit, e.g. `sysctl fs.inotify.max_user_watches=524288`"
                if "limit" in str(error) else None)
        raise EnvError(f"cannot watch the workspace {root} for changes: {error}",
                       hint=hint) from None


class Program:
    """The program `bp run --watch` runs: in a process group of its own, stopped (the
    whole group: SIGTERM, then SIGKILL after STOP_GRACE seconds) before it starts again."""

    def __init__(self, err: TextIO = sys.stderr):
        self.process: subprocess.Popen | None = None
        self.err = err

    def start(self, argv: list[str], env: Mapping[str, str], cwd: Path | None) -> None:
        self.stop()
        self.process = subprocess.Popen(argv, env=dict(env), cwd=cwd, start_new_session=True)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        group = process.pid   # the leader of its own session and group
        if process.poll() is None:
            _signal_group(group, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(group, signal.SIGKILL)   # and whatever it left in its group
        process.wait()

    def check(self) -> None:
        """Say so once when the program ended by itself."""
        if self.process is not None and self.process.poll() is not None:
            self.err.write(f"[watch] the program exited with code {self.process.returncode}\n")
            self.err.flush()
            self.process = None


def _signal_group(group: int, number: int) -> None:
    try:
        os.killpg(group, number)
    except (ProcessLookupError, PermissionError):
        pass
