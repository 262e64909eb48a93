"""Build events for `--build_event_json_file`: Bazel's Build Event Protocol written as
JSON lines (one `BuildEvent` per line, proto3 JSON field names), each flushed as it is
posted so that a build that fails or is stopped still leaves whole lines.

Formats events; does not decide them (the session posts what it knows of patterns,
targets and tests; the telemetry gives the actions). Knows no targets or rules.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

from buildpy.execution.telemetry import ActionRun

# Bazel's exit codes, by the names its BEP gives them
EXIT_NAMES = {0: "SUCCESS", 1: "BUILD_FAILURE", 2: "COMMAND_LINE_ERROR", 3: "TESTS_FAILED",
              4: "NO_TESTS_FOUND", 8: "INTERRUPTED", 34: "REMOTE_ERROR",
              36: "LOCAL_ENVIRONMENTAL_ERROR", 37: "BLAZE_INTERNAL_ERROR"}

# bp's test statuses, as BEP's TestStatus enum spells them
TEST_STATUS = {"PASSED": "PASSED", "FLAKY": "FLAKY", "FAILED": "FAILED",
               "TIMEOUT": "TIMEOUT", "NO STATUS": "NO_STATUS"}


def _key(event_id: dict) -> str:
    return json.dumps(event_id, sort_keys=True)


def file_entry(name: str, path: Path) -> dict:
    """A BEP `File`: a name and a file:// URI."""
    return {"name": name, "uri": Path(os.path.abspath(path)).as_uri()}


class BuildEvents:
    """The event stream of one command, written to `path`. Every event but the first
    is announced (as a child) before it is posted; at the end, what was announced and
    never posted is posted as `aborted`, then `buildFinished` with `lastMessage`."""

    def __init__(self, path: Path, build_id: str, command: str, words: Sequence[str],
                 workspace: Path, start_ms: int, version: str):
        self.workspace = workspace
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "w", encoding="utf-8")
        self._announced: dict[str, dict] = {}   # announced, not yet posted
        self._posted: set[str] = set()
        self.patterns = tuple(words)
        self._finished = False
        self.post({"started": {}}, "started", {
            "uuid": build_id, "startTimeMillis": str(start_ms), "buildToolVersion": version,
            "command": command, "workingDirectory": os.getcwd(),
            "workspaceDirectory": str(workspace)},
            children=[self.pattern_id(), {"buildFinished": {}}])

    def pattern_id(self) -> dict:
        return {"pattern": {"pattern": list(self.patterns)}}

    def post(self, event_id: dict, field: str, payload: dict,
             children: Iterable[dict] = (), last: bool = False) -> None:
        key = _key(event_id)
        if key in self._posted or self._finished:
            return   # (an id is posted once)
        self._posted.add(key)
        self._announced.pop(key, None)
        event: dict = {"id": event_id}
        children = [c for c in children if _key(c) not in self._posted]
        if children:
            event["children"] = children
            for child in children:
                self._announced.setdefault(_key(child), child)
        event[field] = payload
        if last:
            event["lastMessage"] = True
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()

    # ---- targets ------------------------------------------------------------------------

    def expanded(self, labels: Sequence[str], kinds: dict[str, str] | None = None,
                 tests: Iterable[str] = ()) -> None:
        """The patterns expanded into `labels`, each configured (rule kind, if known);
        the test targets' completion announces their test summary."""
        kinds = kinds or {}
        self.post(self.pattern_id(), "expanded", {},
                  children=[{"targetConfigured": {"label": label}} for label in labels])
        tests = set(tests)
        for label in labels:
            payload = {"targetKind": f"{kinds[label]} rule"} if label in kinds else {}
            self.post({"targetConfigured": {"label": label}}, "configured", payload,
                      children=[{"targetCompleted": {"label": label}}])

    def completed(self, label: str, success: bool, files: Sequence[str],
                  test: bool = False) -> None:
        payload: dict = {"success": success}
        if success and files:
            payload["outputGroup"] = [{"name": "default"}]
            payload["importantOutput"] = [file_entry(path.rsplit("/", 1)[-1],
                                                     self.workspace / path)
                                          for path in files]
        self.post({"targetCompleted": {"label": label}}, "completed", payload,
                  children=[{"testSummary": {"label": label}}] if test else ())

    # ---- actions ------------------------------------------------------------------------

    def action(self, run: ActionRun) -> None:
        """An action completed (Bazel posts the failed ones; all of them with
        --build_event_publish_all_actions)."""
        payload: dict = {"success": run.ok, "label": run.label, "type": run.mnemonic,
                         "primaryOutput": file_entry(run.key.rsplit("/", 1)[-1],
                                                     self.workspace / run.key)}
        if run.exit_code is not None:
            payload["exitCode"] = run.exit_code
        if not run.ok and run.error:
            payload["failureDetail"] = {"message": run.error}
        self.post({"actionCompleted": {"primaryOutput": run.key, "label": run.label}},
                  "action", payload)

    # ---- tests --------------------------------------------------------------------------

    def test_result(self, label: str, status: str, attempt: int, duration_s: float,
                    logs: Sequence[Path], cached: bool, run: int = 1,
                    shard: int = 1) -> None:
        self.post({"testResult": {"label": label, "run": run, "shard": shard,
                                  "attempt": attempt}}, "testResult", {
            "status": TEST_STATUS.get(status, status),
            "testAttemptDurationMillis": str(round(duration_s * 1000)),
            "cachedLocally": cached,
            "testActionOutput": [file_entry("test.log", p) for p in logs]})

    def test_summary(self, label: str, status: str, runs: int, shards: int,
                     attempts: int, duration_s: float, logs: Sequence[Path],
                     cached: bool) -> None:
        passed = status in ("PASSED", "FLAKY")
        payload = {"overallStatus": TEST_STATUS.get(status, status),
                   "totalRunCount": runs * shards, "runCount": runs, "shardCount": shards,
                   "attemptCount": attempts, "totalNumCached": runs * shards if cached else 0,
                   "totalRunDurationMillis": str(round(duration_s * 1000)),
                   "passed" if passed else "failed": [file_entry(p.name, p) for p in logs]}
        self.post({"testSummary": {"label": label}}, "testSummary", payload)

    # ---- the end ------------------------------------------------------------------------

    def finished(self, code: int, finish_ms: int, reason: str = "INCOMPLETE") -> None:
        """What was announced and not posted, as aborted (`reason`: Bazel's Aborted
        reason, USER_INTERRUPTED on Ctrl-C); then buildFinished, the last message."""
        for event_id in list(self._announced.values()):
            if "buildFinished" in event_id:
                continue
            self.post(event_id, "aborted", {
                "reason": reason,
                "description": "the command stopped before this was reported"})
        self.post({"buildFinished": {}}, "finished", {
            "overallSuccess": code == 0,
            "exitCode": {"name": EXIT_NAMES.get(code, "BLAZE_INTERNAL_ERROR"), "code": code},
            "finishTimeMillis": str(finish_ms)}, last=True)
        self._finished = True
        self._file.close()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
