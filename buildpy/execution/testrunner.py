"""Runs tests: the test environment, timeouts, shards, retries, runs per test, result
caching by content, test.log and JUnit test.xml.

Knows test specs (an executable with runfiles and settings); not targets or rules.
"""

from __future__ import annotations

import enum

import json
import os
import shutil
import threading
import xml.etree.ElementTree as ET
from concurrent.futures import Future, ThreadPoolExecutor, wait as wait_for
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from buildpy.actions.graph import Action, ActionKind
from buildpy.actions.key import FileDigest, action_key
from buildpy.execution.cas import ContentStore, CorruptBlob
from buildpy.execution.digests import FileDigests
from buildpy.execution.outputs import remove
from buildpy.execution.spawn import Cancelled, Spawn, Strategy
from buildpy.execution.state import ActionCache, CacheEntry, OutputEntry

SIZE_TIMEOUTS = {"small": 60, "medium": 300, "large": 900, "enormous": 3600}
TIMEOUT_NAMES = {"short": 60, "moderate": 300, "long": 900, "eternal": 3600}


class Status(enum.Enum):
    PASSED = "PASSED"    # every shard and run passed (on the first attempt)
    FLAKY = "FLAKY"      # passed, but only after failing attempts
    FAILED = "FAILED"    # some shard or run failed every attempt
    TIMEOUT = "TIMEOUT"  # some shard or run ran past its timeout
    NO_STATUS = "NO STATUS"  # not run (interrupted)


@dataclass(frozen=True)
class TestSpec:
    label: str
    package: str
    name: str
    executable: str                 # exec path of the test program
    runfiles: tuple[str, ...]       # exec paths of its runfiles
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    size: str = "medium"
    timeout: float = 300.0
    shard_count: int = 1
    attempts: int = 1               # 3 for flaky tests, or --flaky_test_attempts
    runs: int = 1                   # --runs_per_test
    exclusive: bool = False
    cacheable: bool = True
    local: bool = False             # tagged `local` or `no-sandbox`: runs unsandboxed


@dataclass(frozen=True)
class Attempt:
    exit_code: int
    duration: float
    timed_out: bool
    log: Path


@dataclass
class TestResult:
    spec: TestSpec
    status: Status = Status.NO_STATUS
    cached: bool = False
    duration: float = 0.0
    failed_attempts: int = 0
    logs: list[Path] = field(default_factory=list)


TESTLOGS = "bp-out/testlogs"   # exec path of the test logs (the workspace's bp-out/testlogs)
TEST_TMP = "bp-out/_tmp"        # exec path under which each test run has its TEST_TMPDIR


