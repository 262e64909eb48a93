"""Remote caching and execution for a build: bp's side of REAPI v2.

`connect()` checks the server's capabilities once; `RemoteBackend` then looks actions
up in the remote action cache, runs them on the remote executor (uploading the input
Merkle tree, streaming Execute, resuming with WaitExecution, cancelling when the build
stops) and uploads the results of local runs. The executor calls it through
`execution.executor.Remote`; it knows REAPI and the exec root, not the scheduler.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping

import grpc
from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi, remote_execution_pb2_grpc as reapi_grpc)
from buildgrid.common.protos.google.longrunning import operations_pb2, operations_pb2_grpc
from buildgrid.common.protos.google.rpc import code_pb2, error_details_pb2

from buildpy.actions.graph import Action, ActionKind
from buildpy.actions.key import InputFiles, command, digest_of, input_root
from buildpy.core.errors import RemoteError, UserError
from buildpy.execution.outputs import remove
from buildpy.execution.spawn import SpawnResult
from buildpy.execution.symlinks import ESCAPE_HINT
from buildpy.execution.trees import decode_tree
from buildpy.remote.cas import EMPTY, Blob, Cas, write_file
from buildpy.remote.channel import Connection, parse_endpoint

SHA256 = reapi.DigestFunction.SHA256


@dataclass(frozen=True)
class RemoteOptions:
    executor: str | None = None          # --remote_executor
    cache: str | None = None             # --remote_cache
    instance: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 60.0
    retries: int = 5
    local_fallback: bool = False
    upload_local_results: bool = True
    accept_cached: bool = True
    tls_certificate: str | None = None
    download_minimal: bool = False       # outputs stay remote unless needed here

    @property
    def enabled(self) -> bool:
        return bool(self.executor or self.cache)


def parse_header(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise UserError(f"invalid --remote_header '{name}=...'" if equals else
                        "invalid --remote_header (no '=')",
                        hint="write --remote_header=NAME=VALUE")
    return name, value


def connect(options: RemoteOptions, exec_root: Path,
            say: Callable[[str], None]) -> "RemoteBackend":
    """A backend for one build, once the server said it speaks SHA-256."""
    flag = "--remote_executor" if options.executor else "--remote_cache"
    endpoint = parse_endpoint(options.executor or options.cache, flag)
    role = "remote executor" if options.executor else "remote cache"
    connection = Connection(endpoint, instance=options.instance, headers=options.headers,
                            tls_certificate=options.tls_certificate, timeout=options.timeout,
                            retries=options.retries, role=role)
    capabilities = reapi_grpc.CapabilitiesStub(connection.channel)
    try:
        answer = connection.call(capabilities.GetCapabilities, reapi.GetCapabilitiesRequest(
            instance_name=options.instance))
    except RemoteError:
        connection.close()
        raise
    offered = list(answer.cache_capabilities.digest_function)
    if SHA256 not in offered:
        connection.close()
        names = ", ".join(reapi.DigestFunction.Value.Name(f) for f in offered) or "none"
        raise RemoteError(f"{role} {endpoint.text} does not offer SHA-256 digests (it offers: "
                          f"{names})", hint="bp hashes with SHA-256; use a server that "
                                            "supports it")
    if options.executor and not answer.execution_capabilities.exec_enabled:
        say(f"WARNING: {endpoint.text} says remote execution is not enabled; actions may "
            "be refused")
    return RemoteBackend(connection, options, exec_root,
                         answer.cache_capabilities.max_batch_total_size_bytes, say)


# The threads that follow remote executions, kept for the next action: starting a thread
# per action costs the scheduler's thread a wait for each. A task never waits for
# another, so more actions in flight than threads only queue.
_FOLLOWERS = ThreadPoolExecutor(max_workers=256, thread_name_prefix="bp-remote")


class RemoteRunning:
    """A remote execution in progress, shaped like spawn.Running for the scheduler: a
    background thread runs it, and a pipe becomes readable when it is done."""

    def __init__(self, work: Callable[["RemoteRunning"], SpawnResult],
                 on_abandon: Callable[["RemoteRunning"], None] = lambda running: None):
        self._read, self._write = os.pipe()
        self.cancelled = threading.Event()
        self.operation: str | None = None
        self.call = None   # the Execute or WaitExecution stream being read
        self._on_abandon = on_abandon
        self.result: SpawnResult | None = None
        self.timed_out = False
        self._done = _FOLLOWERS.submit(self._run, work)

    def _run(self, work) -> None:
        try:
            self.result = work(self)
        except BaseException as error:  # noqa: BLE001 - becomes the action's failure
            message = error.message if isinstance(error, RemoteError) else \
                f"{type(error).__name__}: {error}"
            self.result = SpawnResult(1, b"", b"", error=message, remote_error=True)
        finally:
            try:
                os.write(self._write, b"x")
            except OSError:   # abandoned: nobody waits
                pass

    def fileno(self) -> int:
        return self._read

    def exited(self) -> bool:
        return self.result is not None

    def overdue(self, now: float) -> bool:
        return False   # the executor enforces the action's timeout

    def kill_for_timeout(self) -> None:
        pass

    def finish(self) -> SpawnResult:
        self._done.result()
        self._close()
        return self.result

    def abandon(self) -> None:
        """The build stops: cancel the operation on the server and stop reading."""
        self.cancelled.set()
        self._on_abandon(self)
        if self.call is not None:
            self.call.cancel()
        self._close()

    def _close(self) -> None:
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass
        self._read = self._write = -1


class RemoteBackend:
    """The remote cache (and executor, when there is one) of one build."""

    def __init__(self, connection: Connection, options: RemoteOptions, exec_root: Path,
                 max_batch: int, say: Callable[[str], None]):
        self.connection = connection
        self.options = options
        self.exec_root = exec_root
        self.say = say
        self.cas = Cas(connection, max_batch)
        self.instance = options.instance
        self._cache = reapi_grpc.ActionCacheStub(connection.channel)
        self._execution = reapi_grpc.ExecutionStub(connection.channel)
        self._operations = operations_pb2_grpc.OperationsStub(connection.channel)
        self._present: set[str] = set()     # blob hashes the server is known to hold
        self._lock = threading.Lock()
        self._uploads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bp-upload")
        self._pending: list[Future] = []
        self._running: set[RemoteRunning] = set()
        self.local_fallback = options.local_fallback
        self.down: RemoteError | None = None   # the server failed: later calls fail fast
        self.telemetry = None   # a telemetry.Telemetry told of each action's steps

    # ---- what may go where ------------------------------------------------------------

    @staticmethod
    def _tags(action: Action) -> dict[str, str]:
        return dict(action.execution_requirements)

    def caches(self, action: Action) -> bool:
        tags = self._tags(action)
        return action.kind is ActionKind.RUN and action.cacheable and \
            "no-remote" not in tags and "local" not in tags and "no-remote-cache" not in tags

    def executes(self, action: Action) -> bool:
        tags = self._tags(action)
        return bool(self.options.executor) and action.kind is ActionKind.RUN and \
            not tags.keys() & {"no-remote", "no-remote-exec", "local"}

    # ---- the action cache ------------------------------------------------------------

    def lookup(self, action: Action, message: reapi.Action) -> SpawnResult | None:
        """The cached result of the Action `message`, its outputs written into the exec
        root; None on a miss (or a result whose blobs are gone)."""
        return self.start_lookup(action, message_digest(message))()

    def start_lookup(self, action: Action, digest: reapi.Digest
                     ) -> Callable[[], SpawnResult | None]:
        """`lookup`, its GetActionResult sent now: the function returned waits for the
        answer, and the caller does something else meanwhile."""
        if not (self.options.accept_cached and self.caches(action)):
            return lambda: None
        if self.down is not None:
            raise self.down
        request = reapi.GetActionResultRequest(instance_name=self.instance,
                                               action_digest=digest)
        started = self.connection.start(self._cache.GetActionResult, request)

        def answer() -> SpawnResult | None:
            try:
                result = self.connection.call(self._cache.GetActionResult, request,
                                              raw=True, started=started)
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    return None
                self.down = self.connection.error(error, "GetActionResult")
                raise self.down from None
            if result.exit_code != 0:
                return None
            try:
                return replace(self._download(action, result), remote_hit=True)
            except RemoteError as error:
                if getattr(error, "missing", None) is not None:
                    return None   # evicted since: run it
                raise

        return answer

    # ---- remote execution -----------------------------------------------------------

    def start(self, action: Action, message: reapi.Action, files: InputFiles,
              sources: Mapping[str, str], fallback: Callable[[threading.Event], SpawnResult],
              look_up: bool = True) -> RemoteRunning:
        """Run the action remotely in the background, after asking the remote cache
        (`look_up`), there too: the scheduler goes on meanwhile. With
        --remote_local_fallback, a failure of the remote side runs `fallback` (locally)
        instead."""
        def work(running: RemoteRunning) -> SpawnResult:
            try:
                if self.down is not None:
                    raise self.down
                return self._execute(action, message, files, sources, running, look_up)
            except RemoteError as error:
                if error.message != "cancelled" and self.down is None and \
                        "UNAVAILABLE" in error.message:
                    self.down = error
                if not self.options.local_fallback or running.cancelled.is_set():
                    raise
                self.say(f"WARNING: remote execution of {action.mnemonic} for "
                         f"'{action.owner_label}' failed ({error.message}); running it "
                         "locally (--remote_local_fallback)")
                result = fallback(running.cancelled)
                return result

        return RemoteRunning(work, self._cancel)

    def _execute(self, action: Action, message: reapi.Action, files: InputFiles,
                 sources: Mapping[str, str], running: RemoteRunning, look_up: bool
                 ) -> SpawnResult:
        """The remote cache's result (`look_up`), else the action executed remotely.
        The Command and the Action go up while the cache answers; the inputs only on a
        miss."""
        digest = message_digest(message)
        blobs = self._blobs(action, message, files, sources)
        if look_up:
            started = time.monotonic()
            answer = self.start_lookup(action, digest)
            self._upload(blobs[:2])
            hit = answer()
            self._step(action, "remote cache lookup", started)
            if hit is not None:
                return hit
            started = time.monotonic()
            self._upload(blobs[2:], new=0)
        else:
            started = time.monotonic()
            self._upload(blobs)
        self._step(action, "upload inputs", started)
        request = reapi.ExecuteRequest(instance_name=self.instance, action_digest=digest,
                                       skip_cache_lookup=True)
        started = time.monotonic()
        for attempt in range(2):
            response = self._stream(request, running)
            status = response.status
            if status.code == code_pb2.FAILED_PRECONDITION and attempt == 0:
                missing = _missing_blobs(status)
                if missing:   # the server lost what we sent: send it again, once
                    by_hash = {b.digest.hash: b for b in blobs}
                    self.cas.upload_all(by_hash[h] for h in missing if h in by_hash)
                    continue
            break
        if status.code not in (code_pb2.OK, code_pb2.DEADLINE_EXCEEDED):
            raise RemoteError(f"remote executor {self.connection.endpoint.text}: "
                              f"{action.mnemonic} for '{action.owner_label}' failed: "
                              f"{code_pb2.Code.Name(status.code)}: {status.message}")
        self._step(action, "execute remotely", started)
        started = time.monotonic()
        result = self._download(action, response.result)
        self._step(action, "download outputs", started)
        if status.code == code_pb2.DEADLINE_EXCEEDED:
            return SpawnResult(result.exit_code or 1, result.stdout, result.stderr,
                               timed_out=True)
        return result

    def _stream(self, request: reapi.ExecuteRequest,
                running: RemoteRunning) -> reapi.ExecuteResponse:
        """Execute, following the operation to its end; a broken stream is resumed
        with WaitExecution; a cancelled build cancels the operation."""
        metadata = self.connection.metadata()
        calls = 0
        stream = running.call = self._execution.Execute(request, metadata=metadata)
        while True:
            try:
                for operation in stream:
                    running.operation = operation.name or running.operation
                    if running.cancelled.is_set():
                        self._cancel(running)
                        raise RemoteError("cancelled")
                    if operation.done:
                        if operation.HasField("error"):
                            raise RemoteError(
                                f"remote executor {self.connection.endpoint.text}: "
                                f"{code_pb2.Code.Name(operation.error.code)}: "
                                f"{operation.error.message}")
                        response = reapi.ExecuteResponse()
                        operation.response.Unpack(response)
                        return response
                raise grpc.RpcError()   # the stream ended before the operation did
            except grpc.RpcError as error:
                code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNAVAILABLE
                calls += 1
                if running.cancelled.is_set():
                    self._cancel(running)
                    raise RemoteError("cancelled") from None
                if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN,
                                grpc.StatusCode.DEADLINE_EXCEEDED, None) \
                        or calls > self.options.retries:
                    raise self.connection.error(error, "Execute") from None
                if running.operation is None:   # nothing to resume: start again
                    running.cancelled.wait(min(0.1 * 2 ** calls, 5.0))
                    stream = running.call = self._execution.Execute(request,
                                                                    metadata=metadata)
                else:
                    running.cancelled.wait(min(0.05 * 2 ** calls, 5.0))
                    stream = running.call = self._execution.WaitExecution(
                        reapi.WaitExecutionRequest(name=running.operation), metadata=metadata)

    def _cancel(self, running: RemoteRunning) -> None:
        if running.operation:
            try:
                self._operations.CancelOperation(operations_pb2.CancelOperationRequest(
                    name=running.operation), timeout=5, metadata=self.connection.metadata())
            except grpc.RpcError:
                pass

    def _step(self, action: Action, name: str, started: float) -> None:
        """Tell the build's telemetry of a step of `action` (from another thread)."""
        if self.telemetry is not None:
            self.telemetry.step(action, name, started)

    # ---- uploads -------------------------------------------------------------------

    def _blobs(self, action: Action, message: reapi.Action, files: InputFiles,
               sources: Mapping[str, str]) -> list[Blob]:
        root, directories = input_root(files)
        command_data = command(action).SerializeToString(deterministic=True)
        action_data = message.SerializeToString(deterministic=True)
        blobs = [Blob(digest_of(command_data), command_data),
                 Blob(digest_of(action_data), action_data)]
        blobs += [Blob(reapi.Digest(hash=h, size_bytes=len(d)), d)
                  for h, d in directories.items()]
        for path, digest in files.items():
            # None: an empty directory, in the Directory blobs; a link is its node there
            if digest is not None and digest.link is None:
                blobs.append(Blob(reapi.Digest(hash=digest.hash, size_bytes=digest.size),
                                  path=sources.get(path) or os.path.join(self.exec_root,
                                                                         path)))
        return blobs

    def _upload(self, blobs: list[Blob], new: int = 2) -> None:
        """Send what the server lacks of `blobs`. The first `new` (the Command and the
        Action, a few hundred bytes the server rarely has) go without asking; the rest
        only if FindMissingBlobs names them, and only those not sent or seen before in
        this build. One FindMissingBlobs and one upload at most."""
        with self._lock:
            unknown = [b for b in blobs if b.digest.hash not in self._present
                       and b.digest.hash != EMPTY]
        direct = [b for b in unknown if any(b is x for x in blobs[:new])]
        asked = [b for b in unknown if not any(b is x for x in blobs[:new])]
        if asked:
            missing = {d.hash for d in self.cas.find_missing(b.digest for b in asked)}
            direct += [b for b in asked if b.digest.hash in missing]
        if direct:
            self.cas.upload_all(direct)
        with self._lock:
            self._present.update(b.digest.hash for b in unknown)

    def upload_result(self, action: Action, message: reapi.Action,
                      files: InputFiles,
                      sources: Mapping[str, str], outputs: Mapping[str, tuple[str, int, bool]],
                      trees: Mapping[str, bytes], links: Mapping[str, str],
                      result: SpawnResult) -> None:
        """Store a local run's result in the remote cache (in the background): outputs
        (file path -> (sha256, size, executable); directory path -> its Tree; declared
        symlink -> its text), stdout, stderr, the Action and Command, then
        UpdateActionResult."""
        if not (self.options.upload_local_results and self.caches(action)):
            return
        self._pending.append(self._uploads.submit(
            self._store_result, action, message, files, sources, dict(outputs), dict(trees),
            dict(links), result))

    def _store_result(self, action, message, files, sources, outputs, trees, links,
                      result) -> None:
        blobs = self._blobs(action, message, files, sources)[:2]
        answer = reapi.ActionResult(exit_code=result.exit_code)
        for data, name in ((result.stdout, "stdout_digest"), (result.stderr, "stderr_digest")):
            digest = digest_of(data)
            getattr(answer, name).CopyFrom(digest)
            blobs.append(Blob(digest, data))
        for path, (sha, size, executable) in sorted(outputs.items()):
            digest = reapi.Digest(hash=sha, size_bytes=size)
            answer.output_files.add(path=path, digest=digest, is_executable=executable)
            blobs.append(Blob(digest, path=os.path.join(self.exec_root, path)))
        for path, tree in sorted(trees.items()):
            digest = digest_of(tree)
            answer.output_directories.add(path=path, tree_digest=digest)
            blobs.append(Blob(digest, tree))
            found, _ = decode_tree(tree)
            for name, (sha, size, _) in found.items():
                blobs.append(Blob(reapi.Digest(hash=sha, size_bytes=size),
                                  path=os.path.join(self.exec_root, path, name)))
        for path, text in sorted(links.items()):
            answer.output_symlinks.add(path=path, target=text)
        self._upload(blobs)
        self.connection.call(self._cache.UpdateActionResult, reapi.UpdateActionResultRequest(
            instance_name=self.instance, action_digest=message_digest(message),
            action_result=answer))

    # ---- downloads ------------------------------------------------------------------

    def _download(self, action: Action, result: reapi.ActionResult) -> SpawnResult:
        """Write the result's outputs into the exec root; its stdout and stderr. With
        --remote_download_minimal, output files stay remote (a test's logs excepted):
        the result names their digests, and `fetch` brings them when needed."""
        remote = {}
        if self.options.download_minimal and action.mnemonic != "TestRunner":
            remote = {f.path: (f.digest.hash, f.digest.size_bytes, f.is_executable)
                      for f in result.output_files}
            kept = reapi.ActionResult()
            kept.CopyFrom(result)
            del kept.output_files[:]
            result = kept
            with self._lock:   # on the server: later uploads need not ask about them
                self._present.update(sha for sha, _, _ in remote.values())
        wanted = [f.digest for f in result.output_files]
        trees = {d.path: d.tree_digest for d in result.output_directories}
        wanted += trees.values()
        for name in ("stdout", "stderr"):
            if result.HasField(f"{name}_digest") and not getattr(result, f"{name}_raw"):
                wanted.append(getattr(result, f"{name}_digest"))
        blobs = self.cas.read_many(wanted)
        expanded: list[tuple[str, reapi.Digest, bool]] = []
        for path, digest in trees.items():
            files, directories = decode_tree(blobs[digest.hash])
            os.makedirs(os.path.join(self.exec_root, path), exist_ok=True)
            for directory in directories:
                os.makedirs(os.path.join(self.exec_root, path, directory), exist_ok=True)
            expanded += [(os.path.join(path, name), reapi.Digest(hash=sha, size_bytes=size),
                          executable) for name, (sha, size, executable) in files.items()]
        if expanded:
            blobs.update(self.cas.read_many(d for _, d, _ in expanded))
        for output in result.output_files:
            expanded.append((output.path, output.digest, output.is_executable))
        for path, digest, executable in expanded:
            write_file(os.path.join(self.exec_root, path), blobs[digest.hash], executable)
        with self._lock:
            self._present.update(blobs)
        error = self._make_links(action, [*result.output_symlinks,
                                          *result.output_file_symlinks])

        def printed(name: str) -> bytes:
            raw = getattr(result, f"{name}_raw")
            if raw or not result.HasField(f"{name}_digest"):
                return raw
            return blobs[getattr(result, f"{name}_digest").hash]

        return SpawnResult(result.exit_code, printed("stdout"), printed("stderr"),
                           remote_outputs=tuple(sorted(remote.items())), error=error)

    def _make_links(self, action: Action, links) -> str | None:
        """Put the result's symbolic links in place: a declared symlink as the link it
        is; an output declared as a file is a copy of the file its link names, which must
        be another output or an input (what is wrong, if anything)."""
        copies = []
        for link in links:
            full = os.path.join(self.exec_root, link.path)
            remove(full)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            if link.path in action.output_symlinks:
                os.symlink(link.target, full)
                continue
            named = os.path.normpath(os.path.join(os.path.dirname(link.path), link.target))
            if os.path.isabs(link.target) or named == ".." or named.startswith("../"):
                return (f"declared output {link.path} is a symbolic link to "
                        f"'{link.target}', out of the action's input root; {ESCAPE_HINT}")
            copies.append((full, link.path, named))
        for full, path, named in copies:
            source = os.path.join(self.exec_root, named)
            if not os.path.isfile(source):
                return (f"declared output {path} is a symbolic link to '{named}', "
                        "which the action neither read nor wrote")
            shutil.copy(source, full)
        return None

    def fetch(self, files: Mapping[str, tuple[str, int, bool]]) -> None:
        """Download outputs that stayed remote (exec path -> (sha256, size, executable))
        into the exec root."""
        blobs = self.cas.read_many(reapi.Digest(hash=sha, size_bytes=size)
                                   for sha, size, _ in files.values())
        for path, (sha, _, executable) in files.items():
            write_file(os.path.join(self.exec_root, path), blobs[sha], executable)

    def close(self) -> None:
        """Wait for the uploads of local results, then close the channel."""
        try:
            for future in self._pending:
                try:
                    future.result()
                except RemoteError as error:
                    self.say(f"WARNING: could not upload a result to the remote cache: "
                             f"{error.message}")
        finally:
            self._uploads.shutdown(wait=True)
            self.connection.close()


def message_digest(message: reapi.Action) -> reapi.Digest:
    """The digest of an Action message: its hash is the action's key."""
    return digest_of(message.SerializeToString(deterministic=True))


def _missing_blobs(status) -> list[str]:
    missing = []
    for detail in status.details:
        failure = error_details_pb2.PreconditionFailure()
        if detail.Unpack(failure):
            for violation in failure.violations:
                if violation.type == "MISSING" and violation.subject.startswith("blobs/"):
                    missing.append(violation.subject.split("/")[1])
    return missing
