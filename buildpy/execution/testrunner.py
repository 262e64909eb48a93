"""Test results, read back from what the TestRunner actions (actions/tests.py) left
as the scheduler ran them: their outcomes, test.log and test.xml. Retries of failed
attempts (the failed attempt's log kept as test_attempt_N.log), timeouts, FLAKY, the
one test.log and test.xml summarizing shards and runs, cached durations, and live
output for --test_output=streamed.

Knows test specs and outcomes; not targets or rules, nor how actions run: the scheduler
and the executor run test actions as any other (the test cache is the action cache),
locally or elsewhere.
"""

from __future__ import annotations

import enum
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

from buildpy.actions.graph import Action
from buildpy.actions.tests import TESTLOGS, TEST_MNEMONIC, TestSpec, test_actions
from buildpy.execution.executor import Outcome


class Status(enum.Enum):
    PASSED = "PASSED"    # every shard and run passed (on the first attempt)
    FLAKY = "FLAKY"      # passed, but only after failing attempts
    FAILED = "FAILED"    # some shard or run failed every attempt
    TIMEOUT = "TIMEOUT"  # some shard or run ran past its timeout
    NO_STATUS = "NO STATUS"  # not run (interrupted)


@dataclass
class TestResult:
    spec: TestSpec
    status: Status = Status.NO_STATUS
    cached: bool = False
    duration: float = 0.0
    failed_attempts: int = 0
    logs: list[Path] = field(default_factory=list)


@dataclass(frozen=True)
class Attempt:
    """One attempt of one run of one shard of a test, as the build events report it."""

    run: int       # from 1
    shard: int     # from 1
    attempt: int   # from 1
    status: Status
    cached: bool
    duration: float   # 0.0 when not known (an attempt before the last)
    log: str          # exec path of its log


@dataclass
class _Unit:
    """One run of one shard: its action and what became of it."""

    spec: TestSpec
    directory: str                  # exec path of its test.log, test.xml, test.outputs
    action: Action
    status: Status | None = None
    cached: bool = False
    duration: float = 0.0
    failed: int = 0                 # failed attempts


