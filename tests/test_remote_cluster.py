"""A real BuildGrid cluster: it comes up, answers REAPI, stops without leftovers, reaps dead runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import grpc
import pytest
from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi,
    remote_execution_pb2_grpc,
)

from buildpy.remote import cluster as cluster_module
from buildpy.remote.cluster import Cluster, Recorded, buildgrid_venv, local_endpoint
from tests.remote_cluster import BUILDGRID_CACHE, start_cluster

REPO = Path(__file__).resolve().parent.parent


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` runs (zombies wait for init here: they are dead)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def test_the_cluster_answers_get_capabilities_with_sha256(remote_cluster):
    assert remote_cluster.endpoint.startswith("grpc://127.0.0.1:")
    channel = grpc.insecure_channel(remote_cluster.endpoint.removeprefix("grpc://"))
    try:
        stub = remote_execution_pb2_grpc.CapabilitiesStub(channel)
        answer = stub.GetCapabilities(reapi.GetCapabilitiesRequest(instance_name=""), timeout=10)
    finally:
        channel.close()
    assert list(answer.cache_capabilities.digest_function) == [reapi.DigestFunction.SHA256]
    assert answer.cache_capabilities.action_cache_update_capabilities.update_enabled
    assert answer.execution_capabilities.exec_enabled
    assert answer.execution_capabilities.digest_function == reapi.DigestFunction.SHA256


def test_the_cluster_records_its_processes_and_logs(remote_cluster):
    recorded = Recorded.read(remote_cluster.directory)
    assert recorded.owner_alive is True   # this pytest owns it
    assert recorded.endpoint == remote_cluster.endpoint
    names = [p.name for p in recorded.processes]
    assert names[:2] == ["postgres", "bgd"]
    assert all(p.alive() for p in recorded.processes[:2])
    # other tests of the session may have killed and replaced workers
    assert {p.pid for p in remote_cluster.worker_processes if p is not None} <= \
        {p.pid for p in recorded.processes[2:]}
    for log in ("postgres.log", "bgd.log", "migrate.log"):
        assert (remote_cluster.directory / log).is_file()


# A "test run" that starts a cluster, says so, and waits to be killed with -9.
DOOMED_RUN = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from buildpy.remote.cluster import Cluster
    cluster = Cluster(Path(sys.argv[1]), workers=int(sys.argv[2]), cache_dir=Path(sys.argv[3]))
    cluster.start()
    print(json.dumps([p.pid for p in cluster.processes()]), flush=True)
    time.sleep(600)
""")


def test_a_new_start_reaps_a_killed_run_and_stop_leaves_no_process(tmp_path):
    parent = tmp_path / "clusters"
    parent.mkdir()
    workers = 1
    doomed = subprocess.Popen([sys.executable, "-c", DOOMED_RUN, str(parent / "doomed"),
                               str(workers), str(BUILDGRID_CACHE)], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        line = doomed.stdout.readline()   # bounded: the cluster's start() times out
        left = json.loads(line)
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=30)
    assert len(left) == 2 + workers
    assert all(_group_alive(pid) for pid in left)   # kill -9 left the cluster running

    cluster = start_cluster(parent=parent, workers=workers)
    try:
        assert not any(_group_alive(pid) for pid in left)
        assert not (parent / "doomed").exists()
        mine = [p.pid for p in cluster.processes()]
        assert all(_group_alive(pid) for pid in mine)
    finally:
        cluster.stop()
    assert not any(_group_alive(pid) for pid in mine)
    assert (cluster.directory / "bgd.log").is_file()   # the logs stay for debugging
    assert not cluster.pgdata.exists() or cluster.pgdata.is_relative_to(cluster.directory)
    cluster.stop()   # idempotent


def test_local_endpoint_is_none_without_a_running_cluster(tmp_path):
    assert local_endpoint(tmp_path) is None
    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "cluster.json").write_text(json.dumps({
        "owner": None, "endpoint": "grpc://127.0.0.1:1", "processes": [
            {"name": "bgd", "pid": 2 ** 22 + 1, "started": "1"}]}))
    assert local_endpoint(tmp_path) is None   # its server is gone


