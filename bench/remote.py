"""Benchmarks bp's remote execution and caching on a local BuildGrid (docs/benchmarks.md).

    python bench/remote.py [--actions 400] [--jobs 8] [--packages 100] [--tests 24]
                           [--runs 5] [--out FILE.md]

It starts a private BuildGrid with PostgreSQL and `bp worker`s (buildpy.remote.cluster)
in a temporary directory and measures, in the same run:

- throughput on trivial actions with 2 workers: bp (`bp build --remote_executor`,
  --jobs) against a minimal client that only uploads each Action, calls Execute and
  reads the result, from as many threads as bp has jobs. Both send the same commands
  (the shell command and output path of bp's genrule) and both are timed as whole
  processes, their start included; the two take turns, and the ratio is the median of
  the runs' ratios;
- a fully remote-cached build of the generated P-package monorepo (bench/gen_monorepo.py):
  a fresh copy of the workspace and an empty local cache, every action a remote hit;
- `bp test --remote_executor` of a workspace of sleeping tests, with 1 worker then 2.

Knows the experiments and the minimal client; the cluster is buildpy's own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gen_monorepo import generate
from bench.peers import BenchError, remove, run, stats
from bench.table import Stat, format_stat


# ---- the minimal client ------------------------------------------------------------------

GENRULE_OUT = "bp-out/linux_x86_64-fastbuild/bin/pkg/g{index}.txt"


def minimal_client(endpoint: str, count: int, threads: int, nonce: str) -> None:
    """Runs `count` trivial actions through Execute from `threads` threads, with nothing
    but the calls REAPI needs. Each action is what bp sends for the genrule `g<i>` of
    `trivial_workspace`: bash runs `echo <nonce> <i> > $@` into the same output path."""
    import grpc
    from buildgrid.common.protos.build.bazel.remote.execution.v2 import (
        remote_execution_pb2 as reapi, remote_execution_pb2_grpc as reapi_grpc)
    from buildpy.actions.key import digest_of

    channel = grpc.insecure_channel(endpoint.removeprefix("grpc://"))
    cas = reapi_grpc.ContentAddressableStorageStub(channel)
    execution = reapi_grpc.ExecutionStub(channel)
    empty = reapi.Directory().SerializeToString()

    def one(index: int) -> None:
        out = GENRULE_OUT.format(index=index)
        command = reapi.Command(
            arguments=["/bin/bash", "-c", f"set -euo pipefail\necho {nonce} {index} > {out}",
                       ""],
            environment_variables=[reapi.Command.EnvironmentVariable(
                name="PATH", value="/usr/bin:/bin")],
            output_files=[out]).SerializeToString()
        action = reapi.Action(command_digest=digest_of(command),
                              input_root_digest=digest_of(empty)).SerializeToString()
        cas.BatchUpdateBlobs(reapi.BatchUpdateBlobsRequest(requests=[
            reapi.BatchUpdateBlobsRequest.Request(digest=digest_of(data), data=data)
            for data in (command, action, empty)]), timeout=60)
        request = reapi.ExecuteRequest(action_digest=digest_of(action), skip_cache_lookup=True)
        for operation in execution.Execute(request, timeout=300):
            if operation.done:
                response = reapi.ExecuteResponse()
                operation.response.Unpack(response)
                if response.result.exit_code != 0 or not response.result.output_files:
                    raise BenchError(f"the minimal client's action {index} failed: {response}")
                cas.BatchReadBlobs(reapi.BatchReadBlobsRequest(
                    digests=[response.result.output_files[0].digest]), timeout=60)
                return
        raise BenchError(f"the Execute stream of action {index} ended without a result")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(count)))
    channel.close()


def minimal_throughput(endpoint: str, count: int, threads: int, nonce: str) -> float:
    """The minimal client's actions/s, timed as a whole process (as bp is)."""
    start = time.perf_counter()
    run([sys.executable, __file__, "--minimal-client", endpoint, str(count), str(threads),
         nonce], Path.cwd())
    return count / (time.perf_counter() - start)


# ---- workspaces ---------------------------------------------------------------------------

def trivial_workspace(path: Path, count: int, nonce: str) -> None:
    """`count` independent genrules, each writing one line (nothing to read)."""
    remove(path)
    path.mkdir(parents=True)
    (path / "WORKSPACE").write_text('workspace(name = "remote_bench")\n')
    rules = "".join(f'genrule(name = "g{i}", outs = ["g{i}.txt"], '
                    f'cmd = "echo {nonce} {i} > $@")\n' for i in range(count))
    (path / "pkg").mkdir()
    (path / "pkg" / "BUILD").write_text(rules)


def test_workspace(path: Path, count: int, seconds: float, nonce: str) -> None:
    """`count` sh_tests that each sleep `seconds` (a test-heavy workload)."""
    remove(path)
    (path / "t").mkdir(parents=True)
    (path / "WORKSPACE").write_text('workspace(name = "remote_tests")\n')
    (path / "t" / "sleep.sh").write_text(f"#!/bin/sh\n# {nonce}\nsleep {seconds}\n")
    (path / "t" / "sleep.sh").chmod(0o755)
    (path / "t" / "BUILD").write_text("".join(
        f'sh_test(name = "t{i}", srcs = ["sleep.sh"], args = ["{i}"])\n'
        for i in range(count)))


# ---- bp -----------------------------------------------------------------------------------

def _summary(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("INFO:")]
    return lines[-1][6:] if lines else ""


