"""`bp worker`: a bot of the Remote Workers API (BuildGrid's), running REAPI actions.

One bot session, kept alive by UpdateBotSession (heartbeat, poll and report in one
call); each lease runs in a fresh directory, its inputs fetched from the CAS, its
outputs and stdout/stderr uploaded, its ActionResult reported. Knows the Bots and CAS
services and how to start a process; not bp's actions or builds.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi)
from buildgrid.common.protos.google.devtools.remoteworkers.v1test2 import (
    bots_pb2, bots_pb2_grpc, worker_pb2)
from buildgrid.common.protos.google.rpc import code_pb2, error_details_pb2, status_pb2

from buildpy.actions.key import digest_of
from buildpy.core.errors import RemoteError
from buildpy.execution.spawn import Cancelled, LocalStrategy, Spawn, SpawnResult, wait
from buildpy.execution.trees import encode_tree
from buildpy.remote.cas import Blob, Cas, write_file
from buildpy.remote.channel import Connection, parse_endpoint

POLL_DEADLINE = 5.0   # seconds; the server long-polls for 0.8 of it


@dataclass
class Lease:
    """One lease and what became of it."""

    message: bots_pb2.Lease
    directory: Path
    cancel: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    status: status_pb2.Status | None = None
    result: reapi.ActionResult | None = None


class Worker:
    def __init__(self, server: str, *, instance: str = "", bot_id: str | None = None,
                 concurrency: int = 1, work_dir: str | None = None, sandbox: bool = False,
                 say=lambda line: print(line, file=sys.stderr, flush=True)):
        self.endpoint = parse_endpoint(server, "--server")
        self.connection = Connection(self.endpoint, instance=instance, role="server",
                                     retries=0)
        self.cas = Cas(self.connection)
        self.bots = bots_pb2_grpc.BotsStub(self.connection.channel)
        self.instance = instance
        self.bot_id = bot_id or f"{socket.gethostname()}-{os.getpid()}"
        self.concurrency = max(1, concurrency)
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="bp-worker-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.say = say
        self.strategy = self._strategy(sandbox)
        self.leases: dict[str, Lease] = {}
        self.lock = threading.Lock()
        self.draining = threading.Event()
        self.stopping = threading.Event()

    def _strategy(self, sandbox: bool):
        if not sandbox:
            return LocalStrategy()
        from buildpy.execution.sandbox import LinuxSandboxStrategy

        usable, why = LinuxSandboxStrategy.available()
        if not usable:
            raise RemoteError(f"bp worker --sandbox: {why}",
                              hint="install bubblewrap, or run without --sandbox")
        return LinuxSandboxStrategy(self.work_dir / "sandboxes")

    # ---- the session ---------------------------------------------------------------

    def _session(self, status: int) -> bots_pb2.BotSession:
        device = worker_pb2.Device(handle=self.bot_id, properties=[
            worker_pb2.Device.Property(key="OSFamily", value=sys.platform),
            worker_pb2.Device.Property(key="ISA", value=platform.machine())])
        return bots_pb2.BotSession(bot_id=self.bot_id, status=status, worker=worker_pb2.Worker(
            devices=[device],
            configs=[worker_pb2.Worker.Config(key="capacity", value=str(self.concurrency))]))

    def _create(self) -> bots_pb2.BotSession:
        delay = 0.2
        while not self.stopping.is_set():
            try:
                return self.bots.CreateBotSession(bots_pb2.CreateBotSessionRequest(
                    parent=self.instance, bot_session=self._session(bots_pb2.OK)),
                    timeout=POLL_DEADLINE)
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE,
                                        grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise self.connection.error(error, "CreateBotSession") from None
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)
        raise KeyboardInterrupt

    def serve(self) -> int:
        """Run until SIGTERM (drain) or a second signal (stop now); returns the exit code."""
        session = self._create()
        instance = self.instance or '""'
        self.say(f"bp worker {self.bot_id} serving {self.endpoint.text} "
                 f"(instance {instance}, {self.concurrency} slots)")
        while True:
            with self.lock:
                finished = not self.leases
            if self.draining.is_set() and finished:
                break
            if self.stopping.is_set():
                break
            self._report(session)
            try:
                session = self.bots.UpdateBotSession(bots_pb2.UpdateBotSessionRequest(
                    name=session.name, bot_session=session), timeout=POLL_DEADLINE)
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    continue
                if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND,
                                    grpc.StatusCode.INVALID_ARGUMENT):
                    self.say(f"bp worker {self.bot_id}: the server went away "
                             f"({error.code().name}); reconnecting")
                    self._cancel_all()   # its leases are requeued for the new session
                    session = self._create()
                    continue
                raise self.connection.error(error, "UpdateBotSession") from None
            self._take(session)
        self._cancel_all()
        self.strategy.close()   # (a cancelled action's directory goes with the rest)
        self.connection.close()
        return 0

    def _report(self, session: bots_pb2.BotSession) -> None:
        """Put each finished lease's result into the session the server will see; ask
        for no more work while draining."""
        session.status = bots_pb2.BOT_TERMINATING if self.draining.is_set() else bots_pb2.OK
        with self.lock:
            for message in session.leases:
                lease = self.leases.get(message.id)
                if lease is not None and lease.done:
                    message.state = bots_pb2.COMPLETED
                    message.status.CopyFrom(lease.status)
                    if lease.result is not None:
                        message.result.Pack(lease.result)

    def _take(self, session: bots_pb2.BotSession) -> None:
        """Start new leases; kill those the server no longer lists (cancelled); forget
        those it took back as completed."""
        listed = {m.id: m for m in session.leases}
        with self.lock:
            for lease_id, lease in list(self.leases.items()):
                message = listed.get(lease_id)
                if message is None or message.state == bots_pb2.CANCELLED:
                    lease.cancel.set()   # its process is killed, its directory dropped
                    if message is None or lease.done:
                        del self.leases[lease_id]   # (or reported and taken back)
            for message in session.leases:
                if message.state not in (bots_pb2.ACTIVE, bots_pb2.PENDING) or \
                        message.id in self.leases or self.draining.is_set():
                    continue
                message.state = bots_pb2.ACTIVE   # accepted
                directory = Path(tempfile.mkdtemp(prefix="lease-", dir=self.work_dir))
                lease = Lease(message, directory)
                self.leases[message.id] = lease
                threading.Thread(target=self._run_lease, args=(lease,), daemon=True,
                                 name=f"lease-{message.id}").start()

    def _cancel_all(self) -> None:
        with self.lock:
            for lease in self.leases.values():
                lease.cancel.set()
            self.leases.clear()

    # ---- one lease -------------------------------------------------------------------

    def _run_lease(self, lease: Lease) -> None:
        try:
            status, result = self._execute(lease)
        except Cancelled:
            status, result = status_pb2.Status(code=code_pb2.CANCELLED), None
        except RemoteError as error:
            missing = getattr(error, "missing", None)
            if missing is not None:
                status, result = _missing_status([missing]), None
            else:
                status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=error.message)
                result = None
        except Exception as error:  # noqa: BLE001 - reported to the client as the lease's
            status = status_pb2.Status(code=code_pb2.INTERNAL,
                                       message=f"bp worker: {type(error).__name__}: {error}")
            result = None
        finally:
            shutil.rmtree(lease.directory, ignore_errors=True)
        with self.lock:
            lease.status, lease.result, lease.done = status, result, True

    def _action(self, lease: Lease) -> reapi.Action:
        payload = lease.message.payload
        if payload.Is(reapi.Action.DESCRIPTOR):
            action = reapi.Action()
            payload.Unpack(action)
            return action
        digest = reapi.Digest()
        payload.Unpack(digest)
        action = reapi.Action()
        action.ParseFromString(self.cas.read(digest))
        return action

    def _execute(self, lease: Lease) -> tuple[status_pb2.Status, reapi.ActionResult]:
        metadata = reapi.ExecutedActionMetadata(worker=self.bot_id)
        metadata.worker_start_timestamp.GetCurrentTime()
        action = self._action(lease)
        command = reapi.Command()
        command.ParseFromString(self.cas.read(action.command_digest))
        root = lease.directory / "root"
        metadata.input_fetch_start_timestamp.GetCurrentTime()
        missing = self._fetch_inputs(action.input_root_digest, root)
        if missing:
            return _missing_status(missing), None
        metadata.input_fetch_completed_timestamp.GetCurrentTime()
        work = root / command.working_directory
        outputs = list(command.output_paths) or [*command.output_files,
                                                 *command.output_directories]
        for path in outputs:
            (work / path).parent.mkdir(parents=True, exist_ok=True)
        directories = set(command.output_directories)
        # output_paths (REAPI v2.1): each output is reported as what it is, a symbolic
        # link as a link; output_files and output_directories ask for files and trees
        as_found = tuple(os.path.join(command.working_directory, p)
                         for p in command.output_paths)
        timeout = action.timeout.ToTimedelta().total_seconds() if \
            action.HasField("timeout") else None
        spawn = Spawn(argv=tuple(command.arguments),
                      env={v.name: v.value for v in command.environment_variables},
                      exec_root=root, inputs=tuple(_top_entries(root)),
                      outputs=tuple(os.path.join(command.working_directory, p)
                                    for p in outputs),
                      output_directories=tuple(os.path.join(command.working_directory, p)
                                               for p in directories),
                      output_symlinks=as_found,
                      working_directory=command.working_directory, timeout=timeout or None,
                      requires_network=False)
        metadata.execution_start_timestamp.GetCurrentTime()
        try:
            running = self.strategy.start(spawn)
        except OSError as error:
            outcome = SpawnResult(127, b"", f"cannot run {spawn.argv[0]}: "
                                            f"{error.strerror}\n".encode())
        else:
            outcome = wait(running, lease.cancel)
        metadata.execution_completed_timestamp.GetCurrentTime()
        metadata.output_upload_start_timestamp.GetCurrentTime()
        result = self._upload_outputs(command, work, outcome)
        metadata.output_upload_completed_timestamp.GetCurrentTime()
        metadata.worker_completed_timestamp.GetCurrentTime()
        result.execution_metadata.CopyFrom(metadata)
        if outcome.timed_out:
            return status_pb2.Status(code=code_pb2.DEADLINE_EXCEEDED,
                                     message=f"the action ran past its timeout of "
                                             f"{timeout:g} s and was killed"), result
        return status_pb2.Status(code=code_pb2.OK), result

    def _fetch_inputs(self, root_digest: reapi.Digest, root: Path) -> list[reapi.Digest]:
        """Lay out the input root; the digests the CAS lacks (nothing laid out then)."""
        try:
            tree = self.cas.get_tree(root_digest)
        except RemoteError as error:
            if getattr(error, "missing", None) is not None:
                return [error.missing]
            raise
        files: list[tuple[Path, reapi.FileNode]] = []
        root.mkdir(parents=True, exist_ok=True)

        def walk(directory: reapi.Directory, path: Path) -> None:
            for node in directory.files:
                files.append((path / node.name, node))
            for node in directory.symlinks:
                os.symlink(node.target, path / node.name)
            for node in directory.directories:
                (path / node.name).mkdir()
                walk(tree[node.digest.hash], path / node.name)

        walk(tree[root_digest.hash], root)
        wanted = [node.digest for _, node in files]
        try:
            blobs = self.cas.read_many(wanted)
        except RemoteError as error:
            if getattr(error, "missing", None) is None:
                raise
            present = set(d.hash for d in wanted) - {
                d.hash for d in self.cas.find_missing(wanted)}
            return [d for d in wanted if d.hash not in present] or [error.missing]
        for path, node in files:
            write_file(os.fspath(path), blobs[node.digest.hash], node.is_executable)
        return []

    def _upload_outputs(self, command: reapi.Command, work: Path,
                        outcome: SpawnResult) -> reapi.ActionResult:
        result = reapi.ActionResult(exit_code=outcome.exit_code)
        blobs: list[Blob] = []
        for data, field_name in ((outcome.stdout, "stdout_digest"),
                                 (outcome.stderr, "stderr_digest")):
            digest = digest_of(data)
            getattr(result, field_name).CopyFrom(digest)
            blobs.append(Blob(digest, data))

        def put(path: str) -> tuple[str, int, bool]:
            with open(path, "rb") as handle:
                data = handle.read()
            digest = digest_of(data)
            blobs.append(Blob(digest, data))
            return digest.hash, digest.size_bytes, os.access(path, os.X_OK)

        names = list(command.output_paths) or [*command.output_files,
                                               *command.output_directories]
        for name in names:
            path = work / name
            if command.output_paths and path.is_symlink():
                result.output_symlinks.add(path=name, target=os.readlink(path))
            elif path.is_dir():
                tree = encode_tree(os.fspath(path), put)
                digest = digest_of(tree)
                blobs.append(Blob(digest, tree))
                result.output_directories.add(path=name, tree_digest=digest)
            elif path.is_file():
                sha, size, executable = put(os.fspath(path))
                result.output_files.add(path=name, is_executable=executable,
                                        digest=reapi.Digest(hash=sha, size_bytes=size))
        self.cas.upload(blobs)
        return result


def _top_entries(root: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(root))


def _missing_status(digests: list[reapi.Digest]) -> status_pb2.Status:
    failure = error_details_pb2.PreconditionFailure(violations=[
        error_details_pb2.PreconditionFailure.Violation(
            type="MISSING", subject=f"blobs/{d.hash}/{d.size_bytes}") for d in digests])
    status = status_pb2.Status(code=code_pb2.FAILED_PRECONDITION,
                               message=f"{len(digests)} input blob(s) are missing from the CAS")
    status.details.add().Pack(failure)
    return status


def run_worker(worker: Worker) -> int:
    """Serve until signalled: the first SIGTERM/SIGINT drains, a second one stops now."""
    def on_signal(signum, _frame) -> None:
        if worker.draining.is_set():
            worker.stopping.set()
            worker._cancel_all()
        else:
            worker.say(f"bp worker {worker.bot_id}: draining (finishing running actions)")
            worker.draining.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    start = time.monotonic()
    code = worker.serve()
    worker.say(f"bp worker {worker.bot_id}: stopped after {time.monotonic() - start:.0f} s")
    return code
