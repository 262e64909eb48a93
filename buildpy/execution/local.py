"""A local build: the workspace's output base, its lock, the shared cache, the strategies.

Opens everything execution needs for one command and runs wanted files through the
scheduler. Knows paths, locks and strategies; not targets or rules.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import sys
import threading

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TextIO

from buildpy.actions.graph import Action, ActionGraph
from buildpy.core.errors import EnvError, UserError, environment_error
from buildpy.core.host import bp_cache_home
from buildpy.execution.cas import ContentStore
from buildpy.execution.digests import FileDigests
from buildpy.execution.eviction import DEFAULT_MAX_SIZE, CacheUse, Eviction, evict, \
    format_size, needs_eviction
from buildpy.execution.execroot import exec_root_for, prepare_exec_root
from buildpy.execution import lastbuild
from buildpy.execution.executor import Executor, Outcome
from buildpy.execution.lastbuild import Proof, Unmoved
from buildpy.execution.outputs import remove
from buildpy.execution.places import check_cache_dir, check_output_base, stamp_at
from buildpy.execution.settled import Settled
from buildpy.execution.scheduler import BuildReport, Feed, Progress, Scheduler
from buildpy.execution.spawn import LocalStrategy, ProcessRegistry, Strategy
from buildpy.execution.state import open_cache_db, open_files_db
from buildpy.execution.status import StatusOptions, status_contents, write_status
from buildpy.execution.telemetry import Telemetry

STRATEGIES = ("local", "sandboxed", "linux-sandbox")


def default_cache_dir() -> Path:
    return bp_cache_home()


@dataclass(frozen=True)
class ExecutionOptions:
    jobs: int = os.cpu_count() or 1
    keep_going: bool = False
    spawn_strategy: str | None = None   # None: a sandbox (linux-sandbox, else sandboxed)
    strategies: Mapping[str, str] = field(default_factory=dict)   # mnemonic -> strategy
    disk_cache: Path | None = None
    disk_cache_max_size: int = DEFAULT_MAX_SIZE   # bytes; 0: no bound
    block_for_lock: bool = True
    sandbox_debug: bool = False
    reuse_sandbox_directories: bool = True
    sandbox_mount_pairs: tuple[str, ...] = ()
    tracing: str = "never"
    remote: object | None = None   # buildpy.remote.execution.RemoteOptions, when enabled
    status: StatusOptions = StatusOptions()   # --stamp, --workspace_status_command, ...
    explain: Path | None = None     # --explain: why each action of the build ran
    profile: Path | None = None     # --profile: a Chrome trace of the command
    build_event_json_file: Path | None = None   # --build_event_json_file: BEP as JSON lines
    publish_all_actions: bool = False   # --build_event_publish_all_actions
    analysis_server: str = "auto"   # keep the analysis in a server: yes, no, auto
    max_idle_secs: int = 3 * 3600   # how long the analysis server waits for a request


def said(text: str) -> str:
    """A line of bp's to the user: INFO, unless it is a WARNING already."""
    return (text if text.startswith("WARNING: ") else f"INFO: {text}") + "\n"


class WorkspaceLock:
    """One bp command at a time per workspace: others wait (or fail).

    The lock file itself is never removed (not even by `bp clean --expunge`): a bp
    waiting on it would otherwise hold a lock on a file nobody else opens. It names the
    last holder (`previous`, as found when the lock was taken): a process that finds
    its own pid there knows that no other bp held the lock since it released it.
    """

    def __init__(self, path: Path, block: bool, say: Callable[[str], None]):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a+", errors="replace")   # (a damaged one is read too)
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
        try:
            self.handle.seek(0)
            self.previous = self.handle.read().strip()
            self.handle.seek(0)
            self.handle.truncate()
            self.handle.write(f"pid {os.getpid()}")
            self.handle.flush()
        except OSError as error:
            try:
                self.release()
            except OSError:   # closing flushes the same write again
                pass
            raise environment_error(error, path) or error from None

    @property
    def held_here_last(self) -> bool:
        """Whether this process held the lock last before taking it now."""
        return self.previous == f"pid {os.getpid()}"

    def release(self) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


