"""Tests are actions: each run and shard of a test is a TestRunner action of the action
graph, self-contained (its wrapper and runfiles are inputs), cached in the action cache,
run by the one scheduler. End to end with real test processes, and the actions as
made."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from buildpy.actions.graph import ActionKind
from buildpy.actions import tests as testactions
from buildpy.execution import testrunner
from buildpy.actions.tests import WRAPPER

TESTS = {
    "t/BUILD": '''
        sh_test(name = "pass_test", srcs = ["pass_test.sh"], data = ["data.txt"],
                args = ["$(location data.txt)"], env = {"WHERE": "$(location data.txt)"},
                size = "small")
        sh_test(name = "fail_test", srcs = ["fail_test.sh"], size = "small")
        sh_test(name = "sharded_test", srcs = ["pass_test.sh"], data = ["data.txt"],
                args = ["$(location data.txt)"], shard_count = 2, size = "small")
        sh_test(name = "external_test", srcs = ["pass_test.sh"], data = ["data.txt"],
                args = ["$(location data.txt)"], tags = ["external"], size = "small")
        ''',
    "t/data.txt": "data!\n",
    "t/pass_test.sh": '''
        #!/bin/sh
        echo "reading $1 ($WHERE) ${EXTRA-}"
        cat "$1"
        ''',
    "t/fail_test.sh": "#!/bin/sh\necho 'it broke'\nexit 1\n",
}


@pytest.fixture
def run_tests(bp, ws):
    root = ws(TESTS)
    for script in (root / "t").glob("*.sh"):
        script.chmod(0o755)

    def run(*args: str, code: int = 0):
        result = bp("-C", str(root), "test", *args)
        assert result.code == code, result.out + result.err
        return result

    run.root = root
    return run


def line_of(result, label: str) -> str:
    return next(l for l in result.out.splitlines() if l.startswith(label + " "))


def test_a_test_run_is_a_test_runner_action():
    spec = testactions.TestSpec(
        label="//t:x", package="t", name="x", executable="bp-out/c/bin/t/x",
        runfiles=("bp-out/c/bin/t/x", "t/data.txt"), args=("t/data.txt",),
        env={"MINE": "yes"}, size="small", timeout=60.0, shard_count=2,
        owner="//t:x (abc)", configuration="abc")
    made = testactions.test_actions(spec, "__main__", {"EXTRA": "1"})
    assert [unit for unit, _ in made] == ["bp-out/testlogs/t/x/shard_1_of_2",
                                          "bp-out/testlogs/t/x/shard_2_of_2"]
    unit, action = made[1]
    assert action.mnemonic == "TestRunner" and action.kind is ActionKind.RUN
    assert action.outputs == (f"{unit}/test.log", f"{unit}/test.xml", f"{unit}/test.outputs")
    assert action.output_directories == (f"{unit}/test.outputs",)
    assert set(action.inputs) == {WRAPPER, "bp-out/c/bin/t/x", "t/data.txt",
                                  "bp-out/c/bin/t/x.runfiles/MANIFEST"}
    assert action.argv[:2] == ("/bin/sh", WRAPPER)
    assert action.argv[-2:] == ("bp-out/c/bin/t/x", "t/data.txt")
    env = dict(action.env)
    assert env["TEST_TARGET"] == "//t:x" and env["TEST_SHARD_INDEX"] == "1"
    assert env["TEST_TOTAL_SHARDS"] == "2" and env["MINE"] == "yes" and env["EXTRA"] == "1"
    assert env["TEST_TMPDIR"] == "bp-out/_tmp/t/x/shard_2_of_2" and "PATH" in env
    assert action.timeout == 60.0 and action.owner == "//t:x (abc)"
    assert action.progress_message == "Testing //t:x (shard 2 of 2)"
    # the timeout and the environment are what the action computes: in its key
    other = testactions.test_actions(replace(spec, timeout=61.0), "__main__",
                                    {"EXTRA": "1"})[1][1]
    assert other.definition != action.definition
    # a user's own TEST_TMPDIR wins, and is not made absolute by the wrapper
    mine = testactions.test_actions(replace(spec, env={"TEST_TMPDIR": "/tmp/x"}),
                                   "__main__", {})[0][1]
    assert dict(mine.env)["TEST_TMPDIR"] == "/tmp/x" and "TEST_TMPDIR" not in mine.argv[3]


def test_a_passing_test_is_an_action_cache_hit_and_the_test_env_is_in_its_key(run_tests):
    first = run_tests("//t:pass_test")
    assert "Testing //t:pass_test" in first.err
    assert "(cached)" not in line_of(first, "//t:pass_test")
    log = run_tests.root / "bp-out/testlogs/t/pass_test/test.log"
    assert log.read_text() == "reading t/data.txt (t/data.txt) \ndata!\n"
    duration = float(ET.parse(log.with_name("test.xml")).getroot().find("testsuite")
                     .get("time"))
    shutil.rmtree(run_tests.root / "bp-out")   # the action cache (shared) restores it
    again = run_tests("//t:pass_test")
    assert "Testing //t:pass_test" not in again.err
    assert line_of(again, "//t:pass_test").endswith(f"(cached) PASSED in {duration:.1f}s")
    assert again.out.rstrip().endswith("Executed 0 out of 1 test: 1 test pass.")
    assert log.read_text() == "reading t/data.txt (t/data.txt) \ndata!\n"
    other = run_tests("//t:pass_test", "--test_env=EXTRA=more")
    assert "(cached)" not in line_of(other, "//t:pass_test")
    assert log.read_text().startswith("reading t/data.txt (t/data.txt) more\n")


def test_a_failing_test_keeps_its_logs_runs_again_and_stops_no_other_test(run_tests):
    result = run_tests("//t:fail_test", "//t:pass_test", code=3)
    assert "FAILED in" in line_of(result, "//t:fail_test")
    assert "PASSED in" in line_of(result, "//t:pass_test")
    assert "TestRunner failed" not in result.err   # the summary reports a failed test
    logs = run_tests.root / "bp-out/testlogs/t/fail_test"
    assert (logs / "test.log").read_text() == "it broke\n"
    suite = ET.parse(logs / "test.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1" and "it broke" in suite.find("system-out").text
    again = run_tests("//t:fail_test", "//t:pass_test", code=3)
    assert "(cached)" not in line_of(again, "//t:fail_test")
    assert "(cached)" in line_of(again, "//t:pass_test")


def test_each_shard_is_an_action_and_an_external_test_always_runs(run_tests):
    result = run_tests("//t:sharded_test", "//t:external_test")
    assert "Testing //t:sharded_test (shard 1 of 2)" in result.err
    assert "Testing //t:sharded_test (shard 2 of 2)" in result.err
    again = run_tests("//t:sharded_test", "//t:external_test")
    assert "(cached) PASSED" in line_of(again, "//t:sharded_test")
    assert "(cached)" not in line_of(again, "//t:external_test")
    merged = (run_tests.root / "bp-out/testlogs/t/sharded_test/test.log").read_text()
    assert "==== shard_1_of_2 ====\nreading" in merged and "==== shard_2_of_2 ====" in merged
    logs = run_tests.root / "bp-out/testlogs/t/sharded_test"
    run_tests("//t:sharded_test", "--runs_per_test=2")
    assert sorted(p.name for p in logs.iterdir() if p.is_dir()) == ["run_1_of_2",
                                                                    "run_2_of_2"]
    assert (logs / "run_2_of_2" / "shard_2_of_2" / "test.log").exists()


def test_the_action_runs_anywhere_its_inputs_are_laid_out(run_tests, tmp_path):
    """What a remote worker does: a fresh directory holding the inputs (the runfiles
    tree laid out from its MANIFEST), the argv and env, nothing of bp."""
    from buildpy.execution.execroot import exec_root_for

    run_tests("//t:pass_test")
    exec_root = exec_root_for(Path(os.environ["XDG_CACHE_HOME"]) / "bp", run_tests.root)
    spec_exe = next((exec_root / "bp-out").glob("*/bin/t/pass_test"))
    exe = spec_exe.relative_to(exec_root).as_posix()
    spec = testactions.TestSpec(label="//t:pass_test", package="t", name="pass_test",
                               executable=exe, runfiles=(exe, "t/data.txt"),
                               args=("t/data.txt",), size="small", timeout=60.0)
    unit, action = testactions.test_actions(spec, "__main__", {})[0]
    root = tmp_path / "input-root"
    for path in action.inputs:
        source = exec_root / path
        if path.endswith(".runfiles/MANIFEST"):
            tree = root / path[:-len("/MANIFEST")]
            for line in source.read_text().splitlines():
                name, target = line.split(" ", 1)
                (tree / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(target, tree / name)
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / path)
    (root / unit / "test.outputs").mkdir(parents=True)
    done = subprocess.run(list(action.argv), cwd=root, env=dict(action.env), timeout=60)
    assert done.returncode == 0
    assert (root / unit / "test.log").read_text() == "reading t/data.txt () \ndata!\n"
    suite = ET.parse(root / unit / "test.xml").getroot().find("testsuite")
    assert suite.get("name") == "//t:pass_test" and suite.get("failures") == "0"
    assert not (root / "bp-out/_tmp/t/pass_test").exists()   # its TEST_TMPDIR went


def test_exclusive_tests_run_alone_after_the_others(bp, ws, tmp_path):
    trace = tmp_path / "trace"
    script = '''
        #!/bin/sh
        echo "start $1" >> "$TRACE"
        sleep 0.3
        echo "end $1" >> "$TRACE"
        '''
    root = ws({
        "BUILD": '''
            sh_test(name = "a", srcs = ["t.sh"], args = ["a"], tags = ["no-sandbox"])
            sh_test(name = "b", srcs = ["t.sh"], args = ["b"], tags = ["no-sandbox"])
            sh_test(name = "x", srcs = ["t.sh"], args = ["x"],
                    tags = ["no-sandbox", "exclusive"])
            ''',
        "t.sh": script})
    (root / "t.sh").chmod(0o755)
    result = bp("-C", str(root), "test", "//:all", "--jobs=4", f"--test_env=TRACE={trace}")
    assert result.code == 0, result.out + result.err
    lines = trace.read_text().splitlines()
    assert lines[-2:] == ["start x", "end x"], lines


def test_streamed_output_shows_each_test_as_it_runs(run_tests):
    result = run_tests("//t:pass_test", "//t:sharded_test", "--test_output=streamed")
    assert result.out.count("data!\n") == 3
    assert result.out.index("data!") < result.out.index("//t:pass_test ")


def test_a_test_action_that_could_not_run_gets_a_log_and_its_next_attempt(tmp_path):
    """The wrapper never ran (a missing input, a process that did not start): the
    attempt's log says why, a JUnit report is written, and the next attempt runs."""
    from buildpy.execution.executor import Outcome

    spec = testactions.TestSpec(label="//t:x", package="t", name="x", executable="t/x",
                               runfiles=("t/x",), attempts=2)
    run = testrunner.TestRun([spec], tmp_path, tmp_path, "__main__", {})
    action = run.actions()[0]
    failed = Outcome(action, "", False, False, {}, None, "missing input file 't/x'")
    assert run.retry(failed)
    logs = tmp_path / "bp-out/testlogs/t/x"
    assert (logs / "test_attempt_1.log").read_text() == \
        "bp could not run the test: missing input file 't/x'\n"
    assert ET.parse(logs / "test.xml").getroot().find("testsuite").get("failures") == "1"
    assert not run.retry(failed)   # the last attempt: its log stays as test.log
    run.finished(failed)
    [result] = run.results(set())
    assert result.status is testrunner.Status.FAILED and result.failed_attempts == 2
    assert result.logs == [logs / "test.log"]


