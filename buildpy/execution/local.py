"""A local build: the workspace's output base, its lock, the shared cache, the strategies.

Opens everything execution needs for one command and runs wanted files through the
scheduler. Knows paths, locks and strategies; not targets or rules.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TextIO

from buildpy.actions.graph import Action, ActionGraph
from buildpy.core.errors import EnvError, UserError
from buildpy.execution.cas import ContentStore
from buildpy.execution.digests import FileDigests, take_stamp
from buildpy.execution.execroot import exec_root_for, prepare_exec_root
from buildpy.execution.executor import Executor
from buildpy.execution.scheduler import BuildReport, Feed, Progress, Scheduler
from buildpy.execution.spawn import LocalStrategy, ProcessRegistry, Strategy
from buildpy.execution.state import open_cache_db, open_files_db

STRATEGIES = ("local", "sandboxed", "linux-sandbox")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bp"


@dataclass(frozen=True)
class ExecutionOptions:
    jobs: int = os.cpu_count() or 1
    keep_going: bool = False
    spawn_strategy: str | None = None   # None: a sandbox (linux-sandbox, else sandboxed)
    strategies: Mapping[str, str] = field(default_factory=dict)   # mnemonic -> strategy
    disk_cache: Path | None = None
    block_for_lock: bool = True
    sandbox_debug: bool = False
    sandbox_mount_pairs: tuple[str, ...] = ()
    tracing: str = "never"


class WorkspaceLock:
    """One bp command at a time per workspace: others wait (or fail)."""

    def __init__(self, path: Path, block: bool, say: Callable[[str], None]):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another process"
            if not block:
                self.handle.close()
                raise EnvError(f"another bp command ({holder}) is running in this workspace",
                               hint="wait for it, or drop --noblock_for_lock to wait "
                                    "automatically") from None
            say(f"Another bp command ({holder}) is running in this workspace; waiting for "
                "it to finish...")
            fcntl.flock(self.handle, fcntl.LOCK_EX)
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"pid {os.getpid()}")
        self.handle.flush()

    def release(self) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


class LocalBuild:
    def __init__(self, workspace: Path, repos: Mapping[str, Path], options: ExecutionOptions,
                 err: TextIO = sys.stderr):
        self.workspace = workspace
        self.options = options
        self.err = err
        self.output_base = workspace / "bp-out"
        self.cache_dir = options.disk_cache or default_cache_dir()
        state = self.output_base / ".bp-state"
        self.lock = WorkspaceLock(state / "lock", options.block_for_lock, self.say)
        try:
            self.exec_root = exec_root_for(self.cache_dir, workspace)
            prepare_exec_root(self.exec_root, workspace, dict(
                (name, path) for name, path in repos.items() if name), self.output_base)
            self.processes = ProcessRegistry(state / "running.log")
            if self.processes.reap():
                self.say("killed the actions an interrupted bp left running")
            self.stamp = take_stamp(state / "stamp")
            files_db = open_files_db(self.output_base)
            self.digests = FileDigests(files_db, self.exec_root, self.stamp)
            self.store = ContentStore(self.cache_dir / "cas")
            self.cache = open_cache_db(self.cache_dir)
            self._strategies: dict[str | None, Strategy] = {}
            self._can_trace: bool | None = None
            self._check_mount_pairs()
            self.executor = Executor(self.exec_root, self.digests, self.store, self.cache,
                                     self.strategy_for, options.tracing,
                                     self._traced if options.tracing != "never" else None)
            self.executor.load_done(files_db)
        except BaseException:
            self.lock.release()
            raise

    def _check_mount_pairs(self) -> None:
        """Bad --sandbox_add_mount_pair values fail now, not when a sandbox first runs."""
        from buildpy.execution.sandbox import parse_mount_pair

        for pair in self.options.sandbox_mount_pairs:
            try:
                source, _ = parse_mount_pair(pair)
            except ValueError as error:
                raise UserError(str(error)) from None
            if not source.exists():
                raise UserError(f"--sandbox_add_mount_pair: '{source}' does not exist",
                                hint="give an existing host path, optionally as SRC:DST")

    def say(self, text: str) -> None:
        self.err.write(f"INFO: {text}\n")
        self.err.flush()

    def _traced(self, spawn):
        """Start under strace (locally: strace needs the host's /tmp for its log)."""
        from buildpy.execution import tracing

        local = LocalStrategy(self.processes)
        if self._can_trace is None:   # probe strace once per build, not once per action
            self._can_trace = tracing.tracing_available()
            if not self._can_trace:
                self.say("WARNING: --tracing needs strace, which is not installed; actions "
                         "run untraced (scripts/install-test-deps installs it)")
        if not self._can_trace:
            return local.start(spawn)
        return tracing.start_traced(spawn, local.start)

    def strategy_for(self, action: Action) -> Strategy:
        requirements = dict(action.execution_requirements)
        if "local" in requirements or "no-sandbox" in requirements:
            name = "local"   # the target asked to run outside any sandbox
        else:
            name = self.options.strategies.get(action.mnemonic, self.options.spawn_strategy)
        if name not in self._strategies:
            self._strategies[name] = self._make_strategy(name)
        return self._strategies[name]

    def _make_strategy(self, name: str | None) -> Strategy:
        """The strategy `name`; None is the default, a sandbox: `linux-sandbox` where
        bubblewrap works, else `sandboxed` (said once, as INFO: nobody asked for more)."""
        if name == "local":
            return LocalStrategy(self.processes)
        from buildpy.execution import sandbox

        base = self.cache_dir / "sandbox"
        if name in ("linux-sandbox", None):
            available, reason = sandbox.LinuxSandboxStrategy.available()
            if available:
                return sandbox.LinuxSandboxStrategy(   # mount pairs were checked up front
                    base, keep=self.options.sandbox_debug,
                    mount_pairs=self.options.sandbox_mount_pairs, registry=self.processes)
            if name is None:
                self.say(sandbox.default_fallback_note(reason))
            else:
                self.say(f"WARNING: {sandbox.fallback_warning(reason)}")
        if name in ("sandboxed", "linux-sandbox", None):
            return sandbox.SandboxedStrategy(base, keep=self.options.sandbox_debug,
                                             registry=self.processes)
        raise UserError(f"unknown strategy '{name}'",
                        hint="choose one of: " + ", ".join(STRATEGIES))

    def run(self, graph: ActionGraph, wanted: list[str], progress: Progress,
            feed: Feed | None = None) -> BuildReport:
        """Build `wanted` (and what `feed` adds to the graph and wants while it runs)."""
        durations = self.cache.durations(
            None if feed is not None else ((a.owner_label, a.mnemonic) for a in graph.actions))
        scheduler = Scheduler(graph, self.executor, self.options.jobs,
                              self.options.keep_going, progress, durations)
        try:
            return scheduler.run(wanted, feed)
        finally:
            self.digests.flush()
            self.executor.flush_done()
            self.cache.flush()

    def close(self) -> None:
        self.cache.flush()
        self.processes.close()
        self.lock.release()


def clean(workspace: Path, expunge: bool, cache_dir: Path | None) -> list[Path]:
    """Remove the outputs (and with `expunge`, the workspace's state and exec root)."""
    removed = []
    output_base = workspace / "bp-out"
    for link in (workspace / "bp-bin",):
        if link.is_symlink():
            link.unlink()
    if output_base.exists():
        state = output_base / ".bp-state"
        for entry in output_base.iterdir():
            if entry == state and not expunge:
                continue
            _make_writable(entry)
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        removed.append(output_base)
        if expunge:
            shutil.rmtree(output_base, ignore_errors=True)
            root = exec_root_for(cache_dir or default_cache_dir(), workspace)
            shutil.rmtree(root, ignore_errors=True)
            removed.append(root)
    return removed


def _make_writable(path: Path) -> None:
    """Outputs are read-only; rmtree needs their directories writable."""
    if path.is_dir() and not path.is_symlink():
        for root, dirs, _ in os.walk(path):
            for name in dirs:
                try:
                    os.chmod(os.path.join(root, name), 0o755)
                except OSError:
                    pass