class LocalBuild:
    def __init__(self, workspace: Path, repos: Mapping[str, Path], options: ExecutionOptions,
                 err: TextIO = sys.stderr, telemetry: Telemetry | None = None,
                 memory: dict | None = None):
        """`memory`: what a long-lived bp kept from its last build (`memory()`): the
        file digests and completed actions read from the state database, so that it
        need not read them again."""
        self.workspace = workspace
        self.options = options
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.remote = None
        self.err = err
        self.output_base = check_output_base(workspace, self.say)
        self.cache_dir = check_cache_dir(options.disk_cache or default_cache_dir(), self.say)
        state = self.output_base / ".bp-state"
        self.lock = WorkspaceLock(state / "lock", options.block_for_lock, self.say)
        self.cache_use = None
        try:
            self.cache_use = CacheUse(self.cache_dir, self.say)   # no eviction meanwhile
            self.exec_root = exec_root_for(self.cache_dir, workspace)
            prepare_exec_root(self.exec_root, workspace, dict(
                (name, path) for name, path in repos.items() if name), self.output_base)
            # the status files, as source-like inputs under bp-out (ctx.info_file,
            # ctx.version_file): written before any action runs, every build
            write_status(self.output_base, status_contents(options.status, workspace))
            self.processes = ProcessRegistry(state / "running.log")
            if self.processes.reap():
                self.say("killed the actions an interrupted bp left running")
            self.stamp = stamp_at(state / "stamp")
            files_db = self._files_db = open_files_db(self.output_base, self.say)
            memory = memory or {}
            self.digests = FileDigests(files_db, self.exec_root, self.stamp, memory.get("rows"))
            self.cache = open_cache_db(self.cache_dir, self.say)
            self.store = ContentStore(self.cache_dir / "cas", self.cache.use_blob)
            self._strategies: dict[str | None, Strategy] = {}
            self._prepared: _Prepared | None = None
            self._can_trace: bool | None = None
            self._scheduler: Scheduler | None = None
            self._check_mount_pairs()
            self.executor = Executor(self.exec_root, self.digests, self.store, self.cache,
                                     self.strategy_for, options.tracing,
                                     self._traced if options.tracing != "never" else None)
            self.executor.load_done(files_db, memory.get("done"))
            self.executor.telemetry = self.telemetry
        except BaseException:
            if self.cache_use is not None:
                self.cache_use.release()
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

    def use_remote(self, remote) -> None:
        """Look actions up in (and run them on) `remote` too (an executor.Remote)."""
        self.remote = remote
        self.executor.remote = remote
        if hasattr(remote, "telemetry"):
            remote.telemetry = self.telemetry

    def say(self, text: str) -> None:
        """One line to the user: INFO, unless it is a WARNING already."""
        self.err.write(said(text))
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
        return self.strategy(action.mnemonic,
                             local="local" in requirements or "no-sandbox" in requirements)

    def strategy(self, mnemonic: str, local: bool = False) -> Strategy:
        """The strategy for actions of `mnemonic` (`--strategy=MNEMONIC=...`, else
        `--spawn_strategy`); `local` when the target asked to run outside any sandbox."""
        name = "local" if local else self.options.strategies.get(mnemonic,
                                                                 self.options.spawn_strategy)
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
            made, reason = self._linux_sandbox()
            if made is not None:
                return made
            if name is None:
                self.say(sandbox.default_fallback_note(reason))
            else:
                self.say(f"WARNING: {sandbox.fallback_warning(reason)}")
        if name in ("sandboxed", "linux-sandbox", None):
            return sandbox.SandboxedStrategy(base, keep=self.options.sandbox_debug,
                                             registry=self.processes,
                                             reuse=self.options.reuse_sandbox_directories)
        raise UserError(f"unknown strategy '{name}'",
                        hint="choose one of: " + ", ".join(STRATEGIES))

    def _linux_sandbox(self) -> tuple[Strategy | None, str]:
        """linux-sandbox, or None and why bubblewrap cannot run here: made ahead by
        `_prepare` if it began, else now."""
        prepared, self._prepared = self._prepared, None
        done = prepared.result() if prepared is not None else None
        if done is not None:
            return done
        from buildpy.execution import sandbox

        available, reason = sandbox.LinuxSandboxStrategy.available()
        return (self._new_linux_sandbox(), "") if available else (None, reason)

    def _new_linux_sandbox(self) -> Strategy:
        from buildpy.execution import sandbox

        return sandbox.LinuxSandboxStrategy(   # mount pairs were checked up front
            self.cache_dir / "sandbox", keep=self.options.sandbox_debug,
            mount_pairs=self.options.sandbox_mount_pairs, registry=self.processes,
            reuse=self.options.reuse_sandbox_directories)

    def _prepare(self) -> None:
        """Make the default strategy (linux-sandbox) while bp looks at what is up to
        date, in case an action runs (_Prepared)."""
        if self.options.spawn_strategy not in (None, "linux-sandbox") or \
                self.remote is not None or self._prepared is not None or \
                self._strategies.get(self.options.spawn_strategy) is not None:
            return
        try:
            made = self._new_linux_sandbox()
        except (OSError, ValueError):
            return   # (made again when needed, where it fails for real)
        self._prepared = _Prepared(made)

    def run(self, graph: ActionGraph, wanted: list[str], progress: Progress,
            feed: Feed | None = None, *, jobs: int | None = None,
            retry: Callable[[Outcome], bool] | None = None,
            settled: Settled | Unmoved | None = None) -> BuildReport:
        """Build `wanted` (and what `feed` adds to the graph and wants while it runs),
        `jobs` at a time (default --jobs); `retry` as the Scheduler's. With `settled`
        (a long-lived bp's Settled, or what the last build's proof still says), the
        actions it knows to be up to date are not looked at, and it learns what this
        build leaves up to date."""
        self._prepare()
        if feed is not None:   # (a graph still growing: not one settled knows)
            settled = None
        known = settled.up_to_date(graph.actions, self.workspace, self.executor) \
            if settled is not None else None
        durations = self.cache.durations(None if feed is not None else (
            (a.owner_label, a.mnemonic) for i, a in enumerate(graph.actions)
            if not known or i not in known))   # (for the order of what may run)
        scheduler = Scheduler(graph, self.executor, jobs or self.options.jobs,
                              self.options.keep_going, progress, durations, retry,
                              self.telemetry, known)
        self._scheduler = scheduler
        try:
            report = scheduler.run(wanted, feed)
            if settled is not None:
                settled.learn(graph.actions, report, self.executor)
            self.telemetry.counted(report)
            if report.ok:   # what the command asked for is here, even if built remotely
                self.executor.fetch(scheduler.wanted)
            return report
        finally:
            self.digests.flush()
            self.executor.flush_done()
            self.cache.flush()

    def prove(self) -> Proof | None:
        """After a run that succeeded: the proof that all it needed is up to date
        (lastbuild.py), for the same command to check next time; None where there is
        none (a remote build's outputs may be elsewhere)."""
        if self.remote is not None or self._scheduler is None:
            return None
        return lastbuild.prove(self._scheduler.needed_actions(), self.executor,
                               self.output_base / ".bp-state" / "lastbuild-stamp")

    def memory(self) -> dict:
        """What a long-lived bp keeps for its next build (`memory` of the next one)."""
        return {"rows": self.digests.rows, "done": self.executor.keep_done()}

    def close(self) -> None:
        try:
            if self.remote is not None:
                self.remote.close()   # waits for the uploads of local results
            self.cache.flush()
            if self._prepared is not None:   # (made, never used)
                self._prepared.close()
            for strategy in self._strategies.values():   # (no action runs any more; a
                strategy.close()                         # strategy's slots end here)
            self.processes.close()
            self._trim_cache()
            if self.options.explain is not None:
                self._explain(self.options.explain)
        finally:
            for db in (self._files_db, self.cache.db):   # (unmapped now, not when garbage
                db.close()                               # is collected: tests build often)
            self.cache_use.release()
            self.lock.release()

    def _explain(self, path: Path) -> None:
        """--explain=FILE: why each action this build ran or took from a cache."""
        from buildpy.execution.explain import describe, runs

        build = self.executor.runs.build
        lines = describe([r for r in runs(self._files_db) if r.build == build], build)
        try:
            path.write_text("".join(line + "\n" for line in lines))
        except OSError as error:
            self.say(f"WARNING: could not write --explain file {path}: {error.strerror}")

    def _trim_cache(self) -> None:
        """Keep the cache within --disk_cache_max_size, when this build stored new blobs
        and no other build uses the cache (else a later build does it)."""
        max_size = self.options.disk_cache_max_size
        if not (max_size and self.cache.added and needs_eviction(self.cache.db, max_size)):
            return
        if not self.cache_use.try_exclusive():
            return
        try:
            done = evict(self.cache.db, self.store.root, max_size, keep=self.cache.used)
        except (OSError, sqlite3.Error, EnvError) as error:   # the build is done: say, go on
            self.say(f"WARNING: could not trim the disk cache {self.cache_dir}: "
                     f"{getattr(error, 'message', error)}")
            return
        if done.blobs:
            self.say(f"trimmed the disk cache to {format_size(done.total)} (removed "
                     f"{done.blobs} least recently used blobs, {format_size(done.freed)}, "
                     f"and {done.entries} action cache entries)")


