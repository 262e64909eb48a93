"""Sandboxed strategies and tracing, with real processes (loopback only, bounded waits)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from buildpy.execution import sandbox as sandbox_module
from buildpy.execution.sandbox import (BWRAP_MISSING, LinuxSandboxStrategy, SandboxedStrategy,
                                       fallback_warning, parse_mount_pair,
                                       undeclared_input_hint)
from buildpy.execution.sandboxdirs import SandboxDirs
from buildpy.execution.sandboxhelper import SETUP_FAILED
from buildpy.execution.sandboxslots import SlotRunning
from buildpy.execution.spawn import Cancelled, LocalStrategy, ProcessRegistry, Spawn, wait
from buildpy.execution.symlinks import ESCAPE_HINT
from buildpy.execution.tracing import Access, parse_log, start_traced, tracing_available

ENV = {"PATH": "/usr/bin:/bin"}
LABEL = "//a:gen"
SECRET_HINT = ("'a/secret.txt' exists in the workspace but is not a declared input of "
               "`//a:gen`; add it (or the target that generates it) to the genrule's "
               "`srcs`")


@pytest.fixture(scope="module")
def bwrap_status():
    return LinuxSandboxStrategy.available()


@pytest.fixture(scope="module")
def strace_ok():
    return tracing_available()


@pytest.fixture
def exec_root(tmp_path):
    """An exec root as bp makes it: a symlink forest over the workspace, reached through
    a symlink itself."""
    workspace = tmp_path / "ws"
    files = {"a/in.txt": "hello\n", "a/secret.txt": "secret\n", "a/other.txt": "other\n",
             "a/dir/one.txt": "one\n"}
    forest = tmp_path / "execroot-real"
    for name, text in files.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(text)
        (forest / name).parent.mkdir(parents=True, exist_ok=True)
        (forest / name).symlink_to(workspace / name)
    root = tmp_path / "execroot"
    root.symlink_to(forest, target_is_directory=True)
    return root


@pytest.fixture
def make(exec_root):
    def spawn(command, inputs=("a/in.txt",), outputs=("out/x",), **fields):
        return Spawn(("/bin/sh", "-c", command), ENV, exec_root, tuple(inputs),
                     tuple(outputs), label=LABEL, mnemonic="Genrule", **fields)
    return spawn


@pytest.fixture
def strategy(request, tmp_path, bwrap_status):
    """A factory for the strategy named by the test's `kind` parameter."""
    def build(kind, **options):
        if kind == "local":
            return LocalStrategy()
        if kind == "sandboxed":
            return SandboxedStrategy(tmp_path / "sandbox", **options)
        ok, reason = bwrap_status
        if not ok:
            pytest.skip(reason)
        return LinuxSandboxStrategy(tmp_path / "sandbox", **options)
    return build


SANDBOXES = ["sandboxed", "linux-sandbox"]


def run(strategy, spawn, cancel=None):
    return strategy.run(spawn, cancel or threading.Event())


def assert_nothing_left(strategy, base: Path) -> None:
    """Between actions the sandbox base holds empty directories only (kept for the next
    action); once the strategy is closed, nothing."""
    assert [p for p in base.rglob("*") if p.is_symlink() or not p.is_dir()] == []
    strategy.close()
    assert list(base.iterdir()) == []


@pytest.mark.parametrize("kind", SANDBOXES)
def test_declared_output_is_moved_back_replacing_the_old_one(kind, strategy, make, exec_root,
                                                              tmp_path):
    (exec_root / "out").mkdir()
    (exec_root / "out" / "x").write_text("stale\n")
    sandbox = strategy(kind)
    result = run(sandbox, make("cat a/in.txt > out/x"))
    assert (result.exit_code, result.stderr) == (0, b"")
    assert (exec_root / "out" / "x").read_text() == "hello\n"
    assert not (exec_root / "out" / "x").is_symlink()
    assert result.sandbox is None
    assert_nothing_left(sandbox, tmp_path / "sandbox")


