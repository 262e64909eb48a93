"""A build stopped by a signal (INT, TERM, HUP, KILL) at a random moment leaves no process
behind, and the next build's outputs equal a from-scratch build's, byte for byte.

Each round edits a few sources of a generated workspace (a DAG of ~150 genrules, some of
which leave a `setsid` daemon), starts `bp build //...` in a session of its own, waits
until its actions run, waits a random moment more, sends the signal, and checks. The
seed fixes the edits, the signals and the delays: CI runs `BP_FAULT_ROUNDS` (3) rounds
with seed 69; `BP_FAULT_ROUNDS=50 pytest tests/test_faults.py` runs more with a random
seed (printed; `BP_FAULT_SEED` replays it).

Each round picks a strategy too. After bp's own SIGKILL, nothing of bp can run: under
`linux-sandbox` every action dies with its bubblewrap (`--die-with-parent`, and a pid
namespace of its own), so nothing may remain. Under `local` and `sandboxed` the actions
that were running go on to their end (each in its own process group), and their
`setsid` daemons, which had bp as their subreaper (bp kills them when their action
ends), go to init. The next bp command kills the groups its journal says were running;
the daemons outlive it (only a cgroup would hold them), so the test asserts that the
survivors are such daemons, and kills them.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.gen_monorepo import plan
from buildpy.execution.sandbox import LinuxSandboxStrategy
from tests import differential

MARKER = "BP_FAULT_TREE"   # in the environment of every process an action starts
ROUNDS = int(os.environ.get("BP_FAULT_ROUNDS", "3"))
CI_SEED = 69   # its 3 rounds: KILL (sandboxed), TERM early (linux-sandbox), INT to the group
SEED = int(os.environ.get("BP_FAULT_SEED") or
           (CI_SEED if "BP_FAULT_ROUNDS" not in os.environ
            else random.SystemRandom().randrange(2**32)))
PACKAGES, TARGETS = 5, 30
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)
STRATEGIES = ("local", "sandboxed") + (
    ("linux-sandbox",) if LinuxSandboxStrategy.available()[0] else ())


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_workspace(root: Path, token: str, seed: int) -> None:
    """The DAG of bench/gen_monorepo.py, with commands that mark their processes; one
    genrule in fifteen also starts a daemon in a session of its own."""
    root.mkdir(parents=True)
    (root / "WORKSPACE").write_text("")
    for p, rules in enumerate(plan(PACKAGES, TARGETS, seed)):
        package = root / f"pkg{p}"
        package.mkdir(parents=True)
        lines = ['package(default_visibility = ["//visibility:public"])']
        for rule in rules:
            srcs = [f"src{rule.index}.txt"] + [
                f":t{u}" if q == p else f"//pkg{q}:t{u}" for q, u in rule.deps]
            # the daemon outlives its action's group; the action waits a little, so that
            # a signal may come while both run
            daemon = (f"{MARKER}={token}-daemon setsid sleep 60 >/dev/null 2>&1 </dev/null & "
                      "sleep 0.3; " if rule.index % 15 == 3 else "")
            cmd = (f"export {MARKER}={token}; {daemon}"
                   f"{{ echo {rule.tag}; cat $(SRCS) | cksum; }} > $@")
            lines.append(f'genrule(name = "t{rule.index}", srcs = [{", ".join(map(_quote, srcs))}],'
                         f' outs = ["t{rule.index}.out"], cmd = {_quote(cmd)})')
            (package / f"src{rule.index}.txt").write_text(f"source {rule.index} of {p}\n")
        (package / "BUILD").write_text("\n".join(lines) + "\n")


def processes(token: str) -> dict[int, str]:
    """Live processes marked by this test: pid -> marker value (`token` for an action's
    own processes, `token-daemon` for the daemons). Zombies have no environment."""
    found = {}
    wanted = {f"{MARKER}={token}".encode(), f"{MARKER}={token}-daemon".encode()}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            environment = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in wanted.intersection(environment):
            found[int(name)] = entry.decode().split("=", 1)[1]
    return found


def session(sid: int) -> dict[int, str]:
    """Live processes of session `sid` (bp's, when started in a session of its own: bp,
    its forked analysis and its actions), as pid -> command line."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[3]) == sid and stat[0] != b"Z":
            found[int(name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def _catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler for `signum` (SigCgt in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M).group(1), 16)
    return bool(caught & (1 << (signum - 1)))


def _until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _env(cache: Path) -> dict[str, str]:
    home = cache.parent / "home"
    home.mkdir(parents=True, exist_ok=True)
    return dict(os.environ, XDG_CACHE_HOME=str(cache), HOME=str(home))


@dataclass(frozen=True)
class Round:
    """One round, drawn from the seed before it runs."""
    edits: tuple[tuple[int, int, str], ...]   # (package, source, new text)
    strategy: str
    signum: int
    early: bool      # signal while bp loads and analyses, before any action runs
    delay: float     # seconds after the condition (bp started, or an action runs)
    to_group: bool   # to bp's process group, as Ctrl-C does; else to bp alone

    def __str__(self) -> str:
        return (f"{self.strategy}: {signal.Signals(self.signum).name} "
                f"{'to its group ' if self.to_group else ''}{self.delay:.2f}s after "
                f"{'the start' if self.early else 'the first action'}")


def plan_round(number: int, rng: random.Random) -> Round:
    edits = tuple(   # dirty part of the graph, often most of it (pkg0 feeds every chain)
        (rng.choice([0, 0, rng.randrange(PACKAGES)]), rng.randrange(TARGETS),
         f"round {number} {rng.random()}\n") for _ in range(rng.randint(1, 4)))
    strategy = rng.choice(STRATEGIES)
    signum = rng.choice(SIGNALS)
    early = rng.random() < 0.2
    delay = rng.uniform(0.0, 0.5 if early else 1.0)
    to_group = signum == signal.SIGINT and rng.random() < 0.5
    return Round(edits, strategy, signum, early, delay, to_group)


def stop_a_build(root: Path, cache: Path, token: str, plan: Round) -> tuple[str, int]:
    """Start a build and signal it as `plan` says; check how bp ended and what it left
    running. Returns what was done and bp's session id."""
    strategy, signum, early = plan.strategy, plan.signum, plan.early
    process = subprocess.Popen([sys.executable, "-m", "buildpy", "-C", str(root), "build",
                                f"--spawn_strategy={strategy}", "//..."], env=_env(cache),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    what = str(plan)
    try:
        if early:   # once bp's first line ran (before it, the interpreter's own start)
            _until(lambda: process.poll() is not None or _catches(process.pid, signal.SIGHUP),
                   60, "bp never started")
        else:
            _until(lambda: process.poll() is not None or
                   any(v == token for v in processes(token).values()), 60,
                   "the build never ran an action")
        time.sleep(plan.delay)   # the random moment, after the condition
        if process.poll() is None:
            (os.killpg if plan.to_group else os.kill)(process.pid, signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = err.decode(errors="replace")
    what += f": exit {process.returncode}"
    assert "Traceback" not in err, f"{what}:\n{err}"
    if signum == signal.SIGKILL:
        assert process.returncode in (0, -signal.SIGKILL), f"{what}:\n{err}"
        if strategy == "linux-sandbox":   # bubblewrap dies with its parent, and its pid
            _until(lambda: not processes(token), 10,   # namespace with it
                   f"{what}: processes outlived bp: {processes(token)}")
        return what, process.pid
    assert process.returncode in (0, 8), f"{what}\n{err}"
    _until(lambda: not processes(token) and not session(process.pid), 10,
           f"{what}: processes outlived bp: {processes(token)} {session(process.pid)}")
    return what, process.pid


def _bp_traceback(err: str) -> bool:
    """A Python traceback through bp's modules. One from before bp's first line runs
    (the interpreter's `site`, the console script's `import re`) is out of bp's reach."""
    return "Traceback" in err and bool(re.search(r'File "[^"]*/buildpy/|buildpy\.cli', err))


def test_bp_takes_the_stop_signals_before_importing_anything():
    """The handlers go in before any module is imported: importing even `signal` takes
    milliseconds (it builds enums), and a SIGINT in them printed a traceback in CI."""
    probe = ("import sys; before = set(sys.modules); import buildpy.__main__; "
             "print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "['buildpy', 'buildpy.__main__']", out


def test_a_signal_while_bp_starts_exits_8_without_a_traceback(tmp_path):
    """Importing bp's modules takes a few hundred milliseconds, all of them before the
    command's own handlers are in place: a stop signal then must not print a traceback.
    The moments are spread over the start; the interpreter's own first milliseconds may
    still die by the signal (or, for SIGINT, in `site`), which no code of bp can help."""
    (tmp_path / "WORKSPACE").write_text("")
    (tmp_path / "BUILD").write_text('filegroup(name = "all")\n')   # a query that ends: 0
    bp = Path(sys.executable).parent / "bp"
    for delay in (0.03, 0.08, 0.15, 0.25):
        for signum in (signal.SIGINT, signal.SIGTERM):
            process = subprocess.Popen([str(bp), "-C", str(tmp_path), "query", "//..."],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       start_new_session=True)
            time.sleep(delay)
            process.send_signal(signum)
            _, err = process.communicate(timeout=60)
            err = err.decode(errors="replace")
            assert not _bp_traceback(err), f"{signum.name} after {delay}s:\n{err}"
            assert process.returncode in (0, 8, -signum, 1), err


def test_an_interrupt_wrapped_by_python_still_exits_8(monkeypatch, capsys):
    """Python wraps an exception raised in a class's `__set_name__` (a dataclass field)
    in a RuntimeError: a Ctrl-C while bp imports such a module reaches bp's handler as
    that RuntimeError, and is still an interruption, not a bug of bp."""
    from buildpy import cli

    def interrupted_import(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as signal_error:
            raise RuntimeError("Error calling __set_name__ on 'Field'") from signal_error

    monkeypatch.setattr(cli.cli, "main", interrupted_import)
    assert cli._command(["version"]) == 8
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_a_build_stopped_at_a_random_moment_leaves_nothing_and_resumes(tmp_path):
    rng = random.Random(SEED)
    token = f"{tmp_path.name}-{SEED}"
    root, cache = tmp_path / "ws", tmp_path / "cache" / "c"
    write_workspace(root, token, SEED)
    print(f"bp fault test: {ROUNDS} rounds, BP_FAULT_SEED={SEED}", file=sys.__stderr__)
    done = []
    try:
        for round_ in range(ROUNDS):
            plan = plan_round(round_, rng)
            for p, t, text in plan.edits:
                (root / f"pkg{p}" / f"src{t}.txt").write_text(text)
            strategy = plan.strategy
            what, sid = stop_a_build(root, cache, token, plan)
            done.append(what)
            context = f"seed {SEED}, rounds: {done}"
            before = processes(token)   # after SIGKILL: what bp could not stop
            print(f"bp fault test: round {round_}: {what}; left: {sorted(before.values())} "
                  f"{sorted(session(sid).values())}", file=sys.__stderr__)
            again = differential.run_bp(root, cache, "build", f"--spawn_strategy={strategy}",
                                        "//...")
            assert again.returncode == 0, f"{context}\n{again.stderr}"
            after = processes(token)
            assert set(after) <= set(before) and set(after.values()) <= {f"{token}-daemon"}, \
                f"{context}: left running after the next build: {after}"
            _kill(after)

            scratch = tmp_path / f"scratch{round_}"
            differential.copy_sources(root, scratch)
            fresh = differential.run_bp(scratch, tmp_path / f"cache{round_}" / "c", "build",
                                        "//...")
            assert fresh.returncode == 0, fresh.stderr
            problems = differential.compare(differential.snapshot(root),
                                            differential.snapshot(scratch), root, scratch)
            assert not problems, f"{context}: " + "\n".join(problems)
            assert len(differential.snapshot(root)) == PACKAGES * TARGETS
            _kill(processes(token))
    finally:
        _kill(processes(token))