def clean(workspace: Path, expunge: bool, cache_dir: Path | None, block: bool = True,
          say: Callable[[str], None] = lambda text: None) -> list[Path]:
    """Remove the outputs (and with `expunge`, the fetched external repositories, the
    workspace's state and exec root), holding the workspace lock, which waits for (or
    with `block` False, fails on) a running bp command. The lock file stays, so a bp
    that waits for it still excludes the next one."""
    removed = []
    output_base = workspace / "bp-out"
    state = output_base / ".bp-state"
    if not output_base.exists():
        _unlink_convenience_links(workspace)
        return removed
    check_output_base(workspace, say)
    lock = WorkspaceLock(state / "lock", block, say)
    try:
        _unlink_convenience_links(workspace)
        for entry in output_base.iterdir():
            if entry == state or (entry.name == "external" and not expunge):
                continue   # fetched repositories stay, as in Bazel
            remove(os.fspath(entry))
        removed.append(output_base)
        if expunge:
            for entry in state.iterdir():
                if entry.name != "lock":
                    remove(os.fspath(entry))
            root = exec_root_for(cache_dir or default_cache_dir(), workspace)
            shutil.rmtree(root, ignore_errors=True)
            removed.append(root)
    finally:
        lock.release()
    return removed


def trim_cache(cache_dir: Path | None, max_size: int, block: bool,
               say: Callable[[str], None]) -> Eviction:
    """`bp clean --gc`: list the store and evict down to `max_size` now, once no build
    uses the cache (waiting for that, or with `block` False, failing)."""
    cache_dir = check_cache_dir(cache_dir or default_cache_dir(), say)
    try:
        use = CacheUse(cache_dir, say, exclusive=True, block=block)
    except BlockingIOError:
        raise EnvError(f"bp commands are using the disk cache {cache_dir}",
                       hint="wait for them, or drop --noblock_for_lock to wait "
                            "automatically") from None
    try:
        cache = open_cache_db(cache_dir, say)
        try:
            return evict(cache.db, cache_dir / "cas", max_size, rescan=True)
        finally:
            cache.db.close()
    finally:
        use.release()