@pytest.mark.parametrize("kind", SANDBOXES)
def test_an_output_moved_back_over_a_directory_or_into_a_new_one(kind, strategy, make,
                                                                  exec_root, tmp_path):
    """What the one-call rename of an output cannot do, the slower move does: a file in
    the place of a directory (a tree artifact's, say), a file whose directory is new."""
    (exec_root / "out" / "x").mkdir(parents=True)
    (exec_root / "out" / "x" / "old").write_text("stale\n")
    sandbox = strategy(kind)
    result = run(sandbox, make("cat a/in.txt > out/x; cp a/in.txt out/new/y",
                               outputs=("out/x", "out/new/y")))
    assert (result.exit_code, result.stderr) == (0, b"")
    assert (exec_root / "out" / "x").read_text() == "hello\n"
    assert (exec_root / "out" / "new" / "y").read_text() == "hello\n"
    assert_nothing_left(sandbox, tmp_path / "sandbox")


@pytest.mark.parametrize("kind", SANDBOXES)
def test_files_written_outside_declared_outputs_stay_behind(kind, strategy, make, exec_root):
    result = run(strategy(kind),
                 make("cat a/in.txt > out/x; echo junk > out/extra; echo junk > stray.txt"))
    assert result.exit_code == 0
    assert sorted(p.name for p in (exec_root / "out").iterdir()) == ["x"]
    assert not (exec_root / "stray.txt").exists()


@pytest.mark.parametrize("kind", SANDBOXES)
def test_directory_input_is_staged_whole(kind, strategy, make, exec_root):
    result = run(strategy(kind), make("cat a/dir/one.txt > out/x", inputs=["a/dir"]))
    assert result.exit_code == 0, result.stderr
    assert (exec_root / "out" / "x").read_text() == "one\n"


@pytest.mark.parametrize("kind", ["local", *SANDBOXES])
def test_undeclared_input_is_hidden_by_sandboxes_only(kind, strategy, make, exec_root):
    (exec_root / "out").mkdir()      # the local strategy does not make output directories
    result = run(strategy(kind), make("cat a/secret.txt > out/x"))
    if kind == "local":
        assert (result.exit_code, result.notes) == (0, ())
        return
    assert result.exit_code != 0
    assert b"a/secret.txt: No such file or directory" in result.stderr
    assert result.notes == (SECRET_HINT,)


def test_linux_sandbox_inputs_are_read_only(strategy, make, exec_root):
    result = run(strategy("linux-sandbox"), make("echo changed > a/in.txt"))
    assert result.exit_code != 0
    assert b"Read-only file system" in result.stderr
    assert (exec_root / "a" / "in.txt").read_text() == "hello\n"


@pytest.mark.parametrize("kind", SANDBOXES)
@pytest.mark.parametrize("attack", [": > a/in.txt", "chmod 000 a/in.txt", "rm -f a/in.txt",
                                    "echo changed > a/dir/one.txt", "rm -rf a/dir"])
def test_sandboxed_inputs_cannot_be_changed(kind, attack, strategy, make, exec_root):
    """Under either sandbox a write to an input fails or changes a copy, never the
    source; the action itself may succeed (sandboxed) or fail (read-only mounts)."""
    source = exec_root / "a" / "in.txt"
    mode = source.stat().st_mode
    run(strategy(kind), make(f"{attack}; echo done > out/x", inputs=["a/in.txt", "a/dir"]))
    assert source.read_text() == "hello\n"
    assert source.stat().st_mode == mode
    assert (exec_root / "a" / "dir" / "one.txt").read_text() == "one\n"


@pytest.mark.parametrize("kind", SANDBOXES)
@pytest.mark.parametrize("link", ["$SECRET", "../../../../../../../../../..$SECRET",
                                  "$(pwd)/../../../../../../../../..$SECRET"])
def test_output_link_out_of_the_sandbox_is_refused(kind, link, strategy, make, exec_root,
                                                     tmp_path):
    """A link to a host file the sandbox hides must not carry it out (issue: an ssh key
    read through `ln -s`): the action fails, and nothing is left at the output."""
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY\n")
    spawn = make(f"ln -s {link} out/x")
    spawn = dataclasses.replace(spawn, env={**spawn.env, "SECRET": str(secret)})
    result = run(strategy(kind), spawn)
    assert result.exit_code == 0
    assert result.error.startswith("declared output 'out/x' is a symbolic link to '")
    assert result.error.endswith("', which is outside the sandbox; " + ESCAPE_HINT)
    assert not os.path.lexists(exec_root / "out" / "x")