class TestRun:
    """The test actions of one `bp test` and their results, as the scheduler runs them:
    `retry` (the scheduler's hook for a failed action), `started` and `finished` (from
    the progress events, see `TestProgress`), then `results`."""

    def __init__(self, specs: Sequence[TestSpec], exec_root: Path, workspace: Path,
                 workspace_name: str, test_env: Mapping[str, str], *,
                 on_result: Callable[[TestResult], None] = lambda result: None,
                 stream: Callable[[bytes], None] | None = None):
        self.specs = list(specs)
        self.exec_root = exec_root
        self.workspace = workspace   # the results name logs by their paths in it
        self.on_result = on_result
        self.stream = stream
        self._units: dict[str, list[_Unit]] = {}
        self._by_output: dict[str, _Unit] = {}
        self._results: dict[str, TestResult] = {}
        self._streaming: dict[str, int] = {}   # test.log exec path -> bytes shown
        self.ran = False   # whether a test action started
        for spec in self.specs:
            units = [_Unit(spec, unit, action) for unit, action in test_actions(
                spec, workspace_name, test_env, local=stream is not None)]
            self._units[spec.label] = units
            for unit in units:
                self._by_output[unit.action.outputs[0]] = unit

    def actions(self, exclusive: bool | None = None) -> list[Action]:
        """The test actions (only the exclusive ones, or only the others)."""
        return [u.action for spec in self.specs for u in self._units[spec.label]
                if exclusive is None or spec.exclusive == exclusive]

    def _unit(self, action: Action) -> _Unit | None:
        if action.mnemonic != TEST_MNEMONIC:
            return None
        return self._by_output.get(action.outputs[0])

    # ---- events ---------------------------------------------------------------------

    def started(self, action: Action) -> None:
        unit = self._unit(action)
        if unit is None:
            return
        self.ran = True
        if unit.failed == 0:   # a new run: the attempt logs of an earlier one go
            directory = self.exec_root / unit.directory
            for old in directory.glob("test_attempt_*.log") if directory.is_dir() else ():
                old.unlink()
        if self.stream is not None:
            self._streaming[action.outputs[0]] = 0

    def tick(self) -> None:
        for path in list(self._streaming):
            self._show(path, done=False)

    def retry(self, outcome: Outcome) -> bool:
        """A test action failed: complete its logs; True to run it again (attempts left),
        its log kept as test_attempt_N.log."""
        unit = self._unit(outcome.action)
        if unit is None:
            return False
        log = self.exec_root / unit.directory / "test.log"
        result = outcome.result
        log.parent.mkdir(parents=True, exist_ok=True)
        if result is None or not log.exists():   # the wrapper did not get to run it
            printed = (result.stdout + result.stderr).decode("utf-8", "replace") \
                if result is not None else ""
            log.write_text(f"bp could not run the test: {outcome.error}\n{printed}")
        note = ""
        if result is not None and result.timed_out:
            note = f"\n-- Test timed out after {unit.spec.timeout:g}s: killed --\n"
        elif result is not None and result.error is not None:
            note = f"\n-- {result.error} --\n"
        if note:
            with open(log, "a", encoding="utf-8") as file:
                file.write(note)
        xml = log.parent / "test.xml"
        if not xml.exists() or xml.stat().st_size == 0:
            write_junit(xml, unit.spec.label, True, result.duration if result else 0.0,
                        _read(log), "timed out" if result is not None and result.timed_out
                        else f"exited with {result.exit_code if result else 1}")
        self._show(outcome.action.outputs[0], done=True)
        unit.failed += 1
        if unit.failed >= unit.spec.attempts:
            return False
        log.rename(log.with_name(f"test_attempt_{unit.failed}.log"))
        return True

    def finished(self, outcome: Outcome) -> None:
        """A test action ended (after its last attempt when it failed)."""
        unit = self._unit(outcome.action)
        if unit is None:
            return
        self._show(outcome.action.outputs[0], done=True)
        if outcome.ok:
            unit.status = Status.FLAKY if unit.failed else Status.PASSED
            unit.cached = outcome.cached
            unit.duration = self._duration(unit, outcome)
        else:
            timed_out = outcome.result is not None and outcome.result.timed_out
            unit.status = Status.TIMEOUT if timed_out else Status.FAILED
            unit.duration = outcome.result.duration if outcome.result else 0.0
        units = self._units[unit.spec.label]
        if all(u.status is not None for u in units):
            self._finish(unit.spec, units)

    def results(self, produced: set[str] | Mapping[str, object]) -> list[TestResult]:
        """Every test's result; a unit that never ended here was up to date (its test.log
        among the `produced` files: a cached pass) or did not run."""
        for spec in self.specs:
            if spec.label in self._results:
                continue
            units = self._units[spec.label]
            for unit in units:
                if unit.status is None and unit.action.outputs[0] in produced:
                    unit.status, unit.cached = Status.PASSED, True
                    unit.duration = self._duration(unit, None)
            if all(u.status is not None for u in units):
                self._finish(spec, units)
            else:
                self._results[spec.label] = TestResult(spec)
        return [self._results[spec.label] for spec in self.specs]

    def attempts(self, label: str) -> list[Attempt]:
        """Each attempt of each run and shard of the test `label` (once `results` is
        known): the failed attempts before the last (their logs kept as
        test_attempt_N.log), then the last one (test.log)."""
        units = self._units.get(label, [])
        found = []
        for index, unit in enumerate(units):
            if unit.status is None:
                continue
            shards = unit.spec.shard_count
            run, shard = index // shards + 1, index % shards + 1
            passed = unit.status in (Status.PASSED, Status.FLAKY)
            earlier = unit.failed if passed else max(0, unit.failed - 1)
            for attempt in range(1, earlier + 1):
                found.append(Attempt(run, shard, attempt, Status.FAILED, False, 0.0,
                                     f"{unit.directory}/test_attempt_{attempt}.log"))
            found.append(Attempt(run, shard, earlier + 1,
                                 Status.PASSED if passed else unit.status, unit.cached,
                                 unit.duration, f"{unit.directory}/test.log"))
        return found

    # ---- results --------------------------------------------------------------------

    def _finish(self, spec: TestSpec, units: list[_Unit]) -> None:
        statuses = [u.status for u in units]
        result = TestResult(spec)
        result.cached = all(u.cached for u in units)
        result.duration = max((u.duration for u in units), default=0.0)
        result.failed_attempts = sum(u.failed for u in units)
        result.logs = [self.workspace / u.directory / "test.log" for u in units]
        if Status.TIMEOUT in statuses:
            result.status = Status.TIMEOUT
        elif Status.FAILED in statuses:
            result.status = Status.FAILED
        elif Status.FLAKY in statuses:
            result.status = Status.FLAKY
        else:
            result.status = Status.PASSED
        directory = self.exec_root / TESTLOGS / spec.package / spec.name
        current = {Path(u.directory).relative_to(directory.relative_to(self.exec_root))
                   .parts[:1] for u in units}
        for entry in directory.glob("*_of_*"):   # shards or runs of an earlier setting
            if (entry.name,) not in current and entry.is_dir():
                shutil.rmtree(entry)
        if len(units) > 1:   # one test.log/test.xml summarizing the shards and runs
            text = "".join(f"==== {Path(u.directory).name} ====\n"
                           f"{_read(self.exec_root / u.directory / 'test.log')}"
                           for u in units)
            (directory / "test.log").write_text(text)
            write_junit(directory / "test.xml", spec.label,
                        result.status not in (Status.PASSED, Status.FLAKY), result.duration,
                        text)
            result.logs = [self.workspace / TESTLOGS / spec.package / spec.name / "test.log"]
        self._results[spec.label] = result
        self.on_result(result)

    def _duration(self, unit: _Unit, outcome: Outcome | None) -> float:
        """How long the test ran: its test.xml's time (the original run's, for a cached
        result), else how long the action took."""
        try:
            root = ET.parse(self.exec_root / unit.directory / "test.xml").getroot()
            timed = root if root.get("time") is not None else root.find(".//*[@time]")
            if timed is not None:
                return float(timed.get("time"))
        except (OSError, ET.ParseError, ValueError):
            pass
        result = outcome.result if outcome is not None else None
        return result.duration if result is not None else 0.0

    def _show(self, path: str, done: bool) -> None:
        """Stream what a running test wrote to its log since last shown."""
        if path not in self._streaming or self.stream is None:
            return
        try:
            with open(self.exec_root / path, "rb") as file:
                file.seek(self._streaming[path])
                data = file.read()
        except OSError:
            data = b""
        if data:
            self._streaming[path] += len(data)
            self.stream(data)
        if done:
            del self._streaming[path]


