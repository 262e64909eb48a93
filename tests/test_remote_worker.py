"""`bp worker` serving a real BuildGrid, driven by plain REAPI calls (as Bazel would
send them: output_files/output_directories, an empty environment)."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi, remote_execution_pb2_grpc as reapi_grpc)
from buildgrid.common.protos.google.longrunning import operations_pb2, operations_pb2_grpc
from buildgrid.common.protos.google.rpc import code_pb2

from buildpy.actions.key import digest_of
from buildpy.execution.trees import decode_tree
from buildpy.remote.cas import Blob, Cas
from buildpy.remote.channel import Connection, parse_endpoint


class Client:
    def __init__(self, endpoint: str):
        self.connection = Connection(parse_endpoint(endpoint, "--remote_executor"))
        self.cas = Cas(self.connection)
        self.execution = reapi_grpc.ExecutionStub(self.connection.channel)
        self.operations = operations_pb2_grpc.OperationsStub(self.connection.channel)

    def action(self, argv, *, files=None, outputs=(), directories=(), env=(), timeout=None,
               upload_inputs=True) -> reapi.Digest:
        """Upload an action whose input root holds `files` (name -> bytes)."""
        root = reapi.Directory()
        blobs = []
        for name, data in sorted((files or {}).items()):
            root.files.add(name=name, digest=digest_of(data), is_executable=True)
            if upload_inputs:
                blobs.append(Blob(digest_of(data), data))
        root_data = root.SerializeToString(deterministic=True)
        command = reapi.Command(arguments=argv, output_files=list(outputs),
                                output_directories=list(directories),
                                environment_variables=[
                                    reapi.Command.EnvironmentVariable(name=k, value=v)
                                    for k, v in env]).SerializeToString()
        action = reapi.Action(command_digest=digest_of(command),
                              input_root_digest=digest_of(root_data), do_not_cache=True)
        if timeout:
            action.timeout.FromSeconds(timeout)
        action_data = action.SerializeToString()
        blobs += [Blob(digest_of(d), d) for d in (root_data, command, action_data)]
        self.cas.upload(blobs)
        return digest_of(action_data)

    def execute(self, digest: reapi.Digest, on_operation=None) -> reapi.ExecuteResponse:
        for operation in self.execution.Execute(reapi.ExecuteRequest(
                action_digest=digest, skip_cache_lookup=True), timeout=120):
            if on_operation is not None:
                on_operation(operation)
            if operation.done:
                response = reapi.ExecuteResponse()
                operation.response.Unpack(response)
                return response
        raise AssertionError("the stream ended without a result")


@pytest.fixture
def client(remote_cluster):
    made = Client(remote_cluster.endpoint)
    yield made
    made.connection.close()


def test_outputs_files_and_directories_come_back(client):
    digest = client.action(
        ["/bin/sh", "-c", "echo hello > out/a.txt; mkdir -p d/sub; printf x > d/sub/f; "
         "echo err >&2; exit 3"],
        outputs=["out/a.txt"], directories=["d"])   # no PATH: an empty environment
    response = client.execute(digest)
    assert response.status.code == code_pb2.OK
    result = response.result
    assert result.exit_code == 3
    assert client.cas.read(result.stderr_digest) == b"err\n"
    (file,) = result.output_files
    assert file.path == "out/a.txt" and client.cas.read(file.digest) == b"hello\n"
    (directory,) = result.output_directories
    files, _ = decode_tree(client.cas.read(directory.tree_digest))
    assert client.cas.read(reapi.Digest(hash=files["sub/f"][0], size_bytes=1)) == b"x"
    assert result.execution_metadata.worker.startswith("bp-worker-")


def test_inputs_are_laid_out_and_missing_ones_reported(client):
    script = b"#!/bin/sh\ncat data.txt > copy.txt\n"
    digest = client.action(["./run.sh"], files={"run.sh": script, "data.txt": b"payload"},
                           outputs=["copy.txt"])
    response = client.execute(digest)
    assert response.result.exit_code == 0, client.cas.read(response.result.stderr_digest)
    assert client.cas.read(response.result.output_files[0].digest) == b"payload"
    missing = client.action(["./run.sh"], files={"run.sh": b"#!/bin/sh\n# never sent\n"},
                            upload_inputs=False)
    response = client.execute(missing)
    assert response.status.code == code_pb2.FAILED_PRECONDITION
    assert "missing" in response.status.message


def test_an_action_past_its_timeout_is_killed(client):
    digest = client.action(["/bin/sh", "-c", "echo started; sleep 60"], timeout=1)
    started = time.monotonic()
    response = client.execute(digest)
    assert time.monotonic() - started < 30
    assert response.status.code == code_pb2.DEADLINE_EXCEEDED
    assert client.cas.read(response.result.stdout_digest) == b"started\n"


def test_a_cancelled_operation_kills_its_process(client):
    marker = f"sleep {300 + time.monotonic_ns() % 1000}"
    digest = client.action(["/bin/sh", "-c", marker])
    names = []
    thread = threading.Thread(target=lambda: _quietly(client.execute, digest, names.append),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while marker not in _ps() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker in _ps(), "the action never started"
    while not names and time.monotonic() < deadline:
        time.sleep(0.05)
    client.operations.CancelOperation(operations_pb2.CancelOperationRequest(
        name=names[0].name), timeout=10)
    while marker in _ps() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker not in _ps(), "the cancelled action still runs"


def _quietly(function, *args):
    try:
        function(*args)
    except Exception:  # noqa: BLE001 - the stream of a cancelled operation fails
        pass


def _ps() -> str:
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def test_a_sandboxed_worker_hides_the_host(tmp_path):
    """`bp worker --sandbox` runs actions under bubblewrap: the host's /tmp is not there."""
    from buildpy.execution.sandbox import LinuxSandboxStrategy

    usable, why = LinuxSandboxStrategy.available()
    if not usable:
        pytest.skip(why)
    from tests.remote_cluster import start_cluster

    cluster = start_cluster(workers=0, worker_args=("--sandbox",))
    try:
        cluster.add_worker()
        sandboxed = Client(cluster.endpoint)
        (tmp_path / "secret.txt").write_text("host file")
        digest = sandboxed.action(["/bin/sh", "-c", f"ls {tmp_path} > seen.txt 2>&1; true"],
                                  outputs=["seen.txt"])
        response = sandboxed.execute(digest)
        assert response.status.code == code_pb2.OK, response.status
        seen = sandboxed.cas.read(response.result.output_files[0].digest)
        assert b"secret.txt" not in seen
        sandboxed.connection.close()
    finally:
        cluster.stop()