@pytest.mark.parametrize("kind", SANDBOXES)
@pytest.mark.parametrize("code", [0, 1])
@pytest.mark.parametrize("outputs, linked", [(["out/x"], "out"),
                                             (["out/y", "out/sub/x"], "out/sub")])
def test_an_output_under_a_linked_directory_is_refused(kind, code, outputs, linked, strategy,
                                                       make, exec_root, tmp_path):
    """The output's parent replaced by a link to a host directory: moving the output back
    would move (take away) the host's file. Under linux-sandbox the outputs' own
    directories are mount points, which the process cannot replace: only one below them
    can become a link."""
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "x").write_text("PRIVATE\n")
    result = run(strategy(kind), make(f"rm -rf {linked}; ln -s {hidden} {linked}; exit {code}",
                                      outputs=outputs))
    output = outputs[-1]
    if kind == "linux-sandbox" and linked == "out":
        assert result.error is None
        assert b"rm: cannot remove 'out': Device or resource busy" in result.stderr
    else:
        assert result.error == (f"declared output '{output}' is under a symbolic link "
                                f"('{linked}', to '{hidden}'); {ESCAPE_HINT}")
    assert (hidden / "x").read_text() == "PRIVATE\n"
    assert not os.path.lexists(exec_root / output)


@pytest.mark.parametrize("kind", SANDBOXES)
def test_output_links_inside_the_sandbox_become_copies(kind, strategy, make, exec_root):
    result = run(strategy(kind), make(
        "echo two > out/y; ln -s y out/x; mkdir out/d; ln -s ../../a/in.txt out/d/in; "
        "ln -s ../x out/d/x; ln -s $(pwd)/a/dir/one.txt out/d/one",
        inputs=["a/in.txt", "a/dir"], outputs=["out/x", "out/y", "out/d"],
        output_directories=["out/d"]))
    assert (result.exit_code, result.error) == (0, None), result.stderr
    out = exec_root / "out"
    assert not any(p.is_symlink() for p in out.rglob("*"))
    assert [(out / n).read_text() for n in ("x", "d/in", "d/x", "d/one")] == \
        ["two\n", "hello\n", "two\n", "one\n"]


@pytest.mark.parametrize("kind", SANDBOXES)
@pytest.mark.parametrize("command, outputs, error", [
    ("ln -s nowhere out/x", ["out/x"],
     "declared output 'out/x' is a dangling symbolic link (to 'nowhere')"),
    ("ln -s x out/x", ["out/x"], "declared output 'out/x' is a symbolic link loop"),
    ("ln -s /etc/passwd out/d/p", ["out/d"],
     "declared output 'out/d' holds 'out/d/p', which is a symbolic link to '/etc/passwd', "
     "which is outside the sandbox; " + ESCAPE_HINT),
    ("rmdir out/d; ln -s ../a out/d", ["out/d"],
     "declared directory output 'out/d' is a symbolic link (to '../a'); create the "
     "directory itself"),
])
def test_bad_output_links_fail_the_action(kind, command, outputs, error, strategy, make):
    directories = [o for o in outputs if o.endswith("/d")]
    result = run(strategy(kind), make(command, outputs=outputs,
                                      output_directories=directories))
    assert result.error == error


def test_linux_sandbox_blocks_network_unless_required(strategy, make):
    linux = strategy("linux-sandbox")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        command = (f"python3 -c \"import socket; "
                   f"socket.create_connection(('127.0.0.1', {port}), timeout=2)\"")
        blocked = run(linux, make(command, outputs=()))
        allowed = run(linux, make(command, outputs=(), requires_network=True))
    assert blocked.exit_code != 0
    assert b"ConnectionRefusedError" in blocked.stderr or b"unreachable" in blocked.stderr
    assert (allowed.exit_code, allowed.stderr) == (0, b"")


