"""bp build, run and clean: incremental builds by content, the cache, failures, locks,
and interruptions (Ctrl-C, kill -9), with real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHAIN = {
    "src/BUILD": '''
        genrule(name = "a", srcs = ["a.txt"], outs = ["a.out"], cmd = "cat $< > $@")
        genrule(name = "b", srcs = [":a"], outs = ["b.out"], cmd = "tr a-z A-Z < $< > $@")
        genrule(name = "c", srcs = [":b"], outs = ["c.out"], cmd = "cat $< $< > $@")
        genrule(name = "d", srcs = ["d.txt"], outs = ["d.out"], cmd = "cat $< > $@")
        genrule(name = "first", srcs = ["a.txt"], outs = ["first.out"],
                cmd = "head -c 1 $< > $@")
        genrule(name = "after_first", srcs = [":first"], outs = ["after.out"],
                cmd = "cat $< > $@; echo ran >> $@")
        ''',
    "src/a.txt": "hello\n",
    "src/d.txt": "dee\n",
}


def executed(result) -> int:
    line = [l for l in result.err.splitlines() if l.startswith("INFO: ") and "actions:" in l][-1]
    return int(line.split(": ")[2].split(" executed")[0])


@pytest.fixture
def build(bp, ws):
    root = ws(CHAIN)

    def run(*args: str, code: int = 0):
        result = bp("-C", str(root), "build", *args)
        assert result.code == code, result.err
        return result

    run.root = root
    return run


def out(root: Path, name: str) -> str:
    return (root / "bp-bin" / "src" / name).read_text()


def test_second_build_and_touch_run_nothing(build):
    assert executed(build("//src:all")) == 6
    assert out(build.root, "c.out") == "HELLO\nHELLO\n"
    assert "INFO: 6 actions: 0 executed, 6 cache hits" in build("//src:all").err
    os.utime(build.root / "src" / "a.txt")
    assert executed(build("//src:all")) == 0


def test_targets_and_their_files_are_listed_up_to_show_result_targets(build):
    """As Bazel's --show_result (default 1): a large build does not list every target."""
    single = build("//src:c").err
    assert "Target //src:c up-to-date:\n  bp-out/" in single and single.count("Target ") == 1
    assert "Target " not in build("//src:c", "//src:d").err
    both = build("//src:c", "//src:d", "--show_result=2").err
    assert "Target //src:c up-to-date:" in both and "Target //src:d up-to-date:" in both
    assert "Target " not in build("//src:c", "--show_result=0").err


def test_a_change_reruns_exactly_its_dependents_with_early_cutoff(build):
    build("//src:all")
    (build.root / "src" / "a.txt").write_text("hullo\n")   # same first byte: cutoff
    result = build("//src:all")
    ran = [l.split("] ", 1)[1] for l in result.err.splitlines() if l.startswith("[")]
    assert sorted(ran) == ["Executing genrule //src:a", "Executing genrule //src:b",
                           "Executing genrule //src:c", "Executing genrule //src:first"]
    assert out(build.root, "c.out") == "HULLO\nHULLO\n"


def test_same_size_edits_right_after_a_build_are_always_seen(build):
    source = build.root / "src" / "d.txt"
    for round_ in range(12):
        text = "ab\n" if round_ % 2 else "cd\n"
        source.write_text(text)   # same size, often the same mtime as the last build
        build("//src:d")
        assert out(build.root, "d.out") == text, f"round {round_}"


def test_clean_restores_from_the_cache(build):
    build("//src:all")
    assert build.root.joinpath("bp-out").exists()
    assert executed(build("//src:all")) == 0
    from conftest import REPO_ROOT  # noqa: F401 - the fixture's bp runs in-process
    bp_result = subprocess.run([sys.executable, "-m", "buildpy", "-C", str(build.root),
                                "clean"], capture_output=True, text=True, timeout=60)
    assert bp_result.returncode == 0
    assert not (build.root / "bp-out" / "linux_x86_64-fastbuild").exists()
    assert executed(build("//src:all")) == 0
    assert out(build.root, "c.out") == "HELLO\nHELLO\n"