def _unlink_convenience_links(workspace: Path) -> None:
    for link in (workspace / "bp-bin",):
        if link.is_symlink():
            link.unlink()


class _Prepared:
    """linux-sandbox made ahead of the first action: its first slot starts at once, and
    bubblewrap is probed in a thread. Both are about 30 ms of waiting for other
    processes, which the first action would otherwise wait for. (The slot starts in the
    caller's thread: bubblewrap dies with the thread that started it.)"""

    def __init__(self, made: Strategy):
        self.made = made
        try:
            made.prestart()
        except OSError:
            pass   # (the probe says why)
        self._available: bool | None = None   # (None: the probe itself failed)
        self._reason = ""
        self._thread = threading.Thread(target=self._probe, name="bp-probe", daemon=True)
        self._thread.start()

    def _probe(self) -> None:
        from buildpy.execution import sandbox

        self._available, self._reason = sandbox.LinuxSandboxStrategy.available()

    def result(self) -> tuple[Strategy | None, str] | None:
        """The strategy, or None and why bubblewrap cannot run here; None when the
        probe failed."""
        self._thread.join()
        if self._available:
            return self.made, ""
        self.made.close()
        return (None, self._reason) if self._available is not None else None

    def close(self) -> None:
        """Never used: its slot ends."""
        self._thread.join()
        self.made.close()