def test_linux_sandbox_mounts_extra_pairs_read_only(strategy, make, tmp_path):
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "tool.txt").write_text("tool\n")
    linux = strategy("linux-sandbox", mount_pairs=[f"{extra}:/opt/bp-extra"])
    result = run(linux, make("cat /opt/bp-extra/tool.txt > out/x; touch /opt/bp-extra/new"))
    assert result.exit_code != 0
    assert b"Read-only file system" in result.stderr
    assert (tmp_path / "execroot" / "out" / "x").read_text() == "tool\n"
    assert not (extra / "new").exists()


# What an action can see of its sandbox and its process: the tree, the ids, the
# capabilities, the signals it ignores, the network devices, the processes, the open
# files.
# (the processes are listed, then counted: counted as `ls | grep` runs, they were three
# or four, as grep had started or not)
SEEN = ("ls -a / /tmp /dev /dev/shm; find . | sort; cat a/in.txt; id; "
        "grep -E '^(Cap|NoNewPrivs|Sig(Ign|Blk))' /proc/self/status; cat /proc/net/dev; "
        "ls /proc > /tmp/procs; grep -c '^[0-9]' /tmp/procs; touch /tmp/t /dev/shm/t; "
        "ls /tmp /dev/shm; umask; echo x > a/in.txt; echo $?; yes | head -c1; ulimit -a; "
        "ls /proc/self/fd")


def test_an_action_in_a_slot_sees_what_it_would_alone(strategy, make, tmp_path):
    """sandboxslots.py's promise: a slot's helper makes the tree and the process that a
    bubblewrap of the action's own makes."""
    seen = []
    for slots in (False, True):
        linux = strategy("linux-sandbox", slots=slots)
        for _ in range(2):   # (in a slot, the second time in the same slot)
            result = run(linux, make("{ " + SEEN + "; } > out/x 2>&1"))
            assert result.exit_code == 0, result.stderr
            seen.append((tmp_path / "execroot" / "out" / "x").read_text())
        assert (linux._slots is not None) == slots
        linux.close()
    assert seen[0] == seen[1] == seen[2] == seen[3]
    assert "hello" in seen[0] and "Read-only file system" in seen[0]


def test_linux_sandbox_timeout_kills_the_slot_and_the_next_action_runs(strategy, make,
                                                                       tmp_path):
    linux = strategy("linux-sandbox")
    result = run(linux, make("sleep 5", timeout=0.2))
    assert result.timed_out and result.exit_code == -9
    after = run(linux, make("cat a/in.txt > out/x"))
    assert after.exit_code == 0, after.stderr
    assert (tmp_path / "execroot" / "out" / "x").read_text() == "hello\n"
    assert_nothing_left(linux, tmp_path / "sandbox")


def test_a_slot_started_ahead_runs_the_first_action_or_ends_unused(strategy, make,
                                                                  tmp_path):
    """linux-sandbox's slot started before any action wants it (LocalBuild does so while
    it looks at what is up to date) runs the first action; one no action took ends
    with the strategy, leaving no process behind."""
    registry = ProcessRegistry(tmp_path / "running")
    try:
        linux = strategy("linux-sandbox", registry=registry)
        linux.prestart()
        started = set(registry.running())
        assert len(started) == 1
        result = run(linux, make("cat a/in.txt > out/x"))
        assert result.exit_code == 0, result.stderr
        assert set(registry.running()) == started   # (that slot, not another)
        assert_nothing_left(linux, tmp_path / "sandbox")
        assert registry.running() == {}

        unused = strategy("linux-sandbox", registry=registry)
        unused.prestart()
        (pid,) = registry.running()
        unused.close()
        assert registry.running() == {} and not Path(f"/proc/{pid}").exists()
    finally:
        registry.close()