def bp_timed(bp: str, args: list[str], workspace: Path, env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    done = run([bp, "--nohome_rc", *args, "--curses=no", "--color=no"], workspace, env)
    return time.perf_counter() - start, _summary(done.stderr.decode(errors="replace"))


def bp_throughput(bp: str, endpoint: str, scratch: Path, count: int, jobs: int, nonce: str,
                  env: dict) -> tuple[float, str]:
    workspace = scratch / "ws-trivial"
    trivial_workspace(workspace, count, nonce)
    cache = scratch / f"cache-{nonce}"
    seconds, summary = bp_timed(bp, ["build", "//...", f"--jobs={jobs}",
                                     f"--remote_executor={endpoint}",
                                     f"--disk_cache={cache}"], workspace, env)
    return count / seconds, summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--minimal-client"]:   # the minimal client, in a process of its own
        endpoint, count, threads, nonce = argv[1:5]
        minimal_client(endpoint, int(count), int(threads), nonce)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=400, help="trivial actions per run")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--packages", type=int, default=100, help="P of the cached build")
    parser.add_argument("--tests", type=int, default=24)
    parser.add_argument("--test-seconds", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bp", default=str(Path(sys.executable).with_name("bp")))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    from buildpy.remote.cluster import Cluster

    say = lambda line: print(line, file=sys.stderr, flush=True)   # noqa: E731
    scratch = Path(tempfile.mkdtemp(prefix="bp-remote-bench-"))
    env = dict(os.environ, XDG_CACHE_HOME=str(scratch / "xdg"))
    lines: list[str] = []
    cluster = Cluster(scratch / "cluster", workers=2)
    try:
        say("starting BuildGrid, PostgreSQL and 2 workers...")
        cluster.start()
        endpoint = cluster.endpoint
        minimal, ours, ratios = [], [], []
        for run_index in range(args.runs):   # the two clients take turns
            nonce = f"{time.time_ns()}"
            minimal.append(minimal_throughput(endpoint, args.actions, args.jobs, "m" + nonce))
            rate, summary = bp_throughput(args.bp, endpoint, scratch, args.actions, args.jobs,
                                          "b" + nonce, env)
            ours.append(rate)
            ratios.append(rate / minimal[-1])
            say(f"  run {run_index + 1}: minimal client {minimal[-1]:.1f} actions/s, "
                f"bp {rate:.1f} actions/s ({summary})")
        ratio = stats(ratios, "x")
        lines.append(f"| trivial actions, 2 workers, --jobs={args.jobs} | "
                     f"{_rate(stats(ours, 'actions/s'))} | "
                     f"{_rate(stats(minimal, 'actions/s'))} | "
                     f"{ratio.median:.2f}x of the minimal client ({ratio.low:.2f}-"
                     f"{ratio.high:.2f}; goal >= 0.90) |")

        workspace = scratch / "ws-cached"
        generate(workspace, args.packages, 10, 0)
        populate = ["build", "//...", "--jobs=2", f"--remote_cache={endpoint}",
                    f"--disk_cache={scratch / 'cache-populate'}"]
        bp_timed(args.bp, populate, workspace, env)
        rates, hit_rates = [], []
        for run_index in range(args.runs):
            copy = scratch / f"ws-cached-{run_index}"
            shutil.copytree(workspace, copy, ignore=shutil.ignore_patterns("bp-out", "bp-bin"),
                            symlinks=True)
            seconds, summary = bp_timed(
                args.bp, ["build", "//...", f"--jobs={args.jobs}", f"--remote_cache={endpoint}",
                          f"--disk_cache={scratch / f'cache-fresh-{run_index}'}"], copy, env)
            actions = int(summary.split()[0]) if summary[:1].isdigit() else 0
            hits = int(summary.split("(")[1].split()[0]) if "(" in summary else 0
            rates.append(actions / seconds)
            hit_rates.append(hits / seconds)
            say(f"  cached build {run_index + 1}: {seconds:.2f} s ({summary})")
            remove(copy)
        cached = stats(rates, "actions/s")
        lines.append(f"| fully remote-cached build, P={args.packages}, every action | "
                     f"{_rate(cached)} | - | goal >= 200 actions/s |")
        lines.append(f"| the same, remote cache hits only | "
                     f"{_rate(stats(hit_rates, 'actions/s'))} | - | (the rest: files, links "
                     "and runfiles trees bp writes itself) |")

        durations = {}
        for workers in (1, 2):
            if workers == 2:
                cluster.add_worker()
            else:
                cluster.kill_worker(1)   # one worker left
            samples = []
            for run_index in range(args.runs):
                nonce = f"{workers}-{run_index}-{time.time_ns()}"
                workspace = scratch / "ws-tests"
                test_workspace(workspace, args.tests, args.test_seconds, nonce)
                seconds, summary = bp_timed(
                    args.bp, ["test", "//...", f"--jobs={args.jobs}",
                              f"--remote_executor={endpoint}",
                              f"--disk_cache={scratch / f'cache-t{nonce}'}"], workspace, env)
                samples.append(seconds)
                say(f"  bp test, {workers} worker(s), run {run_index + 1}: {seconds:.2f} s")
            durations[workers] = stats(samples)
        lines.append(f"| `bp test` of {args.tests} tests sleeping {args.test_seconds:g} s | "
                     f"2 workers {format_stat(durations[2])} | 1 worker "
                     f"{format_stat(durations[1])} | speedup "
                     f"{durations[1].median / durations[2].median:.2f}x |")
    finally:
        cluster.stop()
        if not args.keep:
            remove(scratch)
    report = "\n".join(["| figure | bp | peer | ratio |", "|---|---|---|---|", *lines]) + "\n"
    print(report)
    if args.out is not None:
        args.out.write_text(report)
    return 0


def _rate(stat: Stat) -> str:
    return f"{stat.median:.1f} actions/s ({stat.low:.1f}-{stat.high:.1f})"


if __name__ == "__main__":
    sys.exit(main())
