"""SIGTERM, SIGHUP and Ctrl-C kill whole action trees, `setsid` descendants included,
under every strategy, before bp exits with 8; an action's daemon does not outlive the
build. Real processes: bp runs as a subprocess and the tests wait for conditions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from buildpy.execution.reaper import Subreaper
from buildpy.execution.sandbox import LinuxSandboxStrategy

VARIABLE = "BP_SIGNAL_TEST_TREE"   # exported by the action: every process of its tree has it

STRATEGIES = [
    "local", "sandboxed",
    pytest.param("linux-sandbox", marks=pytest.mark.skipif(
        not LinuxSandboxStrategy.available()[0],
        reason="bubblewrap cannot run here (scripts/install-test-deps installs it)")),
]

# a grandchild in a session of its own, looping forever; then the action's own command
DAEMON = "export %s=%s; setsid sh -c 'while :; do sleep 0.1; done' & "


def _tree(token: str) -> dict[int, int]:
    """The live processes of the test's action tree, as pid -> session (zombies, whose
    environment is gone, are not alive)."""
    found = {}
    entry = f"{VARIABLE}={token}".encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            environment = Path(f"/proc/{name}/environ").read_bytes()
            stat = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        if entry in environment.split(b"\0"):
            found[int(name)] = int(stat.rsplit(b")", 1)[1].split()[3])
    return found


def _until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _kill_tree(token: str) -> None:
    for pid in _tree(token):   # only what this test started
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _workspace(tmp_path: Path, cmd: str) -> tuple[Path, str]:
    root = tmp_path / "ws"
    (root / "t").mkdir(parents=True)
    (root / "WORKSPACE").write_text("")
    token = tmp_path.name
    (root / "t" / "BUILD").write_text(
        f'genrule(name = "tree", outs = ["tree.out"], cmd = "{DAEMON % (VARIABLE, token)}'
        f'{cmd}")\n')
    return root, token


def _bp(root: Path, strategy: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "buildpy", "-C", str(root), "build",
                             f"--spawn_strategy={strategy}", "//t:tree"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP],
                         ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_kills_the_whole_action_tree(tmp_path, strategy, signum):
    root, token = _workspace(tmp_path, "touch $@; sleep 1000")
    process = _bp(root, strategy)
    try:
        # running: the action's command and its setsid grandchild, in two sessions
        _until(lambda: len(set(_tree(token).values())) >= 2, 60,
               "the action never started its tree")
        process.send_signal(signum)   # to bp alone, as `timeout` does
        _, err = process.communicate(timeout=60)
        assert process.returncode == 8, err.decode()
        assert err.decode().endswith("ERROR: build interrupted\n"
                                     "INFO: 1 actions: 0 executed, 0 cache hits\n")
        _until(lambda: not _tree(token), 10, "the action tree outlived bp")
    finally:
        process.kill()
        process.wait()
        _kill_tree(token)


def test_ctrl_c_kills_a_setsid_grandchild_too(tmp_path):
    root, token = _workspace(tmp_path, "touch $@; sleep 1000")
    process = _bp(root, "sandboxed")
    try:
        _until(lambda: len(set(_tree(token).values())) >= 2, 60,
               "the action never started its tree")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 8, err.decode()
        _until(lambda: not _tree(token), 10, "the action tree outlived bp")
    finally:
        process.kill()
        process.wait()
        _kill_tree(token)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_daemon_an_action_leaves_does_not_outlive_the_build(tmp_path, strategy):
    root, token = _workspace(tmp_path, "echo built > $@; sleep 0.3")
    process = _bp(root, strategy)
    try:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
        _until(lambda: not _tree(token), 10, "the action's daemon outlived the build")
    finally:
        process.kill()
        process.wait()
        _kill_tree(token)


def test_the_subreaper_kills_orphans_only(tmp_path):
    """Processes started before it, in sessions of their own, are not orphans; a
    process that left a group and lost its parent is, and so are its children."""
    before = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    ticks = os.sysconf("SC_CLK_TCK")
    started = int(Path(f"/proc/{before.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[19])
    _until(lambda: int(time.clock_gettime(time.CLOCK_BOOTTIME) * ticks) > started, 5,
           "the clock stands still")   # the subreaper tells processes apart by clock tick
    reaper = Subreaper()
    try:
        assert reaper.active
        pidfile = tmp_path / "pid"
        subprocess.run(["sh", "-c", f"setsid sh -c 'echo $$ > {pidfile}; sleep 1000 & "
                        "wait' > /dev/null 2>&1 & sleep 0.01"], start_new_session=True,
                       check=True)
        orphan = int(_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 20,
                            "the orphan never started"))
        _until(lambda: orphan in dict(reaper.orphans()), 20, "never adopted")
        assert before.pid not in dict(reaper.orphans())
        assert reaper.kill_orphans() >= 1
        assert reaper.orphans() == [] and before.poll() is None
        assert not Path(f"/proc/{orphan}").exists()
    finally:
        reaper.close()
        before.kill()
        before.wait()


def test_sigterm_during_bp_test_kills_the_test_tree(tmp_path):
    root, token = _workspace(tmp_path, "echo unused > $@")
    (root / "t" / "BUILD").write_text('sh_test(name = "forever_test", srcs = ["forever.sh"])\n')
    script = root / "t" / "forever.sh"
    script.write_text(f"#!/bin/sh\n{DAEMON % (VARIABLE, token)}sleep 1000\n")
    script.chmod(0o755)
    process = subprocess.Popen([sys.executable, "-m", "buildpy", "-C", str(root), "test",
                                "//t:forever_test"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        _until(lambda: len(set(_tree(token).values())) >= 2, 60,
               "the test never started its tree")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 8, err.decode()
        assert "ERROR: testing interrupted" in err.decode()
        _until(lambda: not _tree(token), 10, "the test's tree outlived bp")
    finally:
        process.kill()
        process.wait()
        _kill_tree(token)


def test_a_stop_signal_while_load_resolves_a_module_is_an_interruption(ws, bp, monkeypatch):
    """Ctrl-C or SIGTERM arriving in the load() callback (Python code Starlark calls)
    stops bp with exit 8, not as an error of the file being evaluated (the fault test
    once caught SIGTERM there, while the WORKSPACE file loaded its builtins)."""
    from buildpy.lang import env

    def interrupted(self, module_id):
        raise KeyboardInterrupt("SIGTERM")

    monkeypatch.setattr(env.StarlarkEnv, "_load_by_id", interrupted)
    root = ws({"BUILD": 'genrule(name = "g", outs = ["g.txt"], cmd = "echo > $@")'})
    result = bp("query", "//...", cwd=root)
    assert result.code == 8, result.err
    assert "error evaluating" not in result.err


def test_a_stop_signal_in_python_code_that_starlark_calls_is_an_interruption(ws, bp,
                                                                            monkeypatch):
    """A Ctrl-C whose handler runs in Python code that Starlark called, before that code
    could catch it (on entering the function), reaches Starlark, which reports it as an
    error of the file: bp still stops with exit 8 (the start-up signal test caught one
    while the prelude's providers were declared)."""
    from buildpy.lang import env

    wrapped = env._wrapped

    def signalled(this, name):
        native = wrapped(this, name)
        if name != "_bp_declare_provider":
            return native
        return lambda *args: (os.kill(os.getpid(), signal.SIGINT), native(*args))[1]

    monkeypatch.setattr(env, "_wrapped", signalled)
    root = ws({"BUILD": 'genrule(name = "g", outs = ["g.txt"], cmd = "echo > $@")'})
    result = bp("query", "//...", cwd=root)
    assert result.code == 8, result.err
    assert "error" not in result.err.replace("ERROR: interrupted", "")


def test_an_interrupt_python_cannot_raise_where_it_lands_is_raised_right_after(capsys):
    """A Ctrl-C whose handler runs in a weakref callback (the import system has them) is
    "ignored" by Python, which prints a traceback and goes on: under bp's handlers it is
    raised again in the code that runs next, with nothing printed."""
    import weakref

    from buildpy.core.signals import stop_signals_interrupt

    class Thing:
        pass

    with stop_signals_interrupt(), pytest.raises(KeyboardInterrupt):
        thing = Thing()
        ref = weakref.ref(thing, lambda _: signal.raise_signal(signal.SIGINT))
        del thing   # the callback runs here, and its KeyboardInterrupt is unraisable
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:   # (it lands about a millisecond later)
            pass
        del ref
    assert "Exception ignored" not in capsys.readouterr().err


def test_an_interrupt_still_to_raise_when_the_block_ends_is_raised_there():
    """An interruption Python could not raise, whose raise is still to come when the
    block of bp's handlers ends, is raised as the block ends, not later outside it (it
    once killed the test session that ran the test above, on a loaded machine)."""
    from types import SimpleNamespace

    from buildpy.core import signals as signals_module

    with pytest.raises(KeyboardInterrupt):
        with signals_module.stop_signals_interrupt():
            sys.unraisablehook(SimpleNamespace(exc_type=KeyboardInterrupt))   # as Python does
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is not signals_module._raise_later


def test_an_orphan_the_registry_spares_outlives_the_build(tmp_path):
    """The analysis server comes to bp as an orphan when the analysis process exits;
    the build spares it (ProcessRegistry.spare), and kills the other orphans."""
    from buildpy.execution.spawn import ProcessRegistry

    registry = ProcessRegistry(tmp_path / "running.log")
    registry.starting()   # (the first spawn makes bp the subreaper)
    pids = []
    for name in ("spared", "killed"):
        pidfile = tmp_path / name
        subprocess.run(["sh", "-c", f"setsid sh -c 'echo $$ > {pidfile}; sleep 1000 & "
                        "wait' > /dev/null 2>&1 & sleep 0.01"], start_new_session=True,
                       check=True)
        pids.append(int(_until(lambda: pidfile.exists() and pidfile.read_text().strip(),
                               20, "the orphan never started")))
    spared, killed = pids
    registry.spare(spared)
    try:
        _until(lambda: Path(f"/proc/{killed}").exists() and registry.kill_orphans() >= 1,
               20, "the orphan was never killed")
        registry.close()
        assert Path(f"/proc/{spared}").exists()
        assert not Path(f"/proc/{killed}").exists()
    finally:
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