def test_what_an_action_leaves_running_ends_with_it(strategy, make, exec_root):
    """As when the first process of an action's own PID namespace ends: the processes it
    started and left (in its session or a new one) are killed and reaped before its
    result is known, and the next action in the slot finds only itself."""
    marker = f"900.{uuid.uuid4().int % 10**6:06d}"   # (seconds: outlasts the timeout)
    linux = strategy("linux-sandbox")
    left = make(f"sleep {marker} & setsid sleep {marker}1 & echo started > out/x",
                timeout=60)
    result = run(linux, left)
    assert result.exit_code == 0 and not result.timed_out
    assert not _alive(marker)
    after = run(linux, make("ls /proc > /tmp/p; grep -c '^[0-9]' /tmp/p > out/x"))
    assert after.exit_code == 0, after.stderr
    # the helper, this shell and ls: nothing of the action before
    assert (exec_root / "out" / "x").read_text() == "3\n"
    assert len(linux._slots._free) == 1   # (both ran in the one slot)


def test_a_tree_the_helper_cannot_make_fails_that_action_only(strategy, tmp_path):
    """The helper's answer when an action's tree cannot be made (here an output
    directory's source is missing from the sandbox base): the action is not started, its
    stderr says why, naming the mount, and the exit code is SETUP_FAILED; the helper is
    back in its own namespaces and runs the next action in the same slot."""
    linux = strategy("linux-sandbox")
    linux.prestart()   # (makes the sandbox base the slot mounts)
    root = os.fspath(linux.base / "bp-test" / "0")

    def request(argv, binds):
        return {"argv": argv, "env": ENV, "base": os.fspath(linux.base), "root": root,
                "dirs": [], "binds": binds, "inputs": [], "links": [], "cwd": root}

    def result(argv, binds=()):   # (the timeout bounds the wait)
        running = SlotRunning(linux._slots, request(argv, list(binds)), 10.0)
        return wait(running, threading.Event())

    failed = result(["/bin/sh", "-c", "echo ran"], [["bp-test/0/gone", root + "/out"]])
    assert failed.exit_code == SETUP_FAILED
    assert failed.stdout == b""
    assert b"linux-sandbox: cannot make the action's sandbox" in failed.stderr
    assert f"{root}/out".encode() in failed.stderr
    after = result(["/bin/sh", "-c", "echo ran"])
    assert (after.exit_code, after.stdout) == (0, b"ran\n")
    assert len(linux._slots._free) == 1   # (both in the one slot)
    linux.close()


def test_closing_the_slots_lets_their_helpers_end_and_reaps_them(strategy, make):
    """At the end of a build each idle slot's helper sees its socket close and ends by
    itself (its time counts in bp's children's), all of them at once; none is killed."""
    linux = strategy("linux-sandbox")
    linux.prestart()
    assert run(linux, make("cat a/in.txt > out/x")).exit_code == 0
    slots = list(linux._slots._free)
    assert slots
    linux.close()
    assert [slot.process.returncode for slot in slots] == [0] * len(slots)


def test_a_build_where_bubblewrap_is_missing_falls_back_as_before(ws, bp, monkeypatch):
    """The linux-sandbox made ahead of the first action finds bubblewrap missing: the
    build says so once and runs its actions in the `sandboxed` strategy, leaving no
    process behind."""
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    root = ws({"BUILD": 'genrule(name = "g", outs = ["g.out"], cmd = "echo hi > $@")\n'})
    done = bp("build", "//:g", cwd=root)
    assert done.code == 0, done.err
    assert done.err.count("bubblewrap (`bwrap`) is not installed") == 1, done.err
    assert (root / "bp-bin" / "g.out").read_text() == "hi\n"
    journal = root / "bp-out" / ".bp-state" / "running.log"
    assert ProcessRegistry(journal).running() == {}


def test_a_build_with_nothing_to_run_leaves_no_slot(bwrap_status, ws, bp):
    """A build that looks at its actions starts linux-sandbox's first slot ahead; when
    every action is up to date, the slot ends with the build."""
    if not bwrap_status[0]:
        pytest.skip(bwrap_status[1])
    root = ws({"BUILD": 'genrule(name = "g", srcs = ["in.txt"], outs = ["g.out"], '
                        'cmd = "cat $< > $@")\n', "in.txt": "in\n"})
    assert bp("build", "//:g", cwd=root).code == 0
    (root / "in.txt").write_text("in\n")   # (the same bytes: looked at, up to date)
    done = bp("build", "//:g", cwd=root)
    assert done.code == 0 and "1 cache hit" in done.err, done.err
    journal = root / "bp-out" / ".bp-state" / "running.log"
    assert ProcessRegistry(journal).running() == {}


