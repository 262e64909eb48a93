"""Runs one action with the cache: key from input contents, hit -> restore, miss -> run.

Knows actions, digests, the content store, the action cache and the strategies; not
the order of actions (the scheduler's job) nor how they were made (analysis).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Protocol

from buildpy.core.errors import BpError, environment_error
from buildpy.actions.graph import RUNFILES_MANIFEST, Action, ActionKind
from buildpy.actions.tests import TEST_MNEMONIC   # a test run keeps its logs when it fails
from buildpy.execution.cas import ContentStore, CorruptBlob
from buildpy.execution.digests import FileDigests, FileInfo
from buildpy.execution.execroot import build_runfiles, kept_link
from buildpy.execution.explain import RunLog, differences, last_build, manifest
from buildpy.execution.lastbuild import tool_path
from buildpy.execution.outputs import Outputs
from buildpy.execution.spawn import Running, Spawn, SpawnResult, Strategy, cannot_start
from buildpy.execution.state import ActionCache, CacheEntry, RowsAsAsked
from buildpy.execution.status import VOLATILE, volatile_key

if TYPE_CHECKING:
    from buildpy.actions.key import FileDigest

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class Pending:
    """An action whose process is running: what `Executor.complete` needs after it."""

    action: Action
    key: str
    inputs: Mapping[str, FileInfo]
    started: float
    strategy: str
    warnings: list[str]
    running: Running | None = None
    remote: tuple | None = None   # (Action message, files, sources) when remote is on


@dataclass(frozen=True)
class Outcome:
    """What happened to one action."""

    action: Action
    key: str
    cached: bool
    ok: bool
    outputs: Mapping[str, FileInfo]
    result: SpawnResult | None = None
    error: str | None = None            # why it failed, when it did
    warnings: tuple[str, ...] = ()
    environment: str | None = None      # the machine's fault (a full disk): what to do
    source: str = ""    # where the result came from: local-cache, remote-cache, remote, local
    remote_error: bool = False          # failed for the remote side's reason (exit 34)


class Remote(Protocol):
    """A remote cache, and maybe a remote executor (buildpy/remote implements it)."""

    def caches(self, action: Action) -> bool: ...
    def executes(self, action: Action) -> bool: ...
    def lookup(self, action: Action, message) -> SpawnResult | None: ...
    def start(self, action: Action, message, files: Mapping, sources: Mapping[str, str],
              fallback: Callable[[threading.Event], SpawnResult],
              look_up: bool = True) -> Running: ...
    def upload_result(self, action: Action, message, files: Mapping,
                      sources: Mapping[str, str], outputs: Mapping[str, tuple[str, int, bool]],
                      trees: Mapping[str, bytes], links: Mapping[str, str],
                      result: SpawnResult) -> None: ...
    def fetch(self, files: Mapping[str, tuple[str, int, bool]]) -> None: ...


_FEW = 200   # completions read one by one before all are read at once


class _Completions(RowsAsAsked):
    """What completed in earlier builds of this workspace: an action's first output ->
    (its fingerprint, its outputs' digests), from the state database's `done` table,
    read as asked for. `rows`: all of them, kept by a long-lived bp. (The readers are
    the module's functions: bound methods held by the object would be a cycle.)"""

    def __init__(self, db, rows: dict[str, tuple[str, dict]] | None = None):
        super().__init__(functools.partial(_completion, db),
                         functools.partial(_completions, db), _FEW,
                         {} if db is None and rows is None else rows)


def _completion(db, output: str) -> tuple[str, dict] | None:
    found = db.execute("SELECT fingerprint, outputs FROM done WHERE output = ?",
                       (output,)).fetchone()
    return (found[0], json.loads(found[1])) if found is not None else None


def _completions(db) -> dict[str, tuple[str, dict]]:
    rows = db.execute("SELECT output, fingerprint, outputs FROM done").fetchall()
    outputs = json.loads("[" + ",".join(row[2] for row in rows) + "]")   # one parse
    return {row[0]: (row[1], outs) for row, outs in zip(rows, outputs)}


class InProcess:
    """An in-process action (a file written, a runfiles tree linked) run on the
    executor's worker thread while the scheduler goes on, awaited like a process:
    `fileno()` is readable once it is done. What it does is system calls on its own
    outputs (a thread waiting in one does not hold the interpreter): nothing else writes
    them, and what reads them waits for it (the scheduler starts an action's dependents
    when it completes). It holds none of the --jobs slots (see the scheduler)."""

    def __init__(self, worker: ThreadPoolExecutor, run: Callable[[], None]):
        self._done = os.eventfd(0, os.EFD_CLOEXEC)
        self._future = worker.submit(self._run, run)

    def _run(self, run: Callable[[], None]) -> None:
        try:
            run()
        finally:
            os.eventfd_write(self._done, 1)

    def fileno(self) -> int:
        return self._done

    def exited(self) -> bool:
        return self._future.done()

    def overdue(self, now: float) -> bool:
        return False

    def kill_for_timeout(self) -> None:
        pass

    def finish(self) -> SpawnResult:
        """Once done (`Executor.complete` takes what it raised from `error()`)."""
        self._future.exception()
        os.close(self._done)
        return _DONE_IN_PROCESS

    def error(self) -> OSError | None:
        """The OSError it raised (anything else is bp's fault, and raised here)."""
        error = self._future.exception()
        if error is None or isinstance(error, OSError):
            return error
        raise error

    def abandon(self) -> None:
        """The build is stopping: not started, it never will; started, it is waited for
        (a thread cannot be stopped; it leaves its outputs whole, or not yet marked made:
        a tree's MANIFEST comes last)."""
        if not self._future.cancel():
            self._future.exception()
        os.close(self._done)


_DONE_IN_PROCESS = SpawnResult(0)


class Executor:
    def __init__(self, exec_root: Path, digests: FileDigests, store: ContentStore,
                 cache: ActionCache, choose: Callable[[Action], Strategy],
                 tracing: str = "never", traced: Callable[[Spawn], Running] | None = None,
                 remote: Remote | None = None):
        self.exec_root = exec_root
        self.digests = digests
        self.store = store
        self.cache = cache
        self.choose = choose
        self.tracing = tracing
        self.traced = traced   # starts a spawn under strace (--tracing=warn|error)
        self.remote = remote
        self.remote_only: dict[str, tuple[str, int, bool]] = {}   # outputs left remote
        self._db = None
        self.runs: RunLog | None = None   # each action's last run and why (bp why)
        self._done = _Completions(None)   # first output -> last completion
        self._done_dirty: dict[str, tuple[str, dict]] = {}
        self._fingerprints: dict[str, tuple] = {}   # first output -> (inputs, fingerprint)
        self.outputs = Outputs(exec_root, digests, store)
        self._resolved: dict[str, str] = {}         # real paths of runfiles' directories
        #                                             (the worker's: it makes the trees)
        self._worker: ThreadPoolExecutor | None = None   # runs the in-process actions
        self._tools: dict = {}   # absolute program, or (program, PATH) -> tools()
        self._exec_root_prefix = os.path.realpath(exec_root) + os.sep
        self.skip_lookup: frozenset[str] = frozenset()   # mnemonics run again, not looked
        #                                                  up (--nocache_test_results)
        self.telemetry = None   # a telemetry.Telemetry told of the steps of each action

    def looks_up(self, action: Action) -> bool:
        """Whether an earlier result of the action may stand for running it: not for the
        mnemonics in `skip_lookup`, nor for an uncacheable test (tagged external)."""
        return action.mnemonic not in self.skip_lookup and (
            action.cacheable or action.mnemonic != TEST_MNEMONIC)

    # ---- the fast path: nothing changed since this action last completed here -----

    def load_done(self, db, kept: dict | None = None) -> None:
        """Read what completed in earlier builds of this workspace (the fast path), or
        take what a long-lived bp `kept` of it, if no other bp built since (each record
        is checked against the action's inputs and its outputs on disk either way)."""
        self._db = db
        self.previous_build = last_build(db)   # (the build before this one, by any bp)
        self.runs = RunLog(db)
        same = kept is not None and kept.get("build") == self.previous_build
        self._done = _Completions(db, kept["done"] if same else None)

    def keep_done(self) -> dict:
        """What `load_done(kept=...)` takes in a long-lived bp's next build."""
        return {"build": self.runs.build if self.runs is not None else None,
                "done": self._done.rows}

    def fingerprint(self, action: Action, inputs: Mapping[str, FileInfo]) -> str:
        """What the action key covers, hashed cheaply (no REAPI messages): the action's
        definition (its one description, digested in analysis), its environment, the
        identities of its tools, and its inputs' digests."""
        env = self.environment(action)
        digest = hashlib.sha256(f"{action.definition}{env!r}{self.tools(action, env)!r}"
                                .encode())
        for path in sorted(inputs):
            info = inputs[path]
            sha = info.sha256
            if path == VOLATILE:
                sha = volatile_key(sha) or sha
            digest.update(f"\0{path}\0{sha}\0{int(info.executable)}".encode())
            if info.link is not None:
                digest.update(b"\0link")
        return digest.hexdigest()

    def tools(self, action: Action, env: tuple[tuple[str, str], ...] | None = None
              ) -> tuple[tuple[str, str], ...]:
        """The program an action runs, when bp did not build it (a compiler found on
        PATH, /bin/bash): its real absolute path and content digest, so that a new
        compiler, or another machine's, never reuses this one's outputs. Resolved once
        per program and PATH in a build; digests come from the stat-checked cache."""
        if action.kind is not ActionKind.RUN or not action.argv:
            return ()
        program = action.argv[0]
        if program.startswith("/"):
            key = program   # an absolute path: PATH plays no part
        elif "/" in program:
            return ()       # a file of the exec root: an input, already in the key
        else:
            env = self.environment(action) if env is None else env
            key = (program, next((v for k, v in env if k == "PATH"), DEFAULT_PATH))
        return self.tools_for(key)

    def _identity(self, key: str | tuple[str, str]) -> tuple[tuple[str, str], ...]:
        """A tool's real path and digest, by its absolute path or (name, PATH)."""
        real = tool_path(key, self._exec_root_prefix)
        if real is None:
            return ()
        try:
            return ((real, self.digests.digest(real).sha256),)
        except OSError:
            return ()   # it will fail to start, and say so

    @property
    def tool_identities(self) -> dict:
        """The tools this build resolved, for `tools_changed` in a later build."""
        return dict(self._tools)

    def tools_changed(self, identities: Mapping) -> bool:
        """Whether a tool an earlier build resolved is now another program or file."""
        return any(self.tools_for(key) != known for key, known in identities.items())

    def tools_for(self, key: str | tuple[str, str]) -> tuple[tuple[str, str], ...]:
        known = self._tools.get(key)
        if known is None:
            known = self._tools[key] = self._identity(key)
        return known

    def settled(self, actions: Iterable[Action]) -> None:
        """The actions are up to date, known without looking (a long-lived bp)."""
        if self.runs is not None:
            self.runs.unchanged(actions)

    def up_to_date(self, action: Action, inputs: Mapping[str, FileInfo]
                   ) -> dict[str, FileInfo] | None:
        """The outputs, when the action completed before with these very inputs and its
        outputs are still as it left them; otherwise None."""
        record = self._done.get(action.outputs[0])
        if record is None or not self.looks_up(action):
            return None
        fingerprint = self.fingerprint(action, inputs)
        if record[0] != fingerprint:
            self._fingerprints[action.outputs[0]] = (inputs, fingerprint)   # for later
            return None
        outputs = {}
        links = action.output_symlinks
        for path, sha in record[1].items():
            try:
                info = self.digests.link(path) if links and path in links else \
                    self.digests.digest(path)
            except OSError:
                return None
            if info.sha256 != sha:
                return None
            outputs[path] = info
        if self.runs is not None:
            self.runs.unchanged((action,))   # (bp log lists it as up to date)
        return outputs

    def recorded_outputs(self, action: Action) -> Mapping[str, str]:
        """The outputs' digests (path -> SHA-256) the action's last completion left, as
        the up-to-date check compares them; empty when there is none."""
        record = self._done.get(action.outputs[0])
        return record[1] if record is not None else {}

    def _remember_done(self, action: Action, inputs: Mapping[str, FileInfo],
                       outputs: Mapping[str, FileInfo]) -> None:
        if self._db is None:
            return
        known = self._fingerprints.pop(action.outputs[0], None)
        fingerprint = known[1] if known is not None and known[0] is inputs else \
            self.fingerprint(action, inputs)
        entry = (fingerprint, {p: i.sha256 for p, i in outputs.items()})
        self._done[action.outputs[0]] = entry
        self._done_dirty[action.outputs[0]] = entry

    def flush_done(self) -> None:
        if self.runs is not None:
            self.runs.flush()
        if not self._done_dirty:
            return
        rows = [(o, f, json.dumps(outs)) for o, (f, outs) in self._done_dirty.items()]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO done VALUES (?, ?, ?)", rows)
        self._done_dirty.clear()

    def environment(self, action: Action) -> tuple[tuple[str, str], ...]:
        env = dict(action.env)
        if "PATH" not in env:
            env["PATH"] = os.environ.get("PATH", DEFAULT_PATH) \
                if action.use_default_shell_env else DEFAULT_PATH
        return tuple(sorted(env.items()))

    def key(self, action: Action, inputs: Mapping[str, FileInfo]) -> str:
        # the REAPI messages (protobuf) load only once an action needs its key: a build
        # with nothing to run goes without them
        from buildpy.actions.key import FileDigest, action_key

        files = self.key_files(inputs)[0]
        stands_for = volatile_key(files[VOLATILE].hash) if VOLATILE in files else None
        if stands_for is not None:   # as in Bazel, a change of the stamped volatile
            #                          status file alone does not run its readers again
            files[VOLATILE] = FileDigest(stands_for, 0)   # (a remote key has it as it is)
        return action_key(action, files, self.tools(action))

    def key_files(self, inputs: Mapping[str, FileInfo]
                  ) -> tuple[dict[str, FileDigest | None], dict[str, str]]:
        """The files of the action's input root, by path (FileDigest; None for an empty
        directory), and where those that are not at their path in the exec root are read
        from. A directory input (a tree artifact) is laid out file by file. A runfiles
        tree whose MANIFEST is an input is laid out as the process sees it (its files at
        `<x>.runfiles/<runfiles path>`), in place of the MANIFEST, whose absolute paths
        name this machine's directories: the key is the same in another checkout, and a
        remote input root holds the whole tree."""
        from buildpy.actions.key import FileDigest

        files: dict = {}
        sources: dict[str, str] = {}
        for path, info in inputs.items():
            if path.endswith(".runfiles/MANIFEST"):
                self._lay_out(path[:-len("/MANIFEST")], files, sources, runfiles=True)
            elif info.directory:
                self._lay_out(path, files, sources, runfiles=False)
            else:
                files[path] = FileDigest(info.sha256, info.size, info.executable, info.link)
        return files, sources

    def _lay_out(self, tree: str, files: dict, sources: dict[str, str], runfiles: bool
                 ) -> None:
        """The files below the exec root's directory `tree`, by exec path, and its empty
        directories (None). A runfiles tree's files are links, followed to what they
        name (`sources`); its MANIFEST stays out."""
        from buildpy.actions.key import FileDigest

        top = os.path.join(self.exec_root, tree)
        for directory, subdirectories, names in os.walk(top, followlinks=runfiles):
            where = tree if directory == top else \
                f"{tree}/{os.path.relpath(directory, top)}"
            if not names and not subdirectories and directory != top:
                files[where] = None
            for name in names:
                if runfiles and directory == top and name == "MANIFEST":
                    continue
                full = os.path.join(directory, name)
                if runfiles and kept_link(full):   # a declared symlink, as it is
                    link = FileInfo.of_link(os.readlink(full))
                    files[f"{where}/{name}"] = FileDigest(link.sha256, link.size,
                                                          link=link.link)
                    continue
                if runfiles:
                    target = os.path.realpath(full)
                    found = self.digests.digest(target)
                    sources[f"{where}/{name}"] = target
                else:
                    found = self.digests.digest(f"{where}/{name}")
                files[f"{where}/{name}"] = FileDigest(found.sha256, found.size,
                                                      found.executable)

    def begin(self, action: Action, inputs: Mapping[str, FileInfo]) -> Outcome | Pending:
        """Restore the action from the cache, or start it: an in-process kind on the
        worker thread (`InProcess`), a process (the caller waits for either, then calls
        `complete`)."""
        action = action.with_env(self.environment(action))
        remote = None
        if self.remote is not None and action.kind is ActionKind.RUN:
            remote = self._remote_action(action, inputs)   # (message, files, sources)
            key = hashlib.sha256(remote[0].SerializeToString(deterministic=True)).hexdigest()
        else:
            key = self.key(action, inputs)
        started = time.monotonic()
        entry = self.cache.get(key) if self.looks_up(action) else None
        self._step(action, "action cache lookup", started)
        warnings: list[str] = []
        if entry is not None and entry.exit_code == 0:
            try:
                started = time.monotonic()
                outputs = self.outputs.restore(entry.outputs)
                printed = SpawnResult(0, self._printed(entry.stdout),
                                      self._printed(entry.stderr))
                self._step(action, "restore outputs", started)
                self._remember_done(action, inputs, outputs)
                self._log(action, inputs, "local-cache", 0.0, executed=False)
                return Outcome(action, key, True, True, outputs, printed,
                               source="local-cache")
            except FileNotFoundError:   # a blob evicted (or removed): a plain miss
                self.cache.drop(key)
            except (CorruptBlob, ValueError) as error:
                warnings.append(f"cache entry of {action.mnemonic} for '{action.owner_label}' "
                                f"was damaged ({type(error).__name__}); running it again")
                self.cache.drop(key)
        pending = Pending(action, key, inputs, time.monotonic(), "local", warnings,
                          remote=remote)
        if action.kind is not ActionKind.RUNFILES:   # (a tree compares its own MANIFEST)
            self.outputs.prepare(action)
        if remote is not None:
            step = self._begin_remote(pending)
            if step is not None:
                return step
        if self.remote_only:   # it runs here: what stayed remote comes first
            started = time.monotonic()
            self.fetch(action.all_inputs)
            self._step(action, "download inputs", started)
        if action.kind is not ActionKind.RUN:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(1, thread_name_prefix="bp-in-process")
            pending.running = InProcess(self._worker, functools.partial(
                self._run_in_process, action, inputs))
            return pending
        spawn = self._spawn(action, inputs)
        strategy = self.choose(action)
        pending.strategy = strategy.name
        start = self.traced if self.traced is not None else strategy.start
        try:
            pending.running = start(spawn)
        except OSError as error:
            return self.complete(pending, cannot_start(list(spawn.argv), error))
        return pending

    # ---- remote ----------------------------------------------------------------------

    def _begin_remote(self, pending: Pending) -> Outcome | Pending | None:
        """The action started remotely (its remote cache lookup first, in the same
        background work), or the remote cache's result; None when it runs here (the
        remote side does not execute it, and has no result for it)."""
        action, remote = pending.action, self.remote
        message, files, sources = pending.remote
        if remote.executes(action):
            spawn = self._spawn(action, pending.inputs)
            pending.strategy = "remote"
            pending.running = remote.start(
                action, message, files, sources,
                lambda cancel: self.choose(action).run(spawn, cancel),
                look_up=self.looks_up(action))
            return pending
        if not (self.looks_up(action) and remote.caches(action)):
            return None
        try:
            started = time.monotonic()
            hit = remote.lookup(action, message)
            self._step(action, "remote cache lookup", started)
        except BpError as error:   # the server failed: fall back, or fail the action
            if not getattr(remote, "local_fallback", False):
                return self._failed(pending, None, error.message, remote=True)
            hit = None
        return self.complete(pending, hit) if hit is not None else None

    def fetch(self, paths) -> None:
        """Download those of `paths` that stayed remote (--remote_download_minimal)."""
        if not self.remote_only:
            return
        wanted = {p: self.remote_only[p] for p in paths if p in self.remote_only}
        if wanted:
            self.remote.fetch(wanted)
            for path in wanted:
                del self.remote_only[path]

    def _remote_action(self, action: Action, inputs: Mapping[str, FileInfo]) -> tuple:
        """The REAPI Action message of `action` (its digest is the key), its input files
        and where those not at their exec path are read from."""
        from buildpy.actions.key import action_message

        files, sources = self.key_files(inputs)
        return action_message(action, files, self.tools(action)), files, sources

    def _made_executable(self, action: Action, remote: dict) -> dict:
        """Make the outputs of a RUN action that makes a target's executable executable
        (as Bazel makes every output): the files here, and those left on the server."""
        for path in action.outputs:
            full = os.path.join(self.exec_root, path)
            if path not in remote and os.path.isfile(full) and not os.path.islink(full):
                os.chmod(full, os.stat(full).st_mode | 0o111)
        return {path: (sha, size, True) for path, (sha, size, _) in remote.items()}

    def _upload_result(self, pending: Pending, entries, result: SpawnResult | None) -> None:
        """Give a local run's result to the remote cache (--remote_upload_local_results)."""
        if pending.remote is None or result is None or pending.strategy.startswith("remote"):
            return
        message, files, sources = pending.remote
        outputs = {e.path: (e.sha256, e.size, e.executable) for e in entries
                   if not e.is_directory and not e.is_symlink}
        trees = {e.path: self.store.get_bytes(e.sha256) for e in entries if e.is_directory}
        links = {e.path: os.fsdecode(self.store.get_bytes(e.sha256)) for e in entries
                 if e.is_symlink}
        self.remote.upload_result(pending.action, message, files, sources, outputs, trees,
                                  links, result)

    def _spawn(self, action: Action, inputs: Mapping[str, FileInfo]) -> Spawn:
        return Spawn(argv=action.argv, env=dict(action.env), exec_root=self.exec_root,
                     inputs=action.all_inputs + runfiles_trees(action.all_inputs),
                     outputs=action.outputs, timeout=action.timeout,
                     output_directories=action.output_directories,
                     input_symlinks=tuple(p for p, i in inputs.items() if i.link is not None),
                     output_symlinks=action.output_symlinks,
                     label=action.owner_label, mnemonic=action.mnemonic,
                     requires_network="requires-network" in dict(
                         action.execution_requirements))

    def complete(self, pending: Pending, result: SpawnResult | None) -> Outcome:
        """Check and store what the action made (for an in-process kind, `result` is
        what `InProcess.finish` gave). A failed action keeps none of its outputs, as in
        Bazel."""
        action, key, warnings = pending.action, pending.key, pending.warnings
        duration = time.monotonic() - pending.started
        if isinstance(pending.running, InProcess):
            error = pending.running.error()
            if error is not None:
                return self._failed(pending, None, f"could not write its output: {error}",
                                    cause=error)
            result = None
        if result is not None and result.remote_hit:
            pending.strategy = "remote-cache"
        hit = pending.strategy == "remote-cache"
        source = pending.strategy if pending.strategy.startswith("remote") else "local"
        if result is not None and result.remote_error:
            return self._failed(pending, result, result.error, remote=True)
        if result is not None and result.exit_code != 0:
            reason = "timed out" if result.timed_out else f"exit code {result.exit_code}"
            return self._failed(pending, result, reason, list(result.notes))
        if result is not None and result.error is not None:
            return self._failed(pending, result, result.error, list(result.notes))
        if result is not None and result.undeclared_reads:
            message = (f"{action.mnemonic} of '{action.owner_label}' read files it does not "
                       f"declare: {', '.join(result.undeclared_reads)}")
            if self.tracing == "error":
                return self._failed(pending, result, message + " (--tracing=error); add "
                                    "them (or the targets that generate them) to the "
                                    "rule's srcs, deps or data")
            warnings.append(message)
        remote = dict(result.remote_outputs) if result is not None else {}
        if action.kind is ActionKind.RUN and action.is_executable:
            remote = self._made_executable(action, remote)
        try:
            started = time.monotonic()
            outputs, entries, problems = self.outputs.store_all(action, skip=remote)
            self._step(action, "store outputs", started)
        except OSError as error:   # a full disk, a cache removed under the build
            return self._failed(pending, result, f"could not store its outputs: {error}",
                                cause=error)
        if problems:
            return self._failed(pending, result, "; ".join(problems))
        if remote:   # left on the server: no local cache entry, no up-to-date record
            self.remote_only.update(remote)
            outputs.update((path, FileInfo(sha, size, executable))
                           for path, (sha, size, executable) in remote.items())
            notes = tuple(warnings + list(result.notes))
            return Outcome(action, key, hit, True, outputs, result, None, notes,
                           source=source)
        if action.cacheable:
            self.cache.put(key, CacheEntry(entries, 0, self._keep(result, "stdout"),
                                           self._keep(result, "stderr")))
            self._upload_result(pending, entries, result)
        self._record(action, key, pending.inputs, outputs, duration, pending.strategy, hit)
        self._remember_done(action, pending.inputs, outputs)
        self._log(action, pending.inputs, pending.strategy, duration, executed=not hit)
        notes = tuple(warnings + (list(result.notes) if result else []))
        return Outcome(action, key, hit, True, outputs, result, None, notes, source=source)

    def _step(self, action: Action, name: str, started: float) -> None:
        if self.telemetry is not None:
            self.telemetry.step(action, name, started)

    def abandon(self, pending: Pending) -> None:
        """The build is stopping: kill the action and remove what it wrote so far."""
        if pending.running is not None:
            pending.running.abandon()
        self._discard_outputs(pending.action)

    def _failed(self, pending: Pending, result: SpawnResult | None, reason: str,
                notes: list[str] = (), cause: OSError | None = None,
                remote: bool = False) -> Outcome:
        """The outcome of a failed action, whose outputs are removed (none half-written
        stays at its final path); `cause` tells whether the machine is at fault."""
        self._discard_outputs(pending.action)
        self._log(pending.action, pending.inputs, "failed",
                  time.monotonic() - pending.started, executed=True)
        blame = environment_error(cause) if cause is not None else None
        return Outcome(pending.action, pending.key, False, False, {}, result, reason,
                       tuple(pending.warnings + list(notes)),
                       blame.hint if blame is not None else None, remote_error=remote)

    def _discard_outputs(self, action: Action) -> None:
        if action.mnemonic == TEST_MNEMONIC:   # a failed test's logs stay (not cached)
            return
        if action.kind is not ActionKind.RUNFILES:   # a tree compares its own MANIFEST
            self.outputs.clear(action.outputs)

    def _log(self, action: Action, inputs: Mapping[str, FileInfo], how: str,
             duration: float, executed: bool) -> None:
        """Record how the action was satisfied, and why it ran: what changed in its
        manifest since its last run (the same ingredients as its key)."""
        if self.runs is None:
            return
        data = manifest(action, action.env, self.tools(action), inputs)
        if not executed:
            reasons = [f"a cache hit ({how})"]
        else:
            if action.kind is not ActionKind.RUN:
                how = "in-process"   # bp wrote the file itself
            reasons = differences(self.runs.previous(action.outputs[0]), data) or \
                [_miss_reason(action, self.skip_lookup)]
        self.runs.record(action, how, reasons, data, duration)

    def _keep(self, result: SpawnResult | None, stream: str) -> str | None:
        """What the action printed, stored to be shown again on cache hits."""
        data = getattr(result, stream) if result is not None else b""
        return self.store.put_bytes(data) if data else None

    def _printed(self, digest: str | None) -> bytes:
        return self.store.get_bytes(digest) if digest else b""

    # ---- running --------------------------------------------------------------------

    def _run_in_process(self, action: Action, inputs: Mapping[str, FileInfo]) -> None:
        """The kinds bp does itself: write a file, expand a template, copy a file, make a
        symlink, link a runfiles tree."""
        if action.kind is ActionKind.WRITE:
            self._write(action.outputs[0], (action.content or "").encode(),
                        action.is_executable)
        elif action.kind is ActionKind.TEMPLATE:
            text = (self.exec_root / action.inputs[0]).read_text(encoding="utf-8")
            for old, new in action.substitutions:
                text = text.replace(old, new)
            self._write(action.outputs[0], text.encode(), action.is_executable)
        elif action.kind is ActionKind.RUNFILES:
            tree = self.exec_root / os.path.dirname(action.outputs[0])
            build_runfiles(tree, self.exec_root, action.inputs, action.content or "__main__",
                           self._resolved, action.substitutions,
                           {p: i.link for p, i in inputs.items() if i.link is not None})
        elif action.output_symlinks:   # ctx.actions.symlink(target_path = ...)
            os.symlink(action.target, self.exec_root / action.outputs[0])
        elif action.kind is ActionKind.SYMLINK:
            data = (self.exec_root / (action.target or action.inputs[0])).read_bytes()
            self._write(action.outputs[0], data, True if action.is_executable else
                        os.access(self.exec_root / action.inputs[0], os.X_OK))

    def _write(self, path: str, data: bytes, executable: bool) -> None:
        target = self.exec_root / path
        tmp = target.with_name(f".{target.name}.bp-tmp")
        tmp.write_bytes(data)
        os.chmod(tmp, 0o755 if executable else 0o644)
        os.replace(tmp, target)

    def _record(self, action: Action, key: str, inputs: Mapping[str, FileInfo],
                outputs: Mapping[str, FileInfo], duration: float, strategy: str,
                cached: bool) -> None:
        self.cache.record(key, action.owner_label, action.mnemonic, action.outputs[0],
                          {p: i.sha256 for p, i in inputs.items()},
                          {p: i.sha256 for p, i in outputs.items()}, duration, strategy,
                          cached)


def _miss_reason(action: Action, skip_lookup: frozenset[str]) -> str:
    """Why an action ran when nothing it depends on changed since its last run."""
    if not action.cacheable:
        return "it is tagged no-cache: it runs every time"
    if action.mnemonic in skip_lookup:
        return "--nocache_test_results: tests run again"
    return ("nothing it depends on changed since its last run, but its cache entry was "
            "missing (evicted by the disk cache's size bound, or never stored)")


def runfiles_trees(inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The runfiles trees whose MANIFEST is among `inputs`: the process gets the tree
    (`<x>.runfiles/`), which the MANIFEST stands for in the action's inputs."""
    return tuple(p[:-len("/MANIFEST")] for p in inputs if p.endswith(RUNFILES_MANIFEST))
