"""A private remote-execution cluster on this machine: PostgreSQL, BuildGrid's `bgd` and `bp worker`s.

It installs BuildGrid into its own virtual environment, starts, watches and stops processes,
and records them in `cluster.json` so that a cluster whose owner died can be reaped. It does
not speak REAPI beyond a readiness probe, and knows nothing of builds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from buildpy.core.errors import EnvError

BUILDGRID_VERSION = "0.4.4"
STATE_FILE = "cluster.json"
_COMPLETE = "bp-install-complete"   # written last into a venv being installed


# ---------------------------------------------------------------- BuildGrid's venv


def buildgrid_venv(cache_dir: Path, say: Callable[[str], None]) -> Path:
    """Install BuildGrid once under `cache_dir/buildgrid/` (locked, atomic); its venv dir."""
    root = Path(cache_dir) / "buildgrid"
    venv = root / f"venv-{BUILDGRID_VERSION}"
    if (venv / _COMPLETE).is_file():
        return venv
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "install.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # a second installer waits, then finds it done
        if (venv / _COMPLETE).is_file():
            return venv
        say(f"installing BuildGrid {BUILDGRID_VERSION} into {venv} (once, about 30 s)")
        scratch = Path(tempfile.mkdtemp(prefix=".venv-", dir=root))
        try:
            _run([sys.executable, "-m", "venv", str(scratch)], "create a virtualenv")
            _run([str(scratch / "bin" / "python"), "-m", "pip", "install", "--quiet",
                  "--disable-pip-version-check", f"buildgrid=={BUILDGRID_VERSION}",
                  "psycopg2-binary"], f"install BuildGrid {BUILDGRID_VERSION}")
            (scratch / _COMPLETE).write_text(f"buildgrid {BUILDGRID_VERSION}\n")
            if venv.exists():   # a half-finished install of an older bp: never used
                shutil.rmtree(venv)
            os.rename(scratch, venv)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return venv


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-15:])
        raise EnvError(f"could not {what} (exit {done.returncode}):\n{tail}",
                       hint="check the network or the package index pip uses, then retry")


def _bgd(venv: Path) -> list[str]:
    # The venv was renamed after its install, so its scripts' shebangs point nowhere:
    # run BuildGrid's CLI through the venv's interpreter instead.
    return [str(venv / "bin" / "python"), "-c",
            "import sys; from buildgrid.server.app import cli; sys.exit(cli())"]


# ---------------------------------------------------------------- PostgreSQL


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (directory / name).is_file():
            return str(directory / name)
    return None


def postgres_available() -> bool:
    return _pg_bin("initdb") is not None and _pg_bin("postgres") is not None


def _as_postgres() -> list[str]:
    """The prefix that drops root to the `postgres` user (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class Process:
    """One process the cluster started, in its own session (pid = process group id)."""
    name: str
    pid: int
    started: str   # /proc start time, so a reused pid is never taken for ours

    def alive(self) -> bool:
        return _start_time(self.pid) == self.started

    def to_json(self) -> dict:
        return {"name": self.name, "pid": self.pid, "started": self.started}


def _start_time(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    if fields[0] == "Z":   # a zombie is dead
        return None
    return fields[19]


def _kill(processes: Sequence[Process], first: int = signal.SIGTERM, wait: float = 10.0,
          popens: dict | None = None) -> None:
    """Signal each process group, wait (bounded) for the leaders, then SIGKILL the groups."""
    live = [p for p in processes if p.alive()]
    for process in live:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, first)
    deadline = time.monotonic() + wait
    while live and time.monotonic() < deadline:
        for process in live:
            _reap(process, popens)
        live = [p for p in live if p.alive()]
        if live:
            time.sleep(0.05)
    for process in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)   # also any child left in the group
    for process in processes:
        _reap(process, popens, block=True)


def _reap(process: Process, popens: dict | None, block: bool = False) -> None:
    popen = (popens or {}).get(process.pid)
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=5 if block else 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path.name})"