def test_a_corrupted_cache_blob_is_detected_and_rebuilt(build):
    build("//src:d")
    output = build.root / "bp-bin" / "src" / "d.out"
    cas = Path(os.environ["XDG_CACHE_HOME"]) / "bp" / "cas"
    blob = next(p for p in cas.rglob("*") if p.is_file() and p.read_bytes() == b"dee\n")
    blob.chmod(0o644)
    blob.write_bytes(b"XXX\n")
    output.unlink()
    result = build("//src:d")
    assert "WARNING: cache entry of Genrule for '//src:d' was damaged (CorruptBlob)" in result.err
    assert executed(result) == 1 and output.read_text() == "dee\n"


def test_failures_exit_1_and_keep_going_builds_the_rest(bp, ws):
    root = ws({"f/BUILD": '''
        genrule(name = "bad", outs = ["bad.out"], cmd = "echo broken >&2; exit 3")
        genrule(name = "after", srcs = [":bad"], outs = ["after.out"], cmd = "cp $< $@")
        genrule(name = "good", outs = ["good.out"], cmd = "echo ok > $@")
        genrule(name = "lazy", outs = ["lazy.out"], cmd = "true")
        '''})
    result = bp("-C", str(root), "build", "//f:bad")
    assert result.code == 1
    assert "ERROR: //f:bad: Genrule failed: exit code 3 (Executing genrule //f:bad)\n" \
           "  (use --verbose_failures to see the command)\nbroken\n" in result.err
    assert "FAILED: build did NOT complete successfully (1 failed, 0 skipped)" in result.err
    assert "Target //f:bad failed to build\n" in result.err   # no paths that do not exist
    result = bp("-C", str(root), "build", "-k", "//f:good", "//f:bad", "--show_result=5")
    assert "Target //f:good up-to-date:\n  bp-out/linux_x86_64-fastbuild/bin/f/good.out\n" \
        "Target //f:bad failed to build\n" in result.err
    result = bp("-C", str(root), "build", "--verbose_failures", "-k", "//f:all")
    assert result.code == 1
    assert "  command: /bin/bash -c 'set -euo pipefail\necho broken >&2; exit 3' ''" in result.err
    assert (root / "bp-bin" / "f" / "good.out").read_text() == "ok\n"
    assert "Genrule failed: did not create its declared output bp-out/" in result.err
    assert "(2 failed, 1 skipped)" in result.err


def test_run_passes_arguments_and_the_exit_code(bp, ws):
    """bp run, as bazel run: the program runs in its runfiles tree (its data at their
    workspace paths), with its arguments; its exit code is bp's."""
    root = ws({"r/BUILD": 'sh_binary(name = "tool", srcs = ["tool.sh"], data = ["data.txt"])',
               "r/tool.sh": '#!/bin/sh\nout="$BUILD_WORKSPACE_DIRECTORY/seen.txt"\n'
                           'echo "args: $*" > "$out"\ncat r/data.txt >> "$out"\n'
                           'basename "$PWD" >> "$out"\nexit 3\n',
               "r/data.txt": "from runfiles\n"})
    (root / "r" / "tool.sh").chmod(0o755)
    result = bp("-C", str(root), "run", "//r:tool", "--", "x", "y")
    assert result.code == 3
    assert "INFO: Running //r:tool" in result.err
    assert (root / "seen.txt").read_text() == "args: x y\nfrom runfiles\n__main__\n"


