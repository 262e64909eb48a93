"""bp test: the test environment, sharding, retries, timeouts, filters, caching,
outputs, JUnit XML and exit codes, with real test processes."""

from __future__ import annotations

import os
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

TESTS = {
    "t/BUILD": '''
        sh_test(name = "env_test", srcs = ["env_test.sh"], data = ["data.txt"],
                args = ["$(location data.txt)", "'two words'"], env = {"MINE": "yes"},
                size = "small", tags = ["envy"])
        sh_test(name = "sharded_test", srcs = ["sharded_test.sh"], shard_count = 3,
                size = "small")
        sh_test(name = "failing_test", srcs = ["failing_test.sh"], size = "medium",
                tags = ["manual"])
        sh_test(name = "flaky_test", srcs = ["flaky_test.sh"], flaky = True,
                tags = ["manual", "no-sandbox"])
        sh_test(name = "slow_test", srcs = ["slow_test.sh"], tags = ["manual"])
        sh_test(name = "dep_test", srcs = ["dep_test.sh"], data = [":gen"], size = "large")
        genrule(name = "gen", srcs = ["dep.txt"], outs = ["gen.txt"], cmd = "cp $< $@")
        test_suite(name = "small_ones", tags = ["small"])
        ''',
    "t/data.txt": "data!\n",
    "t/dep.txt": "one\n",
    "t/env_test.sh": '''
        #!/bin/sh
        set -eu
        for v in TEST_TMPDIR TEST_SRCDIR RUNFILES_DIR TEST_WORKSPACE XML_OUTPUT_FILE \\
                 TEST_TARGET TEST_SIZE TEST_TIMEOUT HOME MINE EXTRA; do
            eval "echo $v=\\${$v-}"
        done
        echo "cwd=$(pwd)"
        echo "args=$#:$1:$2"
        cat "$1"
        [ -w "$TEST_TMPDIR" ] && [ -d "$HOME" ]
        ''',
    "t/sharded_test.sh": '''
        #!/bin/sh
        echo "shard $TEST_SHARD_INDEX of $TEST_TOTAL_SHARDS"
        touch "$TEST_SHARD_STATUS_FILE"
        ''',
    "t/failing_test.sh": "#!/bin/sh\necho 'it broke'\nexit 1\n",
    "t/flaky_test.sh": '''
        #!/bin/sh
        # unsandboxed, it sees the log its failed first attempt left beside its own
        [ -e "$(dirname "$XML_OUTPUT_FILE")/test_attempt_1.log" ] && exit 0
        exit 1
        ''',
    "t/slow_test.sh": "#!/bin/sh\necho started\nsleep 600\n",
    "t/dep_test.sh": "#!/bin/sh\ncat t/gen.txt\n",
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


def test_environment_args_and_logs(run_tests):
    result = run_tests("//t:env_test", "--test_env=EXTRA=more", "--test_output=all")
    log = (run_tests.root / "bp-out/testlogs/t/env_test/test.log").read_text()
    values = dict(l.split("=", 1) for l in log.splitlines() if "=" in l)
    assert values["TEST_WORKSPACE"] == "__main__" and values["TEST_TARGET"] == "//t:env_test"
    assert values["TEST_SIZE"] == "small" and values["TEST_TIMEOUT"] == "60"
    assert values["MINE"] == "yes" and values["EXTRA"] == "more"
    assert values["TEST_SRCDIR"] == values["RUNFILES_DIR"]
    assert values["cwd"] == os.path.realpath(values["TEST_SRCDIR"] + "/__main__")
    assert values["XML_OUTPUT_FILE"].endswith("bp-out/testlogs/t/env_test/test.xml")
    assert values["HOME"] != os.environ["HOME"]
    assert "args=2:t/data.txt:two words\ndata!" in log
    assert "==================== Test output for //t:env_test:" in result.out
    assert line_of(result, "//t:env_test").endswith("PASSED in " +
                                                     line_of(result, "//t:env_test")
                                                     .rsplit("in ", 1)[1])


def test_second_run_is_cached_and_a_change_reruns_only_its_tests(run_tests):
    run_tests("//t:all")
    again = run_tests("//t:all")
    assert "(cached) PASSED" in line_of(again, "//t:env_test")
    assert again.out.rstrip().endswith("Executed 0 out of 3 tests: 3 tests pass.")
    (run_tests.root / "t" / "dep.txt").write_text("two\n")
    third = run_tests("//t:all")
    assert "(cached)" not in line_of(third, "//t:dep_test")
    assert "(cached)" in line_of(third, "//t:env_test")
    assert third.out.rstrip().endswith("Executed 1 out of 3 tests: 3 tests pass.")
    fourth = run_tests("//t:all", "--nocache_test_results")
    assert fourth.out.rstrip().endswith("Executed 3 out of 3 tests: 3 tests pass.")
    db = sqlite3.connect(Path(os.environ["XDG_CACHE_HOME"]) / "bp" / "cache.sqlite")
    rows = db.execute("SELECT label, duration FROM last_runs "
                      "WHERE mnemonic = 'TestRunner'").fetchall()
    assert {label for label, _ in rows} == {"//t:env_test", "//t:sharded_test", "//t:dep_test"}


def test_shards_run_and_merge(run_tests):
    result = run_tests("//t:sharded_test")
    assert line_of(result, "//t:sharded_test").endswith("(3 shards)")
    logs = run_tests.root / "bp-out/testlogs/t/sharded_test"
    assert sorted(p.name for p in logs.iterdir() if p.name.startswith("shard")) == [
        "shard_1_of_3", "shard_2_of_3", "shard_3_of_3"]
    merged = (logs / "test.log").read_text()
    assert all(f"shard {i} of 3" in merged for i in range(3))


def test_failures_flaky_and_exit_codes(run_tests):
    result = run_tests("//t:failing_test", code=3)
    assert line_of(result, "//t:failing_test").endswith("FAILED in " + line_of(
        result, "//t:failing_test").rsplit("in ", 1)[1])
    assert "  bp-out/testlogs/t/failing_test/test.log" in result.out
    assert result.out.rstrip().endswith("Executed 1 out of 1 test: 0 tests pass and 1 fails "
                                        "locally.")
    errors = run_tests("//t:failing_test", "--test_output=errors", code=3)
    assert "it broke" in errors.out
    flaky = run_tests("//t:flaky_test")
    assert "FLAKY, failed in 1 out of 2 in" in line_of(flaky, "//t:flaky_test")
    run_tests("//t:failing_test", "--flaky_test_attempts=2", code=3)
    attempts = run_tests.root / "bp-out/testlogs/t/failing_test"
    assert (attempts / "test_attempt_1.log").read_text() == "it broke\n"
    assert run_tests("//t:data.txt", code=4).err.endswith(
        "ERROR: no test targets were found, yet testing was requested\n")


def test_timeouts_kill_the_test(run_tests):
    result = run_tests("//t:slow_test", "--test_timeout=1", code=3)
    line = line_of(result, "//t:slow_test")
    assert "TIMEOUT in" in line and float(line.rsplit("in ", 1)[1][:-1]) < 10
    log = (run_tests.root / "bp-out/testlogs/t/slow_test/test.log").read_text()
    assert log == "started\n\n-- Test timed out after 1s: killed --\n"


def test_filters_suites_and_manual(run_tests):
    result = run_tests("//t:all", "--test_size_filters=small")
    assert {l.split()[0] for l in result.out.splitlines() if l.startswith("//")} == {
        "//t:env_test", "//t:sharded_test"}
    result = run_tests("//t:all", "--test_tag_filters=envy")
    assert [l.split()[0] for l in result.out.splitlines() if l.startswith("//")] == [
        "//t:env_test"]
    result = run_tests("//t:all", "--test_tag_filters=-envy", "--test_lang_filters=sh")
    assert "//t:env_test" not in result.out and "//t:dep_test" in result.out
    result = run_tests("//t:small_ones")
    assert {l.split()[0] for l in result.out.splitlines() if l.startswith("//")} == {
        "//t:env_test", "//t:sharded_test"}


def test_junit_xml_reads_like_ci_expects(run_tests):
    run_tests("//t:failing_test", code=3)
    run_tests("//t:dep_test")
    for name, failures in (("failing_test", "1"), ("dep_test", "0")):
        root = ET.parse(run_tests.root / f"bp-out/testlogs/t/{name}/test.xml").getroot()
        assert root.tag == "testsuites"
        suite = root.find("testsuite")
        assert suite.get("name") == f"//t:{name}" and suite.get("tests") == "1"
        assert suite.get("failures") == failures and suite.get("errors") == "0"
        case = suite.find("testcase")
        assert case.get("name") == f"//t:{name}" and float(case.get("time")) >= 0
        assert (case.find("failure") is not None) == (failures == "1")


def test_the_example_monorepo_tests(bp, tmp_path):
    import shutil

    from conftest import REPO_ROOT

    root = tmp_path / "monorepo"
    shutil.copytree(REPO_ROOT / "examples" / "monorepo", root,   # not a local build's outputs
                    ignore=shutil.ignore_patterns("bp-out", "bp-bin"))
    first = bp("-C", str(root), "test", "//...")
    assert first.code == 0, first.out + first.err
    assert "//tests:sharded_test" in first.out and "(3 shards)" in first.out
    assert "//tests:flaky_test" not in first.out   # manual
    second = bp("-C", str(root), "test", "//...")
    assert second.out.rstrip().endswith("Executed 0 out of 8 tests: 8 tests pass.")
    flaky = bp("-C", str(root), "test", "//tests:flaky_test")
    assert flaky.code == 0 and "FLAKY, failed in 1 out of 2" in flaky.out
    slow = bp("-C", str(root), "test", "//tests:slow_test", "--test_timeout=1")
    assert slow.code == 3 and "TIMEOUT in" in slow.out


def test_a_test_run_with_another_path_is_not_a_cache_hit(run_tests, monkeypatch, tmp_path):
    """The PATH a test runs with picks its tools, so it is part of the test's key."""
    run_tests("//t:env_test")
    assert "(cached)" in line_of(run_tests("//t:env_test"), "//t:env_test")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert "(cached)" not in line_of(run_tests("//t:env_test"), "//t:env_test")


def test_bp_test_links_bp_bin_as_bp_build_does(run_tests):
    run_tests("//t:env_test")
    link = run_tests.root / "bp-bin"
    assert link.is_symlink() and (link / "t" / "env_test").exists()