class TestRunner:
    """Runs tests as spawns of the strategy chosen for them (`strategy(spec)`), like any
    other action: under a sandbox a test sees only its runfiles."""

    def __init__(self, exec_root: Path, testlogs: Path, workspace_name: str,
                 digests: FileDigests, store: ContentStore, cache: ActionCache,
                 strategy: Callable[[TestSpec], Strategy], *, jobs: int,
                 test_env: Mapping[str, str], cache_results: bool,
                 say: Callable[[str], None],
                 stream: Callable[[str, bytes], None] | None = None):
        self.exec_root = exec_root
        self.testlogs = testlogs
        self.workspace_name = workspace_name
        self.digests = digests
        self.store = store
        self.cache = cache
        self.strategy = strategy
        self.jobs = max(1, jobs)
        self.test_env = dict(test_env)
        self.cache_results = cache_results
        self.say = say
        self.stream = stream
        self.cancel = threading.Event()

    # ---- the whole run ---------------------------------------------------------------

    def run(self, specs: list[TestSpec], durations: Mapping[str, float],
            on_result: Callable[[TestResult], None]) -> list[TestResult]:
        """Run every test: longest first, shards side by side, exclusive ones alone last."""
        results = {spec.label: TestResult(spec) for spec in specs}
        order = sorted(specs, key=lambda s: (s.exclusive,
                                             -durations.get(s.label, s.timeout / 100)))
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="bp-test")
        units: list[Future] = []
        try:
            for spec in order:
                if spec.exclusive:
                    pool.shutdown(wait=True)
                self._start(results[spec.label], pool if not spec.exclusive else None,
                            on_result, units)
            pool.shutdown(wait=True)
        except KeyboardInterrupt:
            # the running tests see the cancel and kill their process groups: wait for
            # that, or bp could exit first and leave them running. (Not by joining the
            # threads: a join that KeyboardInterrupt cut short takes the thread for
            # ended from then on, in Python 3.11.)
            self.cancel.set()
            for future in units:
                future.cancel()
            wait_for(units)
            pool.shutdown(wait=False)
            raise
        return [results[s.label] for s in specs]

    def _start(self, result: TestResult, pool: ThreadPoolExecutor | None,
               on_result: Callable[[TestResult], None], submitted: list[Future]) -> None:
        spec = result.spec
        key = self._key(spec)
        directory = self.testlogs / spec.package / spec.name
        if self._from_cache(result, key, directory):
            on_result(result)
            return
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        units = [(shard, run) for run in range(spec.runs) for shard in range(spec.shard_count)]
        outcomes: dict[tuple[int, int], tuple[Status, float, int]] = {}
        lock = threading.Lock()

        def unit(shard: int, run: int) -> None:
            if self.cancel.is_set():
                return
            try:
                outcome = self._unit(spec, directory, shard, run, len(units) > 1)
            except Cancelled:
                return
            except Exception as error:  # noqa: BLE001 - a broken test run fails the test
                (directory / "test.log").write_text(f"bp could not run the test: {error}\n")
                outcome = (Status.FAILED, 0.0, 1)
            with lock:
                outcomes[(shard, run)] = outcome
                finished = len(outcomes) == len(units)
            if finished:
                self._finish(result, key, directory, list(outcomes.values()), len(units))
                on_result(result)

        for shard, run in units:
            if pool is None:
                unit(shard, run)
            else:
                submitted.append(pool.submit(unit, shard, run))

    def _from_cache(self, result: TestResult, key: str, directory: Path) -> bool:
        if not (self.cache_results and result.spec.cacheable):
            return False
        entry = self.cache.get(key)
        if entry is None or entry.exit_code != 0:
            return False
        try:
            self._restore(entry, directory)
        except (CorruptBlob, FileNotFoundError):
            self.say(f"WARNING: the cached result of {result.spec.label} was damaged; "
                     "running it again")
            self.cache.drop(key)
            return False
        result.status, result.cached = Status.PASSED, True
        result.logs = [directory / "test.log"]
        result.duration = float(entry.stdout or 0)
        return True

    # ---- caching ----------------------------------------------------------------------

    def _key(self, spec: TestSpec) -> str:
        files = {}
        for path in (spec.executable, *spec.runfiles):
            info = self.digests.digest(path)
            files[path] = FileDigest(info.sha256, info.size, info.executable)
        settings = json.dumps({"args": spec.args, "env": dict(spec.env),
                               "host_env": self._host_env(),
                               "test_env": self.test_env, "shards": spec.shard_count,
                               "runs": spec.runs, "attempts": spec.attempts,
                               "timeout": spec.timeout, "size": spec.size}, sort_keys=True)
        action = Action(owner=spec.label, owner_label=spec.label, configuration="",
                        mnemonic="TestRunner", kind=ActionKind.RUN,
                        outputs=(f"testlogs/{spec.package}/{spec.name}",),
                        argv=(spec.executable, *spec.args),
                        env=(("BP_TEST_SETTINGS", settings),))
        return action_key(action, files)

    def _restore(self, entry: CacheEntry, directory: Path) -> None:
        if directory.exists():
            shutil.rmtree(directory)
        for output in entry.outputs:
            target = directory / output.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.store.get_bytes(output.sha256))

    def _finish(self, result: TestResult, key: str, directory: Path,
                outcomes: list[tuple[Status, float, int]], units: int) -> None:
        spec = result.spec
        statuses = [status for status, _, _ in outcomes]
        result.duration = max((d for _, d, _ in outcomes), default=0.0)
        result.failed_attempts = sum(f for _, _, f in outcomes)
        result.logs = sorted(directory.rglob("test.log"))
        if Status.TIMEOUT in statuses:
            result.status = Status.TIMEOUT
        elif Status.FAILED in statuses:
            result.status = Status.FAILED
        elif Status.FLAKY in statuses:
            result.status = Status.FLAKY
        else:
            result.status = Status.PASSED
        if units > 1:  # one test.log/test.xml summarizing the shards and runs
            (directory / "test.log").write_text("".join(
                f"==== {p.parent.name} ====\n{p.read_text(errors='replace')}"
                for p in result.logs))
            write_junit(directory / "test.xml", spec.label,
                        result.status not in (Status.PASSED, Status.FLAKY), result.duration,
                        (directory / "test.log").read_text(errors="replace"))
            result.logs = [directory / "test.log"]
        if result.status is Status.PASSED and spec.cacheable:
            outputs = []
            for path in sorted(p for p in directory.rglob("*") if p.is_file()):
                digest = self.store.put_bytes(path.read_bytes())
                outputs.append(OutputEntry(path.relative_to(directory).as_posix(), digest,
                                           path.stat().st_size, False))
            self.cache.put(key, CacheEntry(tuple(outputs), 0, f"{result.duration:.3f}", None))
        self.cache.record(key, spec.label, "TestRunner", "", {}, {}, result.duration, "local",
                          False)

    def _unit(self, spec: TestSpec, directory: Path, shard: int, run: int,
              split: bool) -> tuple[Status, float, int]:
        parts = []
        if spec.runs > 1:
            parts.append(f"run_{run + 1}_of_{spec.runs}")
        if spec.shard_count > 1:
            parts.append(f"shard_{shard + 1}_of_{spec.shard_count}")
        unit_dir = directory.joinpath(*parts) if split else directory
        unit_dir.mkdir(parents=True, exist_ok=True)
        failed = 0
        for attempt in range(spec.attempts):
            outcome = self._attempt(spec, unit_dir, shard)
            if outcome.exit_code == 0 and not outcome.timed_out:
                return (Status.FLAKY if failed else Status.PASSED), outcome.duration, failed
            failed += 1
            if attempt + 1 < spec.attempts:
                outcome.log.rename(unit_dir / f"test_attempt_{attempt + 1}.log")
        return (Status.TIMEOUT if outcome.timed_out else Status.FAILED), outcome.duration, failed

    def _attempt(self, spec: TestSpec, unit_dir: Path, shard: int) -> Attempt:
        where = unit_dir.relative_to(self.testlogs).as_posix()
        unit, tmp = f"{TESTLOGS}/{where}", f"{TEST_TMP}/{where}"
        runfiles = f"{spec.executable}.runfiles"
        work = f"{runfiles}/{self.workspace_name}"
        (self.exec_root / work).mkdir(parents=True, exist_ok=True)
        remove(os.fspath(self.exec_root / tmp))          # ready for an unsandboxed run
        (self.exec_root / tmp).mkdir(parents=True)
        (self.exec_root / unit / "test.outputs").mkdir(exist_ok=True)
        env, rooted = self._environment(spec, runfiles, unit, tmp, shard)
        spawn = Spawn(
            argv=(os.path.relpath(spec.executable, work), *spec.args), env=env,
            exec_root=self.exec_root, inputs=(spec.executable, runfiles),
            outputs=(f"{unit}/test.xml", f"{unit}/test.outputs",
                     *([f"{unit}/shard_status"] if spec.shard_count > 1 else ())),
            output_directories=(f"{unit}/test.outputs",), label=spec.label,
            mnemonic="TestRunner", timeout=spec.timeout, working_directory=work,
            scratch_directories=(tmp,), rooted_env=rooted)
        try:
            result = self.strategy(spec).run(spawn, self.cancel)
        finally:
            remove(os.fspath(self.exec_root / tmp))
        log = unit_dir / "test.log"
        text = result.stdout + result.stderr
        if result.timed_out:
            text += f"\n-- Test timed out after {spec.timeout:g}s: killed --\n".encode()
        if result.error is not None:
            text += f"\n-- {result.error} --\n".encode()
        failed = result.exit_code != 0 or result.timed_out or result.error is not None
        log.write_bytes(text)
        if self.stream is not None:
            self.stream(spec.label, text)
        xml = unit_dir / "test.xml"
        if not xml.exists() or xml.stat().st_size == 0:
            write_junit(xml, spec.label, failed, result.duration,
                        text.decode("utf-8", "replace"),
                        "timed out" if result.timed_out else f"exited with {result.exit_code}")
        return Attempt(1 if failed and not result.exit_code else result.exit_code,
                       result.duration, result.timed_out, log)

    @staticmethod
    def _host_env() -> dict[str, str]:
        """What a test's environment takes from the machine: part of the test key, so
        that a test run with another PATH (other tools) is not a cache hit."""
        return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
                "LANG": os.environ.get("LANG", "C.UTF-8"), "TZ": "UTC"}

    def _environment(self, spec: TestSpec, runfiles: str, unit: str, tmp: str,
                     shard: int) -> tuple[dict[str, str], tuple[str, ...]]:
        """The test's environment, and the names of its variables holding exec paths
        (the strategy makes them absolute where the test runs)."""
        paths = {
            "HOME": tmp, "TMPDIR": tmp, "TEST_TMPDIR": tmp,
            "TEST_SRCDIR": runfiles, "RUNFILES_DIR": runfiles,
            "XML_OUTPUT_FILE": f"{unit}/test.xml",
            "TEST_UNDECLARED_OUTPUTS_DIR": f"{unit}/test.outputs",
        }
        env = {
            **self._host_env(),
            "TEST_WORKSPACE": self.workspace_name, "TEST_TARGET": spec.label,
            "TEST_SIZE": spec.size, "TEST_TIMEOUT": f"{spec.timeout:g}",
        }
        if spec.shard_count > 1:
            env["TEST_SHARD_INDEX"] = str(shard)
            env["TEST_TOTAL_SHARDS"] = str(spec.shard_count)
            paths["TEST_SHARD_STATUS_FILE"] = f"{unit}/shard_status"
        env.update(self.test_env)
        env.update(spec.env)
        rooted = tuple(name for name in paths if name not in env)   # a user's value wins
        env.update((name, paths[name]) for name in rooted)
        return env, rooted


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


def timeout_for(size: str, timeout: str, override: float | None) -> float:
    if override is not None:
        return override
    if timeout:
        return TIMEOUT_NAMES[timeout]
    return SIZE_TIMEOUTS.get(size, 300)


