"""Build telemetry: the Chrome trace of --profile, the build events of
--build_event_json_file (Bazel's BEP as JSON lines) and the end-of-build summary, from
real builds and tests; the critical path and lanes of the recorder on a fake clock."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from buildpy.actions.graph import Action, ActionKind
from buildpy.execution.telemetry import Telemetry

CHAIN = {
    "a/BUILD": '''
        genrule(name = "gen", outs = ["gen.txt"], cmd = "sleep 0.4; echo hi > $@")
        genrule(name = "mid", srcs = [":gen"], outs = ["mid.txt"],
                cmd = "sleep 0.3; cat $< $< > $@")
        genrule(name = "side", outs = ["side.txt"], cmd = "echo side > $@")
        genrule(name = "top", srcs = [":mid", ":side"], outs = ["top.txt"],
                cmd = "cat $(SRCS) > $@")
        sh_test(name = "t", srcs = ["t.sh"], data = [":top"])
        sh_test(name = "bad", srcs = ["bad.sh"])
        ''',
    "a/t.sh": "#!/bin/sh\ngrep -q hi a/top.txt\n",
    "a/bad.sh": "#!/bin/sh\necho failing; exit 1\n",
    "b/BUILD": '''
        genrule(name = "broken", outs = ["broken.txt"], cmd = "echo no; exit 3")
        genrule(name = "after", srcs = [":broken"], outs = ["after.txt"], cmd = "cp $< $@")
        genrule(name = "fine", outs = ["fine.txt"], cmd = "echo fine > $@")
        ''',
}


def _workspace(ws) -> Path:
    root = ws(CHAIN)
    for name in ("t.sh", "bad.sh"):
        (root / "a" / name).chmod(0o755)
    return root


def _bp(bp, root: Path, *args: str):
    return bp("-C", str(root), *args[:1], "--spawn_strategy=local", "--jobs=2",
              *args[1:])


# ---- checks that hold for every trace and event file ------------------------------------

def _trace(path: Path) -> list[dict]:
    data = json.loads(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else
                      path.read_text())
    events = data["traceEvents"]
    for event in events:
        assert {"ph", "ts", "pid", "tid", "name"} <= event.keys(), event
        if event["ph"] == "X":
            assert isinstance(event["dur"], int) and event["dur"] >= 0, event
    by_tid: dict[int, list[dict]] = {}
    for event in events:
        if event["ph"] == "X":
            by_tid.setdefault(event["tid"], []).append(event)
    for tid, spans in by_tid.items():   # on one lane, events nest or follow each other
        spans.sort(key=lambda e: (e["ts"], -e["dur"]))
        open_ends: list[int] = []
        for span in spans:
            while open_ends and open_ends[-1] <= span["ts"]:
                open_ends.pop()
            end = span["ts"] + span["dur"]
            assert not open_ends or end <= open_ends[-1], (tid, span)
            open_ends.append(end)
        actions = [s for s in spans if s.get("cat") == "action processing"]
        for before, after in zip(actions, actions[1:]):   # actions never share a lane
            assert before["ts"] + before["dur"] <= after["ts"], (before, after)
    named = {e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert set(by_tid) <= named
    return events


def _events(path: Path) -> list[dict]:
    text = path.read_text()
    assert text.endswith("\n")
    events = [json.loads(line) for line in text.splitlines()]
    assert all("id" in event for event in events)
    assert "started" in events[0]["id"] and "started" in events[0]
    assert events[-1].get("lastMessage") is True and "buildFinished" in events[-1]["id"]
    assert all("lastMessage" not in event for event in events[:-1])
    posted: list[str] = []
    announced: set[str] = set()
    for event in events:
        key = json.dumps(event["id"], sort_keys=True)
        assert key not in posted, f"posted twice: {key}"
        posted.append(key)
        announced.update(json.dumps(c, sort_keys=True) for c in event.get("children", ()))
    assert announced <= set(posted), announced - set(posted)
    return events


def _finished(events: list[dict]) -> dict:
    return events[-1]["finished"]["exitCode"]


def _find(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if kind in e["id"]]


# ---- bp build ---------------------------------------------------------------------------

def test_a_build_writes_its_trace_events_and_summary(bp, ws, tmp_path):
    root = _workspace(ws)
    profile, bep = tmp_path / "out" / "profile.json", tmp_path / "out" / "events.json"
    result = _build(bp, root, "//a:top", f"--profile={profile}",
                    f"--build_event_json_file={bep}")
    assert result.code == 0, result.err

    events = _trace(profile)
    phases = {e["name"] for e in events if e.get("cat") == "build phase marker"}
    assert phases == {"loading", "analysis", "execution"}
    actions = [e for e in events if e.get("cat") == "action processing"]
    assert {e["args"]["target"] for e in actions} == {"//a:gen", "//a:mid", "//a:side",
                                                      "//a:top"}
    assert {e["args"]["how"] for e in actions} == {"executed locally"}
    lanes = {e["tid"] for e in actions}
    assert 1 < len(lanes) <= 4   # side by side, and lanes are reused
    steps = [e for e in events if e.get("cat") == "action step"]
    assert {"action cache lookup", "store outputs"} <= {e["name"] for e in steps}
    critical = [e for e in events if e.get("cat") == "critical path"]
    assert [e["args"]["target"] for e in critical] == ["//a:gen", "//a:mid", "//a:top"]
    for before, after in zip(critical, critical[1:]):   # each waited for the one before
        assert before["ts"] + before["dur"] <= after["ts"]
    assert len({e["tid"] for e in critical}) == 1
    assert all(e["args"].get("critical path") for e in actions
               if e["args"]["target"] != "//a:side")

    stream = _events(bep)
    assert stream[0]["started"]["command"] == "build"
    assert stream[0]["started"]["workspaceDirectory"] == str(root)
    assert _finished(stream) == {"name": "SUCCESS", "code": 0}
    (pattern,) = _find(stream, "pattern")
    assert pattern["id"] == {"pattern": {"pattern": ["//a:top"]}}
    assert pattern["children"] == [{"targetConfigured": {"label": "//a:top"}}]
    (completed,) = _find(stream, "targetCompleted")
    assert completed["completed"]["success"] is True
    assert completed["completed"]["importantOutput"][0]["uri"].endswith("/a/top.txt")
    assert not _find(stream, "actionCompleted")   # only failed actions, by default

    lines = result.err.splitlines()
    summary = [line for line in lines if line.startswith("INFO: Elapsed time:")]
    assert len(summary) == 1
    assert re.fullmatch(r"INFO: Elapsed time: \d+\.\d\d s, critical path: \d+\.\d\d s "
                        r"\(Genrule //a:gen 0\.\d\d s, Genrule //a:mid 0\.\d\d s, "
                        r"Genrule //a:top \d\.\d\d s\)", summary[0]), summary[0]
    assert "INFO: Cache hit rate: 0% (0 of 4 actions)" in lines
    assert lines[-1] == "INFO: 4 actions: 4 executed, 0 cache hits"

    again = _build(bp, root, "//a:top")
    assert "INFO: Cache hit rate: 100% (4 of 4 actions)" in again.err
    assert re.search(r"INFO: Elapsed time: \d+\.\d\d s, critical path: 0\.00 s\n",
                     again.err), again.err


def _build(bp, root: Path, *args: str):
    return _bp(bp, root, "build", *args)


def test_a_failed_build_reports_its_failed_actions(bp, ws, tmp_path):
    root = _workspace(ws)
    everything = tmp_path / "all.json"
    _build(bp, root, "-k", "//b:all", f"--build_event_json_file={everything}",
           "--build_event_publish_all_actions")
    reported = {e["id"]["actionCompleted"]["label"]: e["action"]["success"]
                for e in _find(_events(everything), "actionCompleted")}
    assert reported == {"//b:broken": False, "//b:fine": True}   # (every one that ran)

    profile, bep = tmp_path / "profile.json", tmp_path / "events.json"
    result = _build(bp, root, "-k", "//b:all", f"--profile={profile}",
                    f"--build_event_json_file={bep}")
    assert result.code == 1, result.err
    stream = _events(bep)
    assert _finished(stream) == {"name": "BUILD_FAILURE", "code": 1}
    (failed,) = _find(stream, "actionCompleted")
    assert failed["id"]["actionCompleted"]["label"] == "//b:broken"
    assert failed["action"]["success"] is False
    assert failed["action"]["exitCode"] == 3
    assert failed["action"]["type"] == "Genrule"
    done = {e["id"]["targetCompleted"]["label"]: e["completed"]["success"]
            for e in _find(stream, "targetCompleted")}
    assert done == {"//b:broken": False, "//b:after": False, "//b:fine": True}
    hows = {e["args"]["target"]: e["args"]["how"] for e in _trace(profile)
            if e.get("cat") == "action processing"}
    assert hows["//b:broken"] == "failed"
    assert "//b:after" not in hows   # it never ran


def test_an_error_before_the_build_still_finishes_the_event_file(bp, ws, tmp_path):
    root = _workspace(ws)
    bep = tmp_path / "events.json"
    result = _build(bp, root, "//a:nope", f"--build_event_json_file={bep}")
    assert result.code == 2, result.err
    stream = _events(bep)
    assert _finished(stream) == {"name": "COMMAND_LINE_ERROR", "code": 2}
    (aborted,) = [e for e in stream if "aborted" in e]   # the pattern, announced
    assert aborted["id"] == {"pattern": {"pattern": ["//a:nope"]}}


# ---- bp test ----------------------------------------------------------------------------

def test_bp_test_reports_test_results_and_summaries(bp, ws, tmp_path):
    root = _workspace(ws)
    profile, bep = tmp_path / "profile.json.gz", tmp_path / "events.json"   # gzipped
    result = _bp(bp, root, "test", "//a:t", "//a:bad", f"--profile={profile}",
                 f"--build_event_json_file={bep}")
    assert result.code == 3, result.err
    stream = _events(bep)
    assert stream[0]["started"]["command"] == "test"
    assert _finished(stream) == {"name": "TESTS_FAILED", "code": 3}
    results = {e["id"]["testResult"]["label"]: e for e in _find(stream, "testResult")}
    assert results["//a:t"]["testResult"]["status"] == "PASSED"
    assert results["//a:bad"]["testResult"]["status"] == "FAILED"
    assert results["//a:bad"]["id"]["testResult"] == {"label": "//a:bad", "run": 1,
                                                      "shard": 1, "attempt": 1}
    log = results["//a:bad"]["testResult"]["testActionOutput"][0]
    assert log["name"] == "test.log" and "failing" in Path(log["uri"][7:]).read_text()
    summaries = {e["id"]["testSummary"]["label"]: e["testSummary"]["overallStatus"]
                 for e in _find(stream, "testSummary")}
    assert summaries == {"//a:t": "PASSED", "//a:bad": "FAILED"}
    configured = {e["id"]["targetConfigured"]["label"]: e["configured"]
                  for e in _find(stream, "targetConfigured")}
    assert configured["//a:t"] == {"targetKind": "sh_test rule"}
    assert not _find(stream, "actionCompleted")   # a failed test is a test result
    tests = [e for e in _trace(profile) if e.get("args", {}).get("mnemonic") == "TestRunner"
             and e.get("cat") == "action processing"]
    assert {e["args"]["target"] for e in tests} == {"//a:t", "//a:bad"}
    assert "INFO: Elapsed time:" in result.err and "INFO: Cache hit rate:" in result.err


def test_each_attempt_run_and_shard_has_its_test_result(bp, ws, tmp_path):
    root = _workspace(ws)
    marker = tmp_path / "failed-once"
    (root / "f").mkdir()
    (root / "f" / "BUILD").write_text('sh_test(name = "flaky", srcs = ["flaky.sh"])\n')
    (root / "f" / "flaky.sh").write_text(   # fails its first attempt only
        f"#!/bin/sh\nif [ -e {marker} ]; then exit 0; fi\ntouch {marker}; exit 1\n")
    (root / "f" / "flaky.sh").chmod(0o755)
    bep = tmp_path / "events.json"
    result = _bp(bp, root, "test", "//f:flaky", "//a:t", "--flaky_test_attempts=2",
                 "--runs_per_test=2", f"--build_event_json_file={bep}")
    assert result.code == 0, result.err + result.out
    stream = _events(bep)
    ids = {(e["id"]["testResult"]["label"], e["id"]["testResult"]["run"],
            e["id"]["testResult"]["attempt"]): e["testResult"]["status"]
           for e in _find(stream, "testResult")}
    assert ids[("//a:t", 1, 1)] == ids[("//a:t", 2, 1)] == "PASSED"
    flaky = {key: status for key, status in ids.items() if key[0] == "//f:flaky"}
    assert sorted(flaky.values()) == ["FAILED", "PASSED", "PASSED"], flaky
    failed = [key for key, status in flaky.items() if status == "FAILED"]
    assert [key[2] for key in failed] == [1] and (*failed[0][:2], 2) in flaky
    summaries = {e["id"]["testSummary"]["label"]: e["testSummary"]
                 for e in _find(stream, "testSummary")}
    assert summaries["//f:flaky"]["overallStatus"] == "FLAKY"
    assert summaries["//f:flaky"]["attemptCount"] == 3
    assert summaries["//a:t"]["runCount"] == 2


# ---- Ctrl-C -----------------------------------------------------------------------------

def test_an_interrupted_build_finishes_its_event_file_and_trace(ws, tmp_path):
    root = ws({"s/BUILD": 'genrule(name = "slow", outs = ["slow.txt"], '
                          'cmd = "touch %s; sleep 60; touch $@")\n' % (tmp_path / "began")})
    profile, bep = tmp_path / "profile.json", tmp_path / "events.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "buildpy", "-C", str(root), "build", "--spawn_strategy=local",
         f"--profile={profile}", f"--build_event_json_file={bep}", "//s:slow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "began").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the action never started"
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 8, err.decode()
    finally:
        process.kill()
        process.wait()
    stream = _events(bep)
    assert _finished(stream) == {"name": "INTERRUPTED", "code": 8}
    hows = [e["args"]["how"] for e in _trace(profile) if e.get("cat") == "action processing"]
    assert hows == ["interrupted"]


# ---- the recorder -----------------------------------------------------------------------

class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _action(name: str) -> Action:
    return Action(owner=f"//p:{name} (abc)", owner_label=f"//p:{name}", configuration="abc",
                  mnemonic="Genrule", kind=ActionKind.RUN, outputs=(f"out/{name}",))


class _Outcome:
    def __init__(self, ok=True, cached=False, source="local"):
        self.ok, self.cached, self.source = ok, cached, source
        self.result = None
        self.error = None if ok else "exit code 1"


def test_the_critical_path_follows_measured_durations_along_dependencies():
    clock = _Clock()
    telemetry = Telemetry(clock=clock, wall=lambda: 0.0)
    a, b, c, d = (_action(n) for n in "abcd")

    def run(action, deps, start, end, outcome=None):
        clock.now = start
        telemetry.started(action, [f"out/{x}" for x in deps])
        clock.now = end
        telemetry.finished(action, outcome or _Outcome())

    # a (1 s) and b (3 s) side by side; c waits for both (1 s); d waits for a (2.5 s)
    clock.now = 100.0
    telemetry.started(a, [])
    telemetry.started(b, [])
    clock.now = 101.0
    telemetry.finished(a, _Outcome())
    run(d, "a", 101.0, 103.5)   # takes a's lane again
    clock.now = 103.0
    telemetry.finished(b, _Outcome())
    run(c, "ab", 103.5, 104.5)
    assert [r.label for r in telemetry.critical_path()] == ["//p:b", "//p:c"]
    lanes = {r.label: r.lane for r in telemetry.runs}
    assert lanes["//p:a"] == lanes["//p:d"] != lanes["//p:b"]

    # a retried test: its attempts add up (1 s + 1 s, then d's 2.5 s makes 4.5 s)
    clock.now = 200.0
    retried = Telemetry(clock=clock, wall=lambda: 0.0)
    telemetry = retried
    run(a, "", 200.0, 201.0, _Outcome(ok=False))
    run(a, "", 201.0, 202.0)
    run(b, "", 200.0, 203.0)
    run(d, "a", 202.0, 204.5)
    assert [r.label for r in retried.critical_path()] == ["//p:a", "//p:d"]
    assert sum(r.duration for r in retried.critical_path()) == 4.5
    clock.now = 205.0
    line = retried.summary(now=205.0)[0]
    assert line == ("INFO: Elapsed time: 5.00 s, critical path: 4.50 s (Genrule //p:d "
                    "2.50 s, Genrule //p:a 2.00 s)")


# ---- remote -----------------------------------------------------------------------------

def test_remote_steps_and_hits_show_in_the_trace(remote_cluster, ws, tmp_path):
    token = tmp_path.name   # an action no earlier build sent to this cluster
    root = ws({"r/BUILD": f'genrule(name = "r", outs = ["r.txt"], cmd = "echo {token} > $@")\n'})

    def build(cache: str, profile: Path) -> list[dict]:
        done = subprocess.run(
            [sys.executable, "-m", "buildpy", "--nohome_rc", "-C", str(root), "build",
             "//r:r", f"--remote_executor={remote_cluster.endpoint}",
             f"--disk_cache={tmp_path / cache}", f"--profile={profile}", "--curses=no"],
            capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        build.err = done.stderr
        return _trace(profile)

    events = build("c1", tmp_path / "p1.json")
    (action,) = [e for e in events if e.get("cat") == "action processing"]
    assert action["args"]["how"] == "executed remotely"
    steps = {e["name"] for e in events if e.get("cat") == "action step"}
    assert {"remote cache lookup", "upload inputs", "execute remotely",
            "download outputs"} <= steps, steps
    shutil.rmtree(root / "bp-out")   # a fresh output base and cache: the remote cache's
    events = build("c2", tmp_path / "p2.json")
    (action,) = [e for e in events if e.get("cat") == "action processing"]
    assert action["args"]["how"] == "remote cache hit"
    assert "INFO: Cache hit rate: 100% (1 of 1 actions)" in build.err
