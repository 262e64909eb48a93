"""Builds and tests on a real BuildGrid (PostgreSQL, bgd, two `bp worker`s): remote
execution, the remote cache, tags, faults; and the client's seams with fake servers."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi, remote_execution_pb2_grpc as reapi_grpc)

from buildpy.core.errors import RemoteError
from buildpy.execution.spawn import SpawnResult
from buildpy.remote.cas import Cas, CorruptDownload
from buildpy.remote.channel import Connection, parse_endpoint
from tests.remote_cluster import start_cluster

REPO = Path(__file__).resolve().parent.parent
BP = [sys.executable, "-m", "buildpy"]


def _copy_monorepo(where: Path) -> Path:
    shutil.copytree(REPO / "examples" / "monorepo", where,
                    ignore=shutil.ignore_patterns("bp-out", "bp-bin"))
    return where


def _bp(workspace: Path, *args: str, env: dict | None = None, timeout: float = 300
        ) -> subprocess.CompletedProcess:
    return subprocess.run([*BP, "--nohome_rc", *args, "--curses=no"], cwd=workspace,
                          env=env or os.environ, capture_output=True, text=True,
                          timeout=timeout)


def _outputs(workspace: Path) -> dict[str, bytes]:
    """Every regular file the build wrote under bp-out/*/bin (runfiles trees aside)."""
    found = {}
    for config in (workspace / "bp-out").iterdir():
        bin_dir = config / "bin"
        if not bin_dir.is_dir():
            continue
        for path in bin_dir.rglob("*"):
            if ".runfiles" in path.parts[-1] or any(p.endswith(".runfiles")
                                                    for p in path.parts):
                continue
            if path.is_file() and not path.is_symlink():
                found[str(path.relative_to(workspace))] = path.read_bytes()
    return found


def _counts(stderr: str) -> str:
    return [line for line in stderr.splitlines() if line.startswith("INFO: ")][-1]


def test_build_remotely_gives_the_local_bytes_then_only_remote_hits(remote_cluster, tmp_path):
    # -c opt: the default mode's `-g` objects hold the directory they were compiled in
    # (a sandbox's, a worker's), so they differ between any two builds
    local = _copy_monorepo(tmp_path / "local")
    done = _bp(local, "build", "//...", "-c", "opt", f"--disk_cache={tmp_path / 'c0'}")
    assert done.returncode == 0, done.stderr
    remote = _copy_monorepo(tmp_path / "remote")
    endpoint = remote_cluster.endpoint
    done = _bp(remote, "build", "//...", "-c", "opt", f"--remote_executor={endpoint}",
               f"--disk_cache={tmp_path / 'c1'}")
    assert done.returncode == 0, done.stderr
    summary = _counts(done.stderr)
    assert " 0 remote," not in summary, summary   # something ran remotely
    assert _outputs(remote) == _outputs(local)
    # a fresh cache and bp-out: every action that runs a process is a remote hit
    shutil.rmtree(remote / "bp-out")
    done = _bp(remote, "build", "//...", "-c", "opt", f"--remote_executor={endpoint}",
               f"--disk_cache={tmp_path / 'c2'}")
    assert done.returncode == 0, done.stderr
    assert "(0 remote cache hits" not in _counts(done.stderr)
    assert " 0 remote, " in _counts(done.stderr), _counts(done.stderr)
    assert _outputs(remote) == _outputs(local)


def test_remote_cache_only_serves_a_fresh_clone(remote_cluster, tmp_path):
    first = _copy_monorepo(tmp_path / "first")
    endpoint = remote_cluster.endpoint
    done = _bp(first, "build", "//...", f"--remote_cache={endpoint}",
               f"--disk_cache={tmp_path / 'c1'}")
    assert done.returncode == 0, done.stderr
    assert " 0 remote, " in _counts(done.stderr)   # ran locally, uploaded
    clone = _copy_monorepo(tmp_path / "clone")
    done = _bp(clone, "build", "//...", f"--remote_cache={endpoint}",
               f"--disk_cache={tmp_path / 'c2'}")
    assert done.returncode == 0, done.stderr
    line = _counts(done.stderr)
    executed = int(line.split(" executed")[0].rsplit(" ", 1)[1])
    hits = int(line.split("(")[1].split(" remote cache hits")[0])
    local = int(line.split(" local, ")[0].rsplit(" ", 1)[1])
    assert hits > 0 and executed == local, line
    # what still runs locally is only what bp does itself (files, links, trees)
    again = _bp(clone, "build", "//...", f"--remote_cache={endpoint}",
                f"--disk_cache={tmp_path / 'c3'}", "--noremote_accept_cached",
                "--nobuild_runfile_links")
    assert again.returncode == 0
    assert "(0 remote cache hits" in _counts(again.stderr)
    assert _outputs(clone) == _outputs(first)


def test_tests_run_remotely_and_are_then_cached(remote_cluster, tmp_path):
    workspace = _copy_monorepo(tmp_path / "ws")
    (workspace / ".bprc").write_text(
        f"build:remote --remote_executor={remote_cluster.endpoint}\n"
        f"test:remote --remote_executor={remote_cluster.endpoint}\n")
    done = _bp(workspace, "test", "//...", "--remote", f"--disk_cache={tmp_path / 'c1'}")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Executed" in done.stdout and " tests pass" in done.stdout
    shutil.rmtree(workspace / "bp-out")
    again = _bp(workspace, "test", "//...", "--remote", f"--disk_cache={tmp_path / 'c2'}")
    assert again.returncode == 0, again.stderr
    assert "Executed 0 out of" in again.stdout, again.stdout


def test_no_remote_tag_keeps_an_action_local(remote_cluster, ws, tmp_path):
    root = ws({"BUILD": """
        genrule(name = "here", outs = ["here.txt"], cmd = "echo $$$$ > $@",
                tags = ["no-remote"])
        genrule(name = "there", outs = ["there.txt"], cmd = "echo remote > $@")
    """})
    done = _bp(root, "build", "//...", f"--remote_executor={remote_cluster.endpoint}",
               f"--disk_cache={tmp_path / 'c'}")
    assert done.returncode == 0, done.stderr
    assert "(0 remote cache hits, 1 remote, 1 local" in _counts(done.stderr)
    assert "Executing genrule //:there (remote)" in done.stderr
    assert "Executing genrule //:here\n" in done.stderr


def test_remote_flag_without_an_endpoint_is_a_clear_error(ws, bp):
    root = ws({"BUILD": 'genrule(name = "g", outs = ["g.txt"], cmd = "echo > $@")'})
    result = bp("build", "//:g", "--remote", cwd=root)
    assert result.code == 2
    assert "--remote: no remote endpoint is configured" in result.err
    assert "bp remote up" in result.err


def test_invalid_endpoint_names_the_flag(ws, bp):
    root = ws({"BUILD": 'genrule(name = "g", outs = ["g.txt"], cmd = "echo > $@")'})
    result = bp("build", "//:g", "--remote_executor=http://x", cwd=root)
    assert result.code == 2
    assert "invalid --remote_executor 'http://x'" in result.err


# ---- faults on a private cluster ------------------------------------------------------------

def test_worker_killed_mid_action_then_server_gone(tmp_path, ws):
    cluster = start_cluster(workers=1)
    try:
        root = ws({"BUILD": """
            genrule(name = "slow", outs = ["slow.txt"],
                    cmd = "sleep 3; echo done > $@")
        """})
        endpoint = cluster.endpoint
        build = subprocess.Popen([*BP, "--nohome_rc", "build", "//:slow", "--curses=no",
                                  f"--remote_executor={endpoint}",
                                  f"--disk_cache={tmp_path / 'c1'}"], cwd=root,
                                 stderr=subprocess.PIPE, text=True)
        log = cluster.directory / "worker-0.log"
        deadline = time.monotonic() + 60
        while "sleep 3" not in _ps() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "sleep 3" in _ps(), "the action never started on the worker"
        cluster.kill_worker(0)
        cluster.add_worker()   # a new bot: the orphaned job is requeued to it
        _, err = build.communicate(timeout=120)
        assert build.returncode == 0, err + log.read_text()
        assert (root / "bp-out").exists()
        # the server stops: a clear error (exit 34), or local fallback when asked
        cluster.stop_server()
        (root / "BUILD").write_text('genrule(name = "slow", outs = ["slow.txt"], '
                                    'cmd = "echo other > $@")\n')
        done = _bp(root, "build", "//:slow", f"--remote_executor={endpoint}",
                   f"--disk_cache={tmp_path / 'c2'}", "--remote_retries=1",
                   "--remote_timeout=5")
        assert done.returncode == 34, done.stderr
        assert f"remote executor {endpoint}" in done.stderr
        assert "UNAVAILABLE" in done.stderr
        done = _bp(root, "build", "//:slow", f"--remote_cache={endpoint}",
                   f"--disk_cache={tmp_path / 'c3'}", "--remote_retries=0")
        assert done.returncode == 34, done.stderr
        assert "hint:" in done.stderr
        # with --remote_local_fallback the build goes on here, saying so
        done = _bp(root, "build", "//:slow", f"--remote_executor={endpoint}",
                   f"--disk_cache={tmp_path / 'c4'}", "--remote_retries=0",
                   "--remote_local_fallback")
        assert done.returncode == 0, done.stderr
        assert "--remote_local_fallback" in done.stderr
        # the server comes back on its port: the worker reconnects and runs actions again
        cluster.start_server()
        (root / "BUILD").write_text('genrule(name = "slow", outs = ["slow.txt"], '
                                    'cmd = "echo third > $@")\n')
        done = _bp(root, "build", "//:slow", f"--remote_executor={endpoint}",
                   f"--disk_cache={tmp_path / 'c5'}")
        assert done.returncode == 0, done.stderr + log.read_text()
        assert "1 remote," in _counts(done.stderr)
    finally:
        cluster.stop()


def _ps() -> str:
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


# ---- fake servers for the client's seams ---------------------------------------------------

class _Capabilities(reapi_grpc.CapabilitiesServicer):
    def __init__(self, functions):
        self.functions = functions
        self.metadata = []

    def GetCapabilities(self, request, context):
        self.metadata.append(dict(context.invocation_metadata()))
        return reapi.ServerCapabilities(cache_capabilities=reapi.CacheCapabilities(
            digest_function=self.functions))


@pytest.fixture
def fake_server():
    servers = []

    def start(*adders) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        for add in adders:
            add(server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"grpc://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(0)


def test_a_server_without_sha256_is_refused_and_headers_stay_secret(fake_server, ws, bp):
    service = _Capabilities([reapi.DigestFunction.MD5])
    endpoint = fake_server(lambda s: reapi_grpc.add_CapabilitiesServicer_to_server(service, s))
    root = ws({"BUILD": 'genrule(name = "g", outs = ["g.txt"], cmd = "echo > $@")'})
    result = bp("build", "//:g", f"--remote_cache={endpoint}",
                "--remote_header=x-api-key=s3cret-value", cwd=root)
    assert result.code == 34
    assert f"remote cache {endpoint} does not offer SHA-256 digests (it offers: MD5)" \
        in result.err
    assert service.metadata[0]["x-api-key"] == "s3cret-value"
    assert "s3cret-value" not in result.err + result.out


def test_an_unreachable_server_fails_after_retries(ws, bp):
    root = ws({"BUILD": 'genrule(name = "g", outs = ["g.txt"], cmd = "echo > $@")'})
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]   # nobody listens once it is closed
    started = time.monotonic()
    result = bp("build", "//:g", f"--remote_cache=grpc://127.0.0.1:{port}",
                "--remote_retries=2", cwd=root)
    assert result.code == 34
    assert f"remote cache grpc://127.0.0.1:{port}: GetCapabilities failed: UNAVAILABLE" \
        in result.err
    assert time.monotonic() - started < 60


class _FlakyCas(reapi_grpc.ContentAddressableStorageServicer):
    """Serves one blob, corrupted the first `bad` times."""

    def __init__(self, data: bytes, bad: int):
        self.data, self.bad, self.reads = data, bad, 0

    def BatchReadBlobs(self, request, context):
        self.reads += 1
        data = self.data if self.reads > self.bad else b"X" + self.data[1:]
        return reapi.BatchReadBlobsResponse(responses=[
            reapi.BatchReadBlobsResponse.Response(digest=d, data=data)
            for d in request.digests])


def test_a_corrupted_download_is_fetched_again(fake_server):
    data = b"the real content\n"
    digest = reapi.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    once = _FlakyCas(data, 1)
    endpoint = fake_server(
        lambda s: reapi_grpc.add_ContentAddressableStorageServicer_to_server(once, s))
    cas = Cas(Connection(parse_endpoint(endpoint, "--remote_cache")))
    assert cas.read(digest) == data and once.reads == 2
    always = _FlakyCas(data, 100)
    endpoint = fake_server(
        lambda s: reapi_grpc.add_ContentAddressableStorageServicer_to_server(always, s))
    cas = Cas(Connection(parse_endpoint(endpoint, "--remote_cache")))
    with pytest.raises(CorruptDownload, match="arrived with other content twice"):
        cas.read(digest)


def test_endpoints():
    assert parse_endpoint("grpc://127.0.0.1:80", "--f").target == "127.0.0.1:80"
    assert parse_endpoint("grpcs://h.example:443", "--f").secure
    assert parse_endpoint("unix:///tmp/s.sock", "--f").target == "unix:/tmp/s.sock"
    assert parse_endpoint("unix:/tmp/s.sock", "--f").target == "unix:/tmp/s.sock"
    with pytest.raises(Exception, match="invalid --f 'tcp://x'"):
        parse_endpoint("tcp://x", "--f")


class _DroppingExecution(reapi_grpc.ExecutionServicer):
    """Execute sends one operation then drops the stream; WaitExecution finishes it."""

    def __init__(self, result: reapi.ActionResult):
        self.result, self.waits = result, 0

    def Execute(self, request, context):
        from buildgrid.common.protos.google.longrunning import operations_pb2
        yield operations_pb2.Operation(name="op-1")
        context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset")

    def WaitExecution(self, request, context):
        from buildgrid.common.protos.google.longrunning import operations_pb2
        self.waits += 1
        operation = operations_pb2.Operation(name=request.name, done=True)
        operation.response.Pack(reapi.ExecuteResponse(result=self.result))
        yield operation


def test_a_dropped_execute_stream_is_resumed_with_wait_execution(fake_server, tmp_path):
    from buildpy.remote.execution import RemoteBackend, RemoteOptions, RemoteRunning

    service = _DroppingExecution(reapi.ActionResult(exit_code=0, stdout_raw=b"hi"))
    endpoint = fake_server(lambda s: reapi_grpc.add_ExecutionServicer_to_server(service, s))
    connection = Connection(parse_endpoint(endpoint, "--remote_executor"))
    backend = RemoteBackend(connection, RemoteOptions(executor=endpoint), tmp_path, 0,
                            lambda line: None)
    responses = []

    def work(running: RemoteRunning) -> SpawnResult:
        request = reapi.ExecuteRequest(action_digest=reapi.Digest(hash="0" * 64,
                                                                  size_bytes=1))
        responses.append(backend._stream(request, running))
        return SpawnResult(0)

    result = RemoteRunning(work).finish()
    assert result.error is None, result.error
    assert service.waits == 1 and responses[0].result.stdout_raw == b"hi"
    backend.close()


def test_remote_error_exit_code():
    assert RemoteError("x").exit_code == 34


def test_worker_runs_under_sigterm_drain(remote_cluster):
    """A worker asked to stop (SIGTERM) with nothing running exits 0 at once."""
    process = remote_cluster.add_worker()
    index = len(remote_cluster.worker_processes) - 1
    log = remote_cluster.directory / f"worker-{index}.log"
    deadline = time.monotonic() + 30
    while "serving" not in (log.read_text() if log.exists() else "") and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(__import__("signal").SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "draining" in log.read_text()
    remote_cluster.kill_worker(index)   # (gone already: forgets it, for other tests)



def test_exec_properties_reach_the_server(remote_cluster, ws, bp, tmp_path):
    """A target's exec_properties join its execution platform's, in the action's key and
    in the Command the server matches against its bots' properties."""
    root = ws({"BUILD": """
        genrule(name = "linux", outs = ["linux.txt"], cmd = "uname -s > $@",
                exec_properties = {"OSFamily": "linux"})
        genrule(name = "plain", outs = ["plain.txt"], cmd = "uname -s > $@")
    """})
    keys = {}
    for name in ("linux", "plain"):
        done = bp("aquery", f"//:{name}", cwd=root)
        keys[name] = [line for line in done.out.splitlines() if "ActionKey" in line]
        assert keys[name], done.err
    assert keys["linux"] != keys["plain"]
    done = _bp(root, "build", "//:linux", f"--remote_executor={remote_cluster.endpoint}",
               f"--disk_cache={tmp_path / 'c'}")
    assert done.returncode == 0, done.stderr
    assert "1 remote" in _counts(done.stderr)
    assert (root / "bp-bin" / "linux.txt").read_text() == "Linux\n"


def test_ctrl_c_cancels_the_remote_operation(remote_cluster, ws, tmp_path):
    marker = f"sleep {600 + time.monotonic_ns() % 1000}"
    root = ws({"BUILD": f'genrule(name = "long", outs = ["long.txt"], '
                        f'cmd = "{marker}; echo > $@")\n'})
    build = subprocess.Popen([*BP, "--nohome_rc", "build", "//:long", "--curses=no",
                              f"--remote_executor={remote_cluster.endpoint}",
                              f"--disk_cache={tmp_path / 'c'}"], cwd=root,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while marker not in _ps() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker in _ps(), "the action never started on a worker"
        build.send_signal(__import__("signal").SIGINT)
        _, err = build.communicate(timeout=60)
        assert build.returncode == 8, err
        while marker in _ps() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker not in _ps(), "the worker still runs the cancelled action"
    finally:
        if build.poll() is None:
            build.kill()


def test_grpcs_with_a_certificate(fake_server, tmp_path):
    """A TLS server whose certificate --tls_certificate names is reached over grpcs://."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate to test TLS with")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    service = _Capabilities([reapi.DigestFunction.SHA256])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    reapi_grpc.add_CapabilitiesServicer_to_server(service, server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())]))
    server.start()
    try:
        endpoint = parse_endpoint(f"grpcs://localhost:{port}", "--remote_cache")
        trusted = Connection(endpoint, tls_certificate=str(cert), retries=0)
        stub = reapi_grpc.CapabilitiesStub(trusted.channel)
        answer = trusted.call(stub.GetCapabilities, reapi.GetCapabilitiesRequest())
        assert list(answer.cache_capabilities.digest_function) == [
            reapi.DigestFunction.SHA256]
        untrusted = Connection(endpoint, retries=0, timeout=5)
        with pytest.raises(RemoteError, match="GetCapabilities failed: UNAVAILABLE"):
            untrusted.call(reapi_grpc.CapabilitiesStub(untrusted.channel).GetCapabilities,
                           reapi.GetCapabilitiesRequest())
    finally:
        server.stop(0)


def test_a_unix_socket_endpoint(tmp_path):
    service = _Capabilities([reapi.DigestFunction.SHA256])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    reapi_grpc.add_CapabilitiesServicer_to_server(service, server)
    socket_path = tmp_path / "reapi.sock"
    server.add_insecure_port(f"unix:{socket_path}")
    server.start()
    try:
        connection = Connection(parse_endpoint(f"unix://{socket_path}", "--remote_cache"),
                                headers=(("x-key", "v"),))
        stub = reapi_grpc.CapabilitiesStub(connection.channel)
        connection.call(stub.GetCapabilities, reapi.GetCapabilitiesRequest())
        assert service.metadata[0]["x-key"] == "v"
    finally:
        server.stop(0)


def test_download_minimal_leaves_intermediate_outputs_remote(remote_cluster, ws, tmp_path):
    root = ws({"BUILD": """
        genrule(name = "a", outs = ["a.txt"], cmd = "echo from-a > $@")
        genrule(name = "b", srcs = [":a"], outs = ["b.txt"], cmd = "cat $< $< > $@")
        genrule(name = "c", srcs = [":a"], outs = ["c.txt"], cmd = "cat $< > $@",
                tags = ["no-remote"])
    """})
    flags = (f"--remote_executor={remote_cluster.endpoint}", "--remote_download_minimal")
    done = _bp(root, "build", "//:b", *flags, f"--disk_cache={tmp_path / 'c1'}")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "b.txt").read_text() == "from-a\nfrom-a\n"   # asked for
    assert not (root / "bp-bin" / "a.txt").exists()   # stayed on the server
    # a local action that reads it gets it first
    done = _bp(root, "build", "//:c", *flags, f"--disk_cache={tmp_path / 'c1'}")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "c.txt").read_text() == "from-a\n"
    assert (root / "bp-bin" / "a.txt").read_text() == "from-a\n"
    # and a build without the flag downloads everything again
    shutil.rmtree(root / "bp-out")
    done = _bp(root, "build", "//:b", f"--remote_executor={remote_cluster.endpoint}",
               f"--disk_cache={tmp_path / 'c2'}")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "a.txt").read_text() == "from-a\n"


def test_a_directory_input_is_laid_out_in_the_remote_input_root(remote_cluster, ws, tmp_path):
    """A tree artifact among an action's inputs reaches the worker file by file, its
    empty directories too, and the consumer's key changes with what is inside."""
    root = ws({
        "rules.bzl": """
            def _tree_impl(ctx):
                out = ctx.actions.declare_directory(ctx.label.name + ".d")
                ctx.actions.run_shell(outputs = [out], command = ctx.attr.cmd.replace(
                    "OUT", out.path))
                return [DefaultInfo(files = depset([out]))]

            tree = rule(implementation = _tree_impl, attrs = {"cmd": attr.string()})
        """,
        "BUILD": """
            load(":rules.bzl", "tree")
            tree(name = "t", cmd = "mkdir -p OUT/sub OUT/empty && echo one > OUT/sub/f")
            genrule(name = "ls", srcs = [":t"], outs = ["ls.txt"],
                    cmd = "cd $(location :t) && find . | sort > $$OLDPWD/$@ && cat sub/f >> $$OLDPWD/$@")
        """})
    flags = (f"--remote_executor={remote_cluster.endpoint}", f"--disk_cache={tmp_path / 'c'}")
    done = _bp(root, "build", "//:ls", *flags)
    assert done.returncode == 0, done.stderr
    assert "2 remote," in _counts(done.stderr), _counts(done.stderr)
    assert (root / "bp-bin" / "ls.txt").read_text() == \
        ".\n./empty\n./sub\n./sub/f\none\n"
    # an empty directory more inside the tree: the consumer runs again
    (root / "BUILD").write_text((root / "BUILD").read_text().replace(
        "OUT/empty", "OUT/empty OUT/more"))
    done = _bp(root, "build", "//:ls", *flags)
    assert done.returncode == 0, done.stderr
    assert "./more\n" in (root / "bp-bin" / "ls.txt").read_text()


class _ForgetfulServer(reapi_grpc.ExecutionServicer, reapi_grpc.ContentAddressableStorageServicer,
                       reapi_grpc.ActionCacheServicer):
    """A cache that has nothing, a CAS that keeps what it is sent, and an executor whose
    first Execute answers FAILED_PRECONDITION naming a blob as missing (lost since it
    was sent)."""

    def __init__(self, lost: reapi.Digest):
        self.lost, self.executes, self.uploaded = lost, 0, []

    def GetActionResult(self, request, context):
        context.abort(grpc.StatusCode.NOT_FOUND, "no result")

    def FindMissingBlobs(self, request, context):
        return reapi.FindMissingBlobsResponse(missing_blob_digests=request.blob_digests)

    def BatchUpdateBlobs(self, request, context):
        self.uploaded += [r.digest.hash for r in request.requests]
        return reapi.BatchUpdateBlobsResponse(responses=[
            reapi.BatchUpdateBlobsResponse.Response(digest=r.digest) for r in request.requests])

    def Execute(self, request, context):
        from buildgrid.common.protos.google.longrunning import operations_pb2
        from buildgrid.common.protos.google.rpc import code_pb2, error_details_pb2

        self.executes += 1
        response = reapi.ExecuteResponse(result=reapi.ActionResult(exit_code=0))
        if self.executes == 1:
            failure = error_details_pb2.PreconditionFailure()
            failure.violations.add(type="MISSING",
                                   subject=f"blobs/{self.lost.hash}/{self.lost.size_bytes}")
            response.status.code = code_pb2.FAILED_PRECONDITION
            response.status.details.add().Pack(failure)
        operation = operations_pb2.Operation(name=f"op-{self.executes}", done=True)
        operation.response.Pack(response)
        yield operation


def test_an_input_the_server_lost_is_sent_again_and_execute_retried(fake_server, tmp_path):
    from buildpy.actions.graph import Action, ActionKind
    from buildpy.actions.key import FileDigest, action_message
    from buildpy.remote.execution import RemoteBackend, RemoteOptions

    data = b"an input\n"
    (tmp_path / "in.txt").write_bytes(data)
    lost = reapi.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    service = _ForgetfulServer(lost)
    endpoint = fake_server(
        lambda s: reapi_grpc.add_ExecutionServicer_to_server(service, s),
        lambda s: reapi_grpc.add_ContentAddressableStorageServicer_to_server(service, s),
        lambda s: reapi_grpc.add_ActionCacheServicer_to_server(service, s))
    connection = Connection(parse_endpoint(endpoint, "--remote_executor"))
    backend = RemoteBackend(connection, RemoteOptions(executor=endpoint), tmp_path, 1 << 20,
                            lambda line: None)
    action = Action("//:a (x)", "//:a", "x", "Genrule", ActionKind.RUN, ("out.txt",),
                    inputs=("in.txt",), argv=("/bin/true",))
    files = {"in.txt": FileDigest(lost.hash, lost.size_bytes)}
    running = backend.start(action, action_message(action, files), files, {},
                            lambda cancel: SpawnResult(1))
    result = running.finish()
    backend.close()
    assert result.exit_code == 0 and result.error is None, result
    assert service.executes == 2
    assert service.uploaded.count(lost.hash) == 2   # before the first Execute, and again