def _health(target: str, timeout: float) -> bool:
    """One gRPC health check on a fresh channel (a reused one backs off between tries)."""
    import grpc
    channel = grpc.insecure_channel(target)
    try:
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda _: b"",
                                    response_deserializer=lambda data: data)
        return check(None, timeout=timeout) == b"\x08\x01"   # status: SERVING
    except grpc.RpcError:
        return False
    finally:
        channel.close()


# ---------------------------------------------------------------- the cluster


class Cluster:
    """PostgreSQL, one `bgd` server and N `bp worker`s, with state and logs in `directory`."""

    def __init__(self, directory: Path, *, instance: str = "", workers: int = 2,
                 cache_dir: Path | None = None, worker_args: Sequence[str] = (),
                 say: Callable[[str], None] = lambda message: None):
        from buildpy.execution.local import default_cache_dir
        self.directory = Path(directory).resolve()
        self.instance = instance
        self.workers = workers
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.worker_args = tuple(worker_args)
        self.say = say
        self.port = 0
        self.endpoint = ""
        self.pgdata: Path | None = None
        self.postgres: Process | None = None
        self.server: Process | None = None
        self.worker_processes: list[Process | None] = []
        self._popens: dict[int, subprocess.Popen] = {}
        self._venv: Path | None = None

    # -- lifecycle

    def start(self, timeout: float = 120.0) -> None:
        """Start PostgreSQL, migrate its schema, start bgd, then the workers; bounded waits."""
        deadline = time.monotonic() + timeout
        self.directory.mkdir(parents=True, exist_ok=True)
        self._venv = buildgrid_venv(self.cache_dir, self.say)
        try:
            self._start_postgres(deadline)
            self._migrate(deadline)
            self.port = _free_port()
            self.endpoint = f"grpc://127.0.0.1:{self.port}"
            self._write_config()
            self.start_server(timeout=max(1.0, deadline - time.monotonic()))
            for _ in range(self.workers):
                self.add_worker()
            self._wait_for_workers(deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill every process of the cluster (workers, bgd, then PostgreSQL); idempotent."""
        workers = [p for p in self.worker_processes if p is not None]
        _kill(workers, signal.SIGTERM, 10.0, self._popens)
        if self.server:
            _kill([self.server], signal.SIGTERM, 10.0, self._popens)
        if self.postgres:   # SIGINT: PostgreSQL's fast shutdown (SIGTERM waits for clients)
            _kill([self.postgres], signal.SIGINT, 10.0, self._popens)
        if self.pgdata is not None and not self.pgdata.is_relative_to(self.directory):
            shutil.rmtree(self.pgdata, ignore_errors=True)   # a scratch copy outside the logs
        self._save(stopped=True)

    def processes(self) -> list[Process]:
        found = [self.postgres, self.server, *self.worker_processes]
        return [p for p in found if p is not None]

    # -- the server, for fault tests

    def start_server(self, timeout: float = 60.0) -> None:
        """Start bgd on this cluster's port and wait until it answers health checks."""
        assert self._venv is not None and self.port, "start() the cluster first"
        log = self.directory / "bgd.log"
        self.server = self._spawn("bgd", [*_bgd(self._venv), "server", "start", "-v",
                                          str(self.directory / "bgd.yml")], log)
        self._save()
        deadline = time.monotonic() + timeout
        while True:
            if _health(f"127.0.0.1:{self.port}", timeout=1.0):
                return
            if not self.server.alive():
                raise EnvError(f"BuildGrid's server exited while starting; the end of {log}:\n"
                               f"{_tail(log)}", hint="see the whole log for the cause")
            if time.monotonic() > deadline:
                raise EnvError(f"BuildGrid's server did not answer health checks on "
                               f"127.0.0.1:{self.port} within {timeout:.0f} s; the end of "
                               f"{log}:\n{_tail(log)}", hint="see the whole log for the cause")
            time.sleep(0.1)

    def stop_server(self) -> None:
        if self.server:
            _kill([self.server], signal.SIGTERM, 10.0, self._popens)
        self._save()

    # -- workers

    def add_worker(self, *extra_args: str) -> subprocess.Popen:
        """Start one more `bp worker` serving this cluster; its log is worker-I.log."""
        index = len(self.worker_processes)
        work_dir = self.directory / f"worker-{index}"
        work_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "buildpy", "worker", "--server", self.endpoint,
                "--instance", self.instance, "--bot-id", f"bp-worker-{index}",
                "--work-dir", str(work_dir), *self.worker_args, *extra_args]
        process = self._spawn(f"worker-{index}", argv, self.directory / f"worker-{index}.log")
        self.worker_processes.append(process)
        self._save()
        return self._popens[process.pid]

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker `index` (a crash, for fault tests)."""
        process = self.worker_processes[index]
        if process is not None:
            _kill([process], signal.SIGKILL, 5.0, self._popens)
            self.worker_processes[index] = None
            self._save()

    def _wait_for_workers(self, deadline: float) -> None:
        for index, process in enumerate(self.worker_processes):
            log = self.directory / f"worker-{index}.log"
            while process is not None and "serving" not in _tail(log, 50):
                if not process.alive():
                    raise EnvError(f"bp worker {index} exited while starting; the end of "
                                   f"{log}:\n{_tail(log)}", hint="see the whole log")
                if time.monotonic() > deadline:
                    raise EnvError(f"bp worker {index} did not start in time; the end of "
                                   f"{log}:\n{_tail(log)}", hint="see the whole log")
                time.sleep(0.05)

    # -- PostgreSQL and the server's configuration

    def _start_postgres(self, deadline: float) -> None:
        initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
        if not initdb or not postgres:
            raise EnvError("PostgreSQL is not installed (no initdb on PATH or in "
                           "/usr/lib/postgresql/*/bin); BuildGrid's scheduler needs it",
                           hint="install it: apt-get install postgresql")
        if os.geteuid() == 0:
            # The `postgres` user may not reach `directory` (under /root, or a 0700 tmp dir):
            # its data and socket live in a scratch directory of its own.
            self.pgdata = Path(tempfile.mkdtemp(prefix="bp-pg-"))
            shutil.chown(self.pgdata, "postgres", "postgres")
        else:
            self.pgdata = self.directory / "pg"
            self.pgdata.mkdir(mode=0o700)
        self._save()
        data = self.pgdata / "data"
        log = self.directory / "postgres.log"
        with open(self.directory / "initdb.log", "w") as out:
            done = subprocess.run([*_as_postgres(), initdb, "-D", str(data), "-U", "postgres",
                                   "--auth=trust", "--no-sync", "-E", "UTF8"],
                                  stdout=out, stderr=subprocess.STDOUT, cwd=self.pgdata)
        if done.returncode != 0:
            raise EnvError(f"initdb failed (exit {done.returncode}); the end of "
                           f"{self.directory / 'initdb.log'}:\n"
                           f"{_tail(self.directory / 'initdb.log')}", hint="see the whole log")
        self.postgres = self._spawn("postgres", [
            *_as_postgres(), postgres, "-D", str(data), "-k", str(self.pgdata),
            "-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off", "-c", "max_connections=200"], log, cwd=self.pgdata)
        self._save()
        pid_file = data / "postmaster.pid"
        while True:   # its last line says "ready" once it accepts connections
            with contextlib.suppress(OSError):
                if pid_file.read_text().rstrip("\n").split("\n")[-1].strip() == "ready":
                    return
            if not self.postgres.alive() or time.monotonic() > deadline:
                raise EnvError(f"PostgreSQL did not start; the end of {log}:\n{_tail(log)}",
                               hint="see the whole log for the cause")
            time.sleep(0.05)

    def sql_url(self) -> str:
        return f"postgresql+psycopg2:///postgres?host={self.pgdata}&user=postgres"

    def _migrate(self, deadline: float) -> None:
        assert self._venv is not None
        log = self.directory / "migrate.log"
        with open(log, "w") as out:
            done = subprocess.run([*_bgd(self._venv), "migrate", "apply", self.sql_url()],
                                  stdout=out, stderr=subprocess.STDOUT,
                                  timeout=max(1.0, deadline - time.monotonic()))
        if done.returncode != 0:
            raise EnvError(f"bgd migrate apply failed (exit {done.returncode}); the end of "
                           f"{log}:\n{_tail(log)}", hint="see the whole log")

    def _write_config(self) -> None:
        (self.directory / "bgd.yml").write_text(server_config(
            port=self.port, sql_url=self.sql_url(), instance=self.instance))

    # -- processes and the state file

    def _spawn(self, name: str, argv: list[str], log: Path, cwd: Path | None = None) -> Process:
        with open(log, "ab") as out:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     cwd=cwd or self.directory, start_new_session=True)
        self._popens[popen.pid] = popen
        return Process(name, popen.pid, _start_time(popen.pid) or "")

    def _save(self, stopped: bool = False) -> None:
        if not self.directory.is_dir():   # stop() before start()
            return
        state = {
            "owner": {"pid": os.getpid(), "started": _start_time(os.getpid())},
            "endpoint": self.endpoint, "instance": self.instance,
            "pgdata": str(self.pgdata) if self.pgdata else None, "stopped": stopped,
            "processes": [p.to_json() for p in self.processes()],
        }
        path = self.directory / STATE_FILE
        scratch = path.with_name(f".{STATE_FILE}.tmp")
        scratch.write_text(json.dumps(state, indent=1) + "\n")
        os.replace(scratch, path)

    def detach(self) -> None:
        """Leave the processes running after this one exits (`bp remote up`)."""
        state = json.loads((self.directory / STATE_FILE).read_text())
        state["owner"] = None
        (self.directory / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")


def server_config(*, port: int, sql_url: str, instance: str) -> str:
    """bgd's YAML: loopback channel, SQL scheduler with fast polling, in-memory CAS and cache."""
    return f"""\
description: a private BuildGrid started by bp
server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
thread-pool-size: 96
connections:
  - !sql-connection &sql
    connection-string: {json.dumps(sql_url)}
    pool-size: 10
    max-overflow: 40
storages:
  - !lru-storage &cas
    size: 2048M
caches:
  - !lru-action-cache &action-cache
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    storage: *cas
    action-cache: *action-cache
    property-set: !dynamic-property-set
      match-property-keys: [OSFamily, ISA]
    poll-interval: 0.05
    bot-poll-interval: 0.05
    bot-session-keepalive-timeout: 10
    session-expiry-timer-interval: 1
    assigners:
      - !priority-age-assigner
        interval: 0.05
        jitter-factor: 0
        busy-sleep-factor: 0
instances:
  - name: {json.dumps(instance)}
    services:
      - !execution
        scheduler: *scheduler
      - !action-cache
        cache: *action-cache
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
"""