def test_builds_run_their_actions_in_the_slot_started_ahead(bwrap_status, ws):
    """The slot a bp process starts ahead of its first action serves it, build after
    build (it once died with the thread that started it: bubblewrap's
    --die-with-parent)."""
    if not bwrap_status[0]:
        pytest.skip(bwrap_status[1])
    root = ws({"BUILD": 'genrule(name = "g", srcs = ["in.txt"], outs = ["g.out"], '
                        'cmd = "cat $< > $@")\n'})
    for i in range(6):
        (root / "in.txt").write_text(f"edit {i}\n")
        done = subprocess.run([sys.executable, "-m", "buildpy", "build", "//:g"], cwd=root,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert (root / "bp-bin" / "g.out").read_text() == f"edit {i}\n"


def test_linux_sandbox_runs_a_script_without_an_interpreter_line(strategy, make, exec_root):
    """As C's execvp (bubblewrap's) does: a file without #! runs under /bin/sh."""
    script = exec_root / "a" / "tool"
    script.write_text("echo from-script > out/x\n")
    script.chmod(0o755)
    spawn = dataclasses.replace(make("", inputs=("a/tool",)), argv=("a/tool",))
    result = run(strategy("linux-sandbox"), spawn)
    assert result.exit_code == 0, result.stderr
    assert (exec_root / "out" / "x").read_text() == "from-script\n"


def _alive(marker: str) -> bool:
    for entry in Path("/proc").iterdir():
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


@pytest.mark.parametrize("kind", SANDBOXES)
def test_cancel_kills_the_whole_process_group(kind, strategy, make, tmp_path):
    marker = f"29.{uuid.uuid4().int % 10**6:06d}"
    registry = ProcessRegistry(tmp_path / "running")
    try:
        cancel = threading.Event()
        threading.Timer(0.2, cancel.set).start()
        start = time.monotonic()
        sandbox = strategy(kind, registry=registry)
        with pytest.raises(Cancelled):
            run(sandbox, make(f"sleep {marker}; echo late > out/x"), cancel)
        assert time.monotonic() - start < 2
        deadline = time.monotonic() + 2
        while _alive(marker) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(marker)
        assert_nothing_left(sandbox, tmp_path / "sandbox")
        assert registry.running() == {}
    finally:
        registry.close()   # it made this process a subreaper


def test_timeout_is_reported_and_the_sandbox_removed(strategy, make, tmp_path):
    sandbox = strategy("sandboxed")
    result = run(sandbox, make("sleep 5", timeout=0.2))
    assert result.timed_out
    assert_nothing_left(sandbox, tmp_path / "sandbox")


@pytest.mark.parametrize("kind", SANDBOXES)
def test_kept_sandbox_can_be_entered_again(kind, strategy, make, exec_root):
    result = run(strategy(kind, keep=True), make("cat a/in.txt > out/x"))
    assert result.exit_code == 0
    kept = result.sandbox
    assert kept is not None and (kept / "a" / "in.txt").exists()
    (note,) = result.notes
    prefix = f"sandbox kept at {kept}; to run the action in it again: cd {kept} && env -i "
    assert note.startswith(prefix)
    assert note.endswith(" /bin/sh -c 'cat a/in.txt > out/x'")
    assert " env -i PATH=/usr/bin:/bin " in note
    command = note.split(": ", 1)[1]
    again = subprocess.run(command, shell=True, capture_output=True, timeout=10)
    assert again.returncode == 0, again.stderr
    assert (kept / "out" / "x").read_text() == "hello\n"


def test_linux_sandbox_availability_and_fallback_warning(monkeypatch):
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    assert LinuxSandboxStrategy.available() == (False, BWRAP_MISSING)
    assert fallback_warning(BWRAP_MISSING) == (
        "linux-sandbox is not available here: bubblewrap (`bwrap`) is not installed; install "
        "the Debian package `bubblewrap` (scripts/install-test-deps does); running actions "
        "with the `sandboxed` strategy instead, which hides undeclared inputs but does not "
        "block the network or protect the inputs from writes")
    ok, reason = LinuxSandboxStrategy.available(bwrap="/nonexistent/bwrap")
    assert not ok and reason.startswith("bwrap cannot run: ")


def test_mount_pairs_are_parsed():
    assert parse_mount_pair("/a") == (Path("/a"), Path("/a"))
    assert parse_mount_pair("/a:/b") == (Path("/a"), Path("/b"))
    with pytest.raises(ValueError, match="expected an absolute SRC"):
        parse_mount_pair("a:/b")


def test_hint_names_only_existing_undeclared_workspace_paths(make, exec_root, tmp_path):
    spawn = make("true", inputs=["a/in.txt", "a/dir"])
    sandbox = tmp_path / "sandbox" / "Genrule-1"
    stderr = (f"FileNotFoundError: [Errno 2] No such file or directory: './a/secret.txt'\n"
              f"cat: {sandbox}/a/other.txt: No such file or directory\n"
              f"cat: a/in.txt a/dir/one.txt a/missing.txt /etc/passwd: odd.\n").encode()
    hint = undeclared_input_hint(spawn, stderr, sandbox)
    assert hint == SECRET_HINT + "\n" + SECRET_HINT.replace("secret", "other")
    assert undeclared_input_hint(spawn, b"cat: a/missing.txt: No such file") is None


def test_tracing_reports_undeclared_reads(strace_ok, make, exec_root):
    if not strace_ok:
        pytest.skip("strace is not installed or cannot trace here (ptrace denied)")
    spawn = make('cat a/in.txt a/secret.txt > out/x; cat "$(pwd -P)/a/other.txt" > /dev/null;'
                 ' echo t > scratch.txt; cat scratch.txt; test -d a/dir; ls a > /dev/null')
    (exec_root / "out").mkdir()
    result = wait(start_traced(spawn, LocalStrategy().start), threading.Event())
    assert result.exit_code == 0, result.stderr
    assert result.undeclared_reads == ("a/other.txt", "a/secret.txt")
    assert (exec_root / "out" / "x").read_text() == "hello\nsecret\n"


def test_strace_log_parsing():
    log = [
        '7  openat(AT_FDCWD</r>, "a/x\\303\\251.txt", O_RDONLY) = 3</r/a/x\\303\\251.txt>\n',
        '7  openat(AT_FDCWD</r>, "o", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3</r/o>\n',
        '7  openat(AT_FDCWD</r>, "gone", O_RDONLY) = -1 ENOENT (No such file or directory)\n',
        '8  execve("/r/tool", ["tool"], 0x1 /* 1 var */ <unfinished ...>\n',
        '7  newfstatat(3</r/d>, "f", {st_mode=S_IFREG, ...}, 0) = 0\n',
        '8  <... execve resumed>) = 0\n',
        '7  newfstatat(4, "", {st_mode=S_IFREG, ...}, AT_EMPTY_PATH) = 0\n',
        '7  --- SIGCHLD {si_signo=SIGCHLD} ---\n',
    ]
    assert parse_log(log) == (Access("a/x\u00e9.txt", "/r", False), Access("o", "/r", True),
                              Access("f", "/r/d", False), Access("/r/tool", None, False))


@pytest.mark.parametrize("kind", SANDBOXES)
def test_output_inside_a_directory_input_survives(kind, strategy, make, exec_root):
    result = run(strategy(kind), make("echo new > a/dir/new.txt", inputs=["a/dir"],
                                      outputs=["a/dir/new.txt"]))
    assert result.exit_code == 0, result.stderr
    assert (exec_root / "a" / "dir" / "new.txt").read_text() == "new\n"


@pytest.mark.parametrize("kind", SANDBOXES)
@pytest.mark.parametrize("reuse", [True, False])
def test_a_reused_directory_shows_nothing_of_the_last_action(kind, reuse, strategy, make,
                                                             exec_root):
    """Action A reads inputs (one inside its outputs' directory, where bubblewrap makes
    its mount point on the disk), writes outputs, a declared directory, stray files and
    directories, and changes the mode of a directory B needs too; B, in the same
    directory, sees its own input and its outputs' directories (as made afresh), and
    nothing else: not A's inputs, outputs, stray files, nor the directory of A's output
    `out/k` that B does not need."""
    (exec_root / "out").mkdir()
    (exec_root / "out" / "ref.txt").write_text("ref\n")
    sandbox = strategy(kind, reuse=reuse)
    first = run(sandbox, make(
        "pwd > out/x; echo k > out/k/x; echo f > out/d/f; echo junk > out/extra; "
        "mkdir -p out/new/deeper; echo junk > out/new/deeper/f; echo junk > stray.txt; "
        "mkdir -p a/junk; echo z > out/sub/z; chmod 700 out/sub",
        inputs=["a/in.txt", "a/dir", "out/ref.txt"],
        outputs=["out/x", "out/k/x", "out/d", "out/sub/z"], output_directories=["out/d"]))
    assert (first.exit_code, first.stderr) == (0, b"")
    assert (exec_root / "out" / "d" / "f").read_text() == "f\n"
    second = run(sandbox, make(
        'seen=$(find . -mindepth 1 | sort); stat -c %a out/sub > out/sub/mode; '
        'pwd > out/where; echo "$seen" > out/y', inputs=["a/other.txt"],
        outputs=["out/y", "out/sub/mode", "out/where"]))
    assert (second.exit_code, second.stderr) == (0, b"")
    assert (exec_root / "out" / "y").read_text().split() == [
        "./a", "./a/other.txt", "./out", "./out/sub"]
    assert (exec_root / "out" / "sub" / "mode").read_text() == f"{0o777 & ~_umask():o}\n"
    same = (exec_root / "out" / "where").read_text() == (exec_root / "out" / "x").read_text()
    assert same == reuse
    assert_nothing_left(sandbox, sandbox.base)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_killed_bps_sandbox_directories_go_when_the_next_takes_one(tmp_path):
    """A bp killed with -9 leaves its sandbox directories; the next bp to use the base
    removes them, and nothing of a bp still running, nor what --sandbox_debug kept."""
    base = tmp_path / "sandbox"
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from buildpy.execution.sandboxdirs import SandboxDirs; "
         "d = SandboxDirs(Path(sys.argv[1])).take(); (d.path / 'left').write_text('x'); "
         "print(d.path, flush=True); time.sleep(60)", str(base)],
        stdout=subprocess.PIPE, text=True)
    try:
        left = Path(child.stdout.readline().strip())
        assert (left / "left").exists()
        alive = SandboxDirs(base)
        alive.take()
        (base / "Genrule-kept").mkdir()   # as --sandbox_debug keeps one
        later = SandboxDirs(base)
        assert os.path.exists(left)   # its bp still runs
        later.take()
        assert os.path.exists(left)
    finally:
        child.kill()
        child.wait()
    again = SandboxDirs(base)
    again.take()
    assert not os.path.exists(left.parent)
    assert sorted(p.name for p in base.iterdir()) == sorted(
        ["Genrule-kept", alive.root.name, later.root.name, again.root.name])
    for dirs in (alive, later, again):
        dirs.close()
    assert [p.name for p in base.iterdir()] == ["Genrule-kept"]


def test_registry_kills_only_the_groups_it_started(tmp_path):
    """After a crash the journal names pids; a reused pid (another session, or a leader
    that started at another time) must survive the reap."""
    def sleeper():
        return subprocess.Popen(["sleep", "30"], start_new_session=True)

    registry = ProcessRegistry(tmp_path / "running.log")
    ours, late, other = sleeper(), sleeper(), subprocess.Popen(["sleep", "30"])
    try:
        registry.add(ours.pid, ProcessRegistry.now() - 0.01)
        registry.add(late.pid, ProcessRegistry.now() - 3600)   # its pid, an old start
        registry.add(other.pid, ProcessRegistry.now())          # not a session leader
        registry.add(999999999, ProcessRegistry.now())          # gone
        assert registry.reap() == 1
        assert ours.wait(timeout=5) == -9
        assert late.poll() is None and other.poll() is None
        assert registry.running() == {}
    finally:
        for process in (ours, late, other):
            process.kill()
            process.wait()