def test_with_keep_going_the_tests_whose_dependencies_built_run(bp, ws):
    root = ws({
        "BUILD": '''
            genrule(name = "broken", outs = ["b.txt"], cmd = "exit 1")
            sh_test(name = "ok_test", srcs = ["t.sh"])
            sh_test(name = "blocked_test", srcs = ["t.sh"], data = [":broken"])
            ''',
        "t.sh": "#!/bin/sh\necho fine\n"})
    (root / "t.sh").chmod(0o755)
    result = bp("-C", str(root), "test", "//:all", "-k")
    assert result.code == 1, result.out + result.err
    assert "FAILED: build did NOT complete successfully\n" in result.err
    assert "PASSED in" in line_of(result, "//:ok_test")
    assert "NO STATUS" in line_of(result, "//:blocked_test")
    stopped = bp("-C", str(root), "test", "//:blocked_test")
    assert stopped.code == 1
    assert "FAILED: build did NOT complete successfully; no tests ran" in stopped.err


def test_aquery_shows_a_tests_test_runner_actions(bp, ws):
    root = ws({"t/BUILD": 'sh_test(name = "t", srcs = ["t.sh"], shard_count = 2, '
                          'timeout = "short")',
               "t/t.sh": "true\n"})
    result = bp("-C", str(root), "aquery", "mnemonic(TestRunner, //t:t)")
    assert result.code == 0, result.err
    assert result.out.startswith("action 'Testing //t:t (shard 1 of 2)'\n"
                                 "  Mnemonic: TestRunner\n  Target: //t:t\n")
    assert "action 'Testing //t:t (shard 2 of 2)'" in result.out
    assert "TEST_TIMEOUT=60" in result.out and "external/prelude/test/test-setup.sh" \
        in result.out