class TestProgress:
    """The build's progress, with test actions' events passed to a TestRun: a failed
    test is reported by the test summary, not as a failed action."""

    def __init__(self, progress, run: TestRun):
        self.progress = progress
        self.run = run

    def started(self, action: Action, total: int) -> None:
        self.run.started(action)
        self.progress.started(action, total)

    def runs_remotely(self, action: Action) -> None:
        self.progress.runs_remotely(action)

    def finished(self, outcome: Outcome, done: int, total: int) -> None:
        if outcome.action.mnemonic != TEST_MNEMONIC:
            self.progress.finished(outcome, done, total)
            return
        self.progress.finished(outcome if outcome.ok else replace(
            outcome, ok=True, result=None, error=None), done, total)
        self.run.finished(outcome)

    def tick(self, done: int, total: int) -> None:
        self.run.tick()
        self.progress.tick(done, total)

    def close(self) -> None:
        self.progress.close()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def write_junit(path: Path, label: str, failed: bool, duration: float, log: str,
                message: str = "") -> None:
    """A JUnit XML report for a test that did not write one."""
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name=label, tests="1",
                          failures="1" if failed else "0", errors="0", time=f"{duration:.3f}")
    case = ET.SubElement(suite, "testcase", name=label, classname=label, status="run",
                         time=f"{duration:.3f}")
    if failed:
        failure = ET.SubElement(case, "failure", message=message or "failed", type="")
        failure.text = log
    out = ET.SubElement(suite, "system-out")
    out.text = log
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="UTF-8", xml_declaration=True)