def test_runfiles_trees_are_actions_of_the_build(bp, ws):
    root = ws({"r/BUILD": 'sh_binary(name = "tool", srcs = ["tool.sh"], data = ["data.txt"])',
               "r/tool.sh": '#!/bin/sh\ncat "$RUNFILES_DIR/__main__/r/data.txt" > '
                           '"$BUILD_WORKSPACE_DIRECTORY/seen.txt"\n',
               "r/data.txt": "from runfiles\n"})
    (root / "r" / "tool.sh").chmod(0o755)
    tree = root / "bp-bin" / "r" / "tool.runfiles"
    first = bp("-C", str(root), "build", "--nobuild_runfile_links", "//r:tool")
    assert first.code == 0, first.err
    assert (root / "bp-bin" / "r" / "tool").exists() and not tree.exists()
    second = bp("-C", str(root), "build", "//r:tool")
    assert "] Creating runfiles tree bp-out/" in second.err
    assert (tree / "__main__" / "r" / "data.txt").read_text() == "from runfiles\n"
    assert (tree / "MANIFEST").read_text().startswith("__main__/r/data.txt /")
    assert "0 executed" in bp("-C", str(root), "build", "//r:tool").err
    shutil.rmtree(tree)   # a tree removed by hand is linked again
    again = bp("-C", str(root), "build", "//r:tool")
    assert "1 executed" in again.err and (tree / "__main__" / "r" / "tool.sh").is_symlink()
    (root / "r" / "data.txt").write_text("changed\n")
    assert bp("-C", str(root), "build", "//r:tool").code == 0
    assert (tree / "__main__" / "r" / "data.txt").read_text() == "changed\n"
    shutil.rmtree(tree)
    run = bp("-C", str(root), "run", "//r:tool")
    assert run.code == 0 and (root / "seen.txt").read_text() == "changed\n"


def test_lock_blocks_a_second_command(bp, ws):
    import fcntl

    root = ws(CHAIN)
    lock = root / "bp-out" / ".bp-state" / "lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a+") as handle:
        handle.write("pid 12345")
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_EX)
        result = bp("-C", str(root), "build", "--noblock_for_lock", "//src:d")
    assert result.code == 36
    assert result.err.startswith("ERROR: another bp command (pid 12345) is running in this "
                                 "workspace\n")