def test_the_wrappers_junit_report_is_xml_whatever_the_test_printed(bp, ws):
    root = ws({"BUILD": 'sh_test(name = "noisy_test", srcs = ["t.sh"])',
               "t.sh": "#!/bin/sh\nprintf 'a<b & \"c\" \\377\\001 d\\n'\nexit 2\n"})
    (root / "t.sh").chmod(0o755)
    result = bp("-C", str(root), "test", "//:noisy_test")
    assert result.code == 3, result.out + result.err
    suite = ET.parse(root / "bp-out/testlogs/noisy_test/test.xml").getroot().find(
        "testsuite")
    failure = suite.find("testcase").find("failure")
    assert failure.get("message") == "exited with 2"
    assert failure.text.startswith('a<b & "c" ') and failure.text.endswith(" d\n")


def test_a_location_in_a_tests_args_is_expanded_by_analysis(bp, ws):
    """One $(location) implementation: analysis', which rejects a label the test does
    not depend on (bp test's own expansion made it an empty word)."""
    root = ws({"t/BUILD": 'sh_test(name = "x_test", srcs = ["x.sh"], '
                          'args = ["$(location :nope)"])',
               "t/x.sh": "#!/bin/sh\n"})
    result = bp("-C", str(root), "test", "//t:x_test")
    assert result.code == 2
    assert ("in sh_test rule '//t:x_test (" in result.err and "label ':nope' in $(location) "
            "is not a declared prerequisite of this rule" in result.err)