def test_buildgrid_is_installed_once_by_racing_installers(tmp_path, monkeypatch):
    calls = []

    def fake_run(argv, what):
        calls.append(what)
        time.sleep(0.2)   # long enough for the other installer to be waiting on the lock
        if "venv" in argv:
            Path(argv[-1], "bin").mkdir(parents=True)

    monkeypatch.setattr(cluster_module, "_run", fake_run)
    found, said = [], []
    threads = [threading.Thread(target=lambda: found.append(buildgrid_venv(tmp_path, said.append)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    venv = tmp_path / "buildgrid" / f"venv-{cluster_module.BUILDGRID_VERSION}"
    assert found == [venv, venv]
    assert len(calls) == 2 and len(said) == 1   # one venv, one pip install, one progress line
    assert said[0].startswith("installing BuildGrid 0.4.4 into ")
    assert sorted(p.name for p in (tmp_path / "buildgrid").iterdir()) == sorted(
        ["install.lock", venv.name])


def test_a_failed_install_leaves_nothing_half_done(tmp_path, monkeypatch):
    def failing_run(argv, what):
        if "venv" in argv:
            Path(argv[-1], "bin").mkdir(parents=True)
            return
        raise cluster_module.EnvError(f"could not {what} (exit 1):\nno network")

    monkeypatch.setattr(cluster_module, "_run", failing_run)
    with pytest.raises(cluster_module.EnvError, match="could not install BuildGrid"):
        buildgrid_venv(tmp_path, lambda message: None)
    assert sorted(p.name for p in (tmp_path / "buildgrid").iterdir()) == ["install.lock"]


def test_a_cluster_without_postgresql_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster_module, "_pg_bin", lambda name: None)
    monkeypatch.setattr(cluster_module, "buildgrid_venv", lambda cache, say: tmp_path / "venv")
    cluster = Cluster(tmp_path / "c", workers=0, cache_dir=tmp_path)
    with pytest.raises(cluster_module.EnvError) as error:
        cluster.start()
    assert error.value.render() == (
        "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin); "
        "BuildGrid's scheduler needs it\nhint: install it: apt-get install postgresql")


# ---------------------------------------------------------------- bp remote up/status/down


def _queue_a_job_no_bot_takes(endpoint: str) -> None:
    """Execute an action for a platform no bot has: its job stays queued."""
    from buildpy.actions.key import digest_of

    platform = reapi.Platform(properties=[reapi.Platform.Property(name="ISA", value="none")])
    command = reapi.Command(arguments=["true"], platform=platform).SerializeToString()
    empty = reapi.Directory().SerializeToString()
    action = reapi.Action(command_digest=digest_of(command), input_root_digest=digest_of(empty),
                          platform=platform).SerializeToString()
    channel = grpc.insecure_channel(endpoint.removeprefix("grpc://"))
    try:
        cas = remote_execution_pb2_grpc.ContentAddressableStorageStub(channel)
        cas.BatchUpdateBlobs(reapi.BatchUpdateBlobsRequest(requests=[
            reapi.BatchUpdateBlobsRequest.Request(digest=digest_of(blob), data=blob)
            for blob in (command, action)]), timeout=10)
        stream = remote_execution_pb2_grpc.ExecutionStub(channel).Execute(
            reapi.ExecuteRequest(action_digest=digest_of(action), skip_cache_lookup=True),
            timeout=10)
        next(stream)   # the operation exists; leaving does not cancel it
        stream.cancel()
    finally:
        channel.close()


def test_bp_remote_up_status_down(remote_cluster, tmp_path):
    """Real `bp` processes with a cache of their own (BuildGrid's venv shared, not reinstalled)."""
    cache = tmp_path / "xdg"
    (cache / "bp").mkdir(parents=True)
    (cache / "bp" / "buildgrid").symlink_to(remote_cluster.cache_dir / "buildgrid")
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "HOME": str(tmp_path)}
    workers = 1

    def bp(*args):
        return subprocess.run([sys.executable, "-m", "buildpy", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=180)

    assert bp("remote", "status").returncode == 3
    try:
        up = bp("remote", "up", "--workers", str(workers))
        assert up.returncode == 0, up.stderr
        endpoint = local_endpoint(cache / "bp")
        assert endpoint is not None and endpoint.startswith("grpc://127.0.0.1:")
        assert up.stdout.splitlines() == [
            f"bp remote: up at {endpoint} ({workers} workers; logs in {cache / 'bp' / 'remote'})",
            f"use it with: bp build --remote //...  (or --remote_executor={endpoint})",
            "stop it with: bp remote down"]
        again = bp("remote", "up")   # idempotent: the same cluster
        assert again.returncode == 0
        assert again.stdout.splitlines()[0] == f"bp remote: already up at {endpoint}"

        status = bp("remote", "status")
        assert status.returncode == 0
        lines = status.stdout.splitlines()
        assert lines[0] == f"bp remote: up at {endpoint}"
        assert [line.split()[0] for line in lines[1:-2]] == \
            ["postgres", "bgd"] + [f"worker-{i}" for i in range(workers)]
        assert all(line.endswith("running") for line in lines[1:-2])
        assert lines[-2:] == ["  jobs: 0 queued, 0 executing",
                              f"  logs in {cache / 'bp' / 'remote'}"]
        _queue_a_job_no_bot_takes(endpoint)
        assert "  jobs: 1 queued, 0 executing" in bp("remote", "status").stdout.splitlines()
        pids = [int(line.split()[2]) for line in lines[1:-2]]
    finally:
        down = bp("remote", "down")
    assert down.returncode == 0
    assert down.stdout == (f"bp remote: down (stopped {2 + workers} processes; logs in "
                           f"{cache / 'bp' / 'remote'})\n")
    assert not any(_group_alive(pid) for pid in pids)
    assert local_endpoint(cache / "bp") is None
    gone = bp("remote", "status")
    assert (gone.returncode, gone.stdout) == (3, "bp remote: down (start it with: bp remote up)\n")
    assert bp("remote", "down").stdout == "bp remote: was not running\n"