def _start_slow_build(root: Path, strategy: str) -> subprocess.Popen:
    """A build whose action writes half its output, creates `root/../started`, then sleeps
    while `root/../slow` exists (paths outside the workspace: not for linux-sandbox)."""
    marker = root.parent / "slow"
    marker.write_text("")
    (root / "s").mkdir()
    (root / "s" / "BUILD").write_text(
        'genrule(name = "slow", outs = ["slow.out"], '
        f'cmd = "echo partial > $@; touch {root.parent / "started"}; '
        f'if [ -e {marker} ]; then sleep 30; fi; echo done >> $@")\n')
    return subprocess.Popen([sys.executable, "-m", "buildpy", "-C", str(root), "build",
                             f"--spawn_strategy={strategy}", "//s:slow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _wait_for(path: Path, seconds: float = 60) -> None:
    _wait_until(path.exists, f"{path} never appeared", seconds)


def _wait_until(condition, what: str, seconds: float = 60) -> None:
    """Poll `condition` (a loaded machine may be slow, so the bound is generous)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _journaled(root: Path) -> bool:
    """Whether bp's journal of running actions records one that has not ended."""
    journal = root / "bp-out" / ".bp-state" / "running.log"
    return journal.exists() and any(line.startswith("+") for line in
                                    journal.read_text().splitlines())


def _actions_alive(root: Path) -> list[str]:
    """Processes still running this test's slow action (their command names its marker)."""
    ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    return [l for l in ps.splitlines() if str(root.parent / "slow") in l]


@pytest.mark.parametrize("native", ["action", "result"])   # with a call stack, without
def test_ctrl_c_during_analysis_is_an_interruption(bp, ws, monkeypatch, native):
    from buildpy.analysis import analyzer

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt   # as if Ctrl-C came while a native of analysis ran

    monkeypatch.setattr(analyzer._Recorder, native, interrupted)
    root = ws(CHAIN)
    result = bp("-C", str(root), "build", "//src:d")
    assert result.code == 8 and result.err.endswith("ERROR: interrupted\n"), result.err


@pytest.mark.parametrize("strategy", ["local", "sandboxed"])
def test_ctrl_c_stops_cleanly_with_exit_8(ws, strategy):
    root = ws({"WORKSPACE": ""})
    process = _start_slow_build(root, strategy)
    try:
        _wait_for(root.parent / "started")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 8, err
    assert b"interrupted" in err
    _wait_until(lambda: not _actions_alive(root), "the interrupted action is still running")
    partial = root / "bp-out" / "linux_x86_64-fastbuild" / "bin" / "s" / "slow.out"
    assert not partial.exists()   # an interrupted action leaves no half-written output


@pytest.mark.parametrize("strategy", ["local", "sandboxed"])   # bwrap dies with bp
def test_kill_9_mid_build_then_build_again_is_correct(ws, strategy):
    root = ws({"WORKSPACE": ""})
    process = _start_slow_build(root, strategy)
    partial = root / "bp-out" / "linux_x86_64-fastbuild" / "bin" / "s" / "slow.out"
    try:
        _wait_for(root.parent / "started")
        # the action runs before bp journals it (just after its start): wait for that
        _wait_until(lambda: _journaled(root), "the running action was never journaled")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        process.kill()
    assert _actions_alive(root)   # the action outlives a bp killed with -9
    (root.parent / "slow").unlink()   # the same action, now quick
    result = subprocess.run([sys.executable, "-m", "buildpy", "-C", str(root), "build",
                             f"--spawn_strategy={strategy}", "//s:slow"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert partial.read_text() == "partial\ndone\n"
    assert "killed the actions an interrupted bp left running" in result.stderr
    _wait_until(lambda: not _actions_alive(root), "the killed action is still running")
    again = subprocess.run([sys.executable, "-m", "buildpy", "-C", str(root), "build",
                            f"--spawn_strategy={strategy}", "//s:slow"],
                           capture_output=True, text=True, timeout=60)
    assert "0 executed" in again.stderr


def test_the_example_monorepo_builds_and_runs(bp, tmp_path):
    import shutil

    from conftest import REPO_ROOT

    root = tmp_path / "monorepo"
    shutil.copytree(REPO_ROOT / "examples" / "monorepo", root,   # not a local build's outputs
                    ignore=shutil.ignore_patterns("bp-out", "bp-bin"))
    first = bp("-C", str(root), "build", "//...")
    assert first.code == 0, first.err
    assert executed(first) > 10
    assert executed(bp("-C", str(root), "build", "//...")) == 0
    hello = subprocess.run([str(root / "bp-bin" / "app" / "hello"), "bp"],
                           capture_output=True, text=True, timeout=30)
    assert hello.returncode == 0 and "Hello, BP!" in hello.stdout
    result = bp("-C", str(root), "run", "//tools/py:fmt", "--", "--help")
    assert result.code == 0


SNEAKY = {
    "n/BUILD": '''
        genrule(name = "sneaky", srcs = ["declared.txt"], outs = ["sneaky.out"],
                cmd = "cat n/declared.txt n/undeclared.txt > $@")
        genrule(name = "online", outs = ["online.out"],
                cmd = "python3 -c 'import socket; socket.create_connection((\\"127.0.0.1\\", %s), 2)' > $@")
        ''',
    "n/declared.txt": "yes\n",
    "n/undeclared.txt": "secret\n",
}


def _bwrap_works() -> bool:
    from buildpy.execution.sandbox import LinuxSandboxStrategy

    return LinuxSandboxStrategy.available()[0]


@pytest.mark.skipif(not _bwrap_works(), reason="bubblewrap cannot run here "
                    "(scripts/install-test-deps installs it)")
def test_linux_sandbox_catches_undeclared_inputs_and_network(bp, ws):
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        files = dict(SNEAKY)
        files["n/BUILD"] = files["n/BUILD"] % server.getsockname()[1]
        root = ws(files)
        assert bp("-C", str(root), "build", "--spawn_strategy=local",
                  "//n:sneaky").code == 0   # local: not hermetic
        bp("-C", str(root), "clean", "--expunge")
        result = bp("-C", str(root), "build", "--spawn_strategy=linux-sandbox", "//n:sneaky",
                    "--disk_cache", str(root.parent / "other-cache"))
        assert result.code == 1
        assert "n/undeclared.txt: No such file or directory" in result.err
        assert "'n/undeclared.txt' exists in the workspace but is not a declared input of " \
               "`//n:sneaky`" in result.err
        assert bp("-C", str(root), "build", "--spawn_strategy=local", "//n:online").code == 0
        bp("-C", str(root), "clean", "--expunge")
        result = bp("-C", str(root), "build", "--spawn_strategy=linux-sandbox", "//n:online",
                    "--disk_cache", str(root.parent / "third-cache"))
        assert result.code == 1 and "Genrule failed" in result.err
    finally:
        server.close()


def test_the_default_sandbox_names_an_undeclared_file_and_where_it_goes(bp, ws):
    root = ws({**SNEAKY, "n/BUILD": '''
        genrule(name = "sneaky", srcs = ["declared.txt"], outs = ["sneaky.out"],
                cmd = "cat n/declared.txt n/undeclared.txt > $@")
        genrule(name = "tool", outs = ["tool.out"], cmd = "n/gen.sh > $@")
        ''', "n/gen.sh": "#!/bin/sh\necho hi\n"})
    (root / "n" / "gen.sh").chmod(0o755)
    result = bp("-C", str(root), "build", "//n:sneaky")   # no strategy given: a sandbox
    assert result.code == 1
    assert "WARNING: 'n/undeclared.txt' exists in the workspace but is not a declared input " \
           "of `//n:sneaky`; add it (or the target that generates it) to the genrule's " \
           "`srcs`\n" in result.err
    result = bp("-C", str(root), "build", "//n:tool")
    assert result.code == 1
    assert "WARNING: 'n/gen.sh' exists in the workspace but is not a declared input of " \
           "`//n:tool`; add it (or the target that generates it) to the genrule's " \
           "`tools`\n" in result.err
    result = bp("-C", str(root), "build", "--spawn_strategy=local", "//n:sneaky", "//n:tool")
    assert result.code == 0, result.err   # local stays available, and is not hermetic


@pytest.mark.skipif(not __import__("shutil").which("strace"), reason="strace is not installed")
def test_tracing_reports_undeclared_reads(bp, ws):
    root = ws({k: v for k, v in SNEAKY.items()})
    root.joinpath("n/BUILD").write_text(
        'genrule(name = "sneaky", srcs = ["declared.txt"], outs = ["sneaky.out"],\n'
        '        cmd = "cat n/declared.txt n/undeclared.txt > $@")\n')
    result = bp("-C", str(root), "build", "--tracing=warn", "//n:sneaky")
    assert result.code == 0
    assert "WARNING: Genrule of '//n:sneaky' read files it does not declare: " \
           "n/undeclared.txt" in result.err
    bp("-C", str(root), "clean", "--expunge")
    result = bp("-C", str(root), "build", "--tracing=error", "//n:sneaky",
                "--disk_cache", str(root.parent / "fresh-cache"))
    assert result.code == 1
    assert "read files it does not declare: n/undeclared.txt (--tracing=error)" in result.err


def test_subcommands_live_progress_and_tags(bp, ws):
    root = ws({"t/BUILD": '''
        genrule(name = "net", outs = ["net.out"], cmd = "echo hi > $@",
                tags = ["requires-network", "local", "unrelated"])
        '''})
    result = bp("-C", str(root), "build", "-s", "--curses=yes", "--color=no", "//t:net")
    assert result.code == 0
    assert "SUBCOMMAND: # //t:net (" in result.err and "echo hi > bp-out/" in result.err
    records = json.loads(bp("-C", str(root), "aquery", "//t:net", "--output=jsonproto").out)
    assert records[0]["execution_requirements"] == {"local": "", "requires-network": ""}


def test_the_saved_analysis_notices_every_change(bp, ws):
    root = ws({"p/BUILD": '''
        load(":defs.bzl", "WORD")
        genrule(name = "g", srcs = glob(["*.in"]), outs = ["g.out"],
                cmd = "echo " + WORD + " $(SRCS) > $@")
        ''', "p/defs.bzl": 'WORD = "one"', "p/a.in": ""})

    def output() -> str:
        result = bp("-C", str(root), "build", "//...")
        assert result.code == 0, result.err
        return (root / "bp-bin" / "p" / "g.out").read_text()

    assert output() == "one p/a.in\n"
    (root / "p" / "defs.bzl").write_text('WORD = "two"')           # a .bzl file, same size
    assert output() == "two p/a.in\n"
    (root / "p" / "b.in").write_text("")                           # a new file for glob()
    assert output() == "two p/a.in p/b.in\n"
    build = root / "p" / "BUILD"
    build.write_text(build.read_text().replace("echo ", "echo X"))  # the BUILD file
    assert output() == "Xtwo p/a.in p/b.in\n"
    (root / "q").mkdir()
    (root / "q" / "BUILD").write_text('genrule(name = "q", outs = ["q.out"], cmd = "echo q > $@")')
    output()                                                       # a new package
    assert (root / "bp-bin" / "q" / "q.out").read_text() == "q\n"


def test_outputs_changed_behind_bps_back_are_restored(build):
    build("//src:all")
    target = build.root / "bp-bin" / "src" / "c.out"
    assert target.stat().st_mode & 0o222 == 0   # outputs are read-only, as in Bazel
    target.chmod(0o644)   # an output edited in place edits its cached copy (a hard link)
    target.write_text("tampered\n")
    result = build("//src:all")
    assert "WARNING: cache entry of Genrule for '//src:c' was damaged" in result.err
    assert executed(result) == 1 and target.read_text() == "HELLO\nHELLO\n"
    target.unlink()
    assert executed(build("//src:all")) == 0
    assert target.read_text() == "HELLO\nHELLO\n"
    target.unlink()   # replaced rather than edited: its cached copy is intact
    target.write_text("replaced\n")
    assert executed(build("//src:all")) == 0
    assert target.read_text() == "HELLO\nHELLO\n"


def test_bad_execution_flags_and_run_targets(bp, ws):
    root = ws(CHAIN)
    result = bp("-C", str(root), "build", "//src:d", "--define", "nope")
    assert (result.code, result.err) == (
        2, "ERROR: invalid --define 'nope': expected NAME=VALUE\n"
           "hint: for example --define=debug=1\n")
    result = bp("-C", str(root), "build", "//src:d", "--strategy=Genrule=fast")
    assert (result.code, result.err) == (
        2, "ERROR: invalid --strategy 'Genrule=fast'\n"
           "hint: write --strategy=MNEMONIC=local|sandboxed|linux-sandbox\n")
    result = bp("-C", str(root), "build", "//src:d", "--sandbox_add_mount_pair=/no/such/dir")
    assert (result.code, result.err) == (
        2, "ERROR: --sandbox_add_mount_pair: '/no/such/dir' does not exist\n"
           "hint: give an existing host path, optionally as SRC:DST\n")
    result = bp("-C", str(root), "run", "//src:d")
    assert result.code == 2
    assert result.err.endswith("ERROR: '//src:d' is not an executable target\n"
                               "hint: bp run needs one *_binary, *_test or executable rule\n")


def test_an_output_file_named_on_the_command_line_is_built(bp, ws):
    """`bp build //p:out.txt` builds the rule that generates out.txt, as Bazel does (it
    used to build nothing and succeed)."""
    root = ws({"p/BUILD": '''
        genrule(name = "g", outs = ["out.txt", "other.txt"],
                cmd = "echo hi > $(@D)/out.txt; echo x > $(@D)/other.txt")
        '''})
    result = bp("-C", str(root), "build", "//p:out.txt")
    assert result.code == 0, result.err
    assert (root / "bp-bin" / "p" / "out.txt").read_text() == "hi\n"
    assert "Target //p:out.txt up-to-date:\n  bp-out/linux_x86_64-fastbuild/bin/p/out.txt\n" \
        in result.err


@pytest.mark.parametrize("strategy", ["local", "sandboxed"])
def test_an_output_that_is_a_fifo_fails_instead_of_hanging(bp, ws, strategy):
    """Storing a fifo would block on its read forever; it is refused, named."""
    root = ws({"p/BUILD": '''
        genrule(name = "f", outs = ["f.out"], cmd = "mkfifo $@")
        '''})
    result = bp("-C", str(root), "build", "//p:f", f"--spawn_strategy={strategy}")
    assert result.code == 1
    assert ("Genrule failed: created bp-out/linux_x86_64-fastbuild/bin/p/f.out as a fifo, "
            "not a regular file") in result.err