# ---------------------------------------------------------------- clusters left behind


@dataclass(frozen=True)
class Recorded:
    """A cluster as its `cluster.json` describes it."""
    directory: Path
    endpoint: str
    owner_alive: bool | None   # None: detached (`bp remote up`)
    processes: tuple[Process, ...]
    pgdata: str | None

    @staticmethod
    def read(directory: Path) -> Recorded | None:
        try:
            state = json.loads((Path(directory) / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        owner = state.get("owner")
        owner_alive = None if owner is None else _start_time(owner["pid"]) == owner["started"]
        processes = tuple(Process(p["name"], p["pid"], p["started"])
                          for p in state.get("processes", ()))
        return Recorded(Path(directory), state.get("endpoint", ""), owner_alive, processes,
                        state.get("pgdata"))

    def server_alive(self) -> bool:
        return any(p.name == "bgd" and p.alive() for p in self.processes)

    def kill(self) -> None:
        order = {"postgres": 2, "bgd": 1}
        for process in sorted(self.processes, key=lambda p: order.get(p.name, 0)):
            _kill([process], signal.SIGINT if process.name == "postgres" else signal.SIGTERM,
                  10.0)
        if self.pgdata and not Path(self.pgdata).is_relative_to(self.directory):
            shutil.rmtree(self.pgdata, ignore_errors=True)


def reap_abandoned(parent: Path) -> list[Path]:
    """Kill clusters under `parent` whose owning process died; remove their directories."""
    reaped = []
    for state in sorted(Path(parent).glob(f"*/{STATE_FILE}")):
        recorded = Recorded.read(state.parent)
        if recorded is None or recorded.owner_alive is not False:
            continue
        recorded.kill()
        shutil.rmtree(recorded.directory, ignore_errors=True)
        reaped.append(recorded.directory)
    return reaped


def local_directory(cache_dir: Path) -> Path:
    return Path(cache_dir) / "remote"


def local_endpoint(cache_dir: Path) -> str | None:
    """The endpoint of the cluster `bp remote up` started, while its server runs; else None."""
    recorded = Recorded.read(local_directory(cache_dir))
    if recorded is None or not recorded.server_alive():
        return None
    return recorded.endpoint


# ---------------------------------------------------------------- `bp remote up/status/down`


@dataclass(frozen=True)
class Status:
    """What `bp remote status` reports about the cluster `bp remote up` started."""
    directory: Path
    endpoint: str
    up: bool                                   # its server runs
    processes: tuple[tuple[str, int, bool], ...]   # (name, pid, alive)
    jobs: tuple[int, int] | None = None        # (queued, executing); None: not known


@contextlib.contextmanager
def _local_lock(cache_dir: Path):
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(cache_dir) / "remote.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # one `bp remote up/down` at a time
        yield


def local_up(cache_dir: Path, workers: int, say: Callable[[str], None]) -> tuple[str, bool]:
    """Start the local cluster detached, unless it runs: (its endpoint, whether it ran)."""
    directory = local_directory(cache_dir)
    with _local_lock(cache_dir):
        recorded = Recorded.read(directory)
        if recorded is not None and recorded.server_alive():
            return recorded.endpoint, True
        if recorded is not None:
            recorded.kill()   # what a crashed cluster left
        shutil.rmtree(directory, ignore_errors=True)
        cluster = Cluster(directory, workers=workers, cache_dir=cache_dir, say=say)
        cluster.start()
        cluster.detach()
        return cluster.endpoint, False


def local_status(cache_dir: Path) -> Status | None:
    """The local cluster's state; None when `bp remote up` never ran (or `down` cleared it)."""
    recorded = Recorded.read(local_directory(cache_dir))
    if recorded is None:
        return None
    processes = tuple((p.name, p.pid, p.alive()) for p in recorded.processes)
    up = recorded.server_alive()
    return Status(recorded.directory, recorded.endpoint, up, processes,
                  _jobs(recorded.pgdata) if up else None)


def _jobs(pgdata: str | None) -> tuple[int, int] | None:
    """How many of the scheduler's jobs are queued and executing (a query of its database)."""
    psql = _pg_bin("psql")
    if psql is None or pgdata is None:
        return None
    query = ("SELECT count(*) FILTER (WHERE stage = 2), count(*) FILTER (WHERE stage = 3) "
             "FROM jobs")   # BuildGrid's OperationStage: QUEUED = 2, EXECUTING = 3
    try:
        done = subprocess.run([psql, "-h", pgdata, "-U", "postgres", "-d", "postgres", "-tAc",
                               query], capture_output=True, text=True, timeout=5)
        queued, executing = done.stdout.strip().split("|")
        return int(queued), int(executing)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None


def local_down(cache_dir: Path) -> Status | None:
    """Stop every process of the local cluster; what ran before, or None if nothing did."""
    with _local_lock(cache_dir):
        before = local_status(cache_dir)
        recorded = Recorded.read(local_directory(cache_dir))
        if recorded is None:
            return None
        recorded.kill()
        (recorded.directory / STATE_FILE).unlink()   # the logs stay for a look
        return before
