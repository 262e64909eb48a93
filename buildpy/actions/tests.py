"""What a test run is as an action: one TestRunner action per run and shard of a test
(as Bazel's), made from a test spec. The action runs the test wrapper
(`@prelude//test:test-setup.sh`), one of its inputs, so that it is self-contained: it
runs wherever its inputs are laid out (the exec root, a sandbox, a remote worker).

Knows test specs (an executable with runfiles and settings); not targets or rules, nor
how actions run or what their results mean (execution/testrunner.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

from buildpy.actions.graph import Action, ActionKind

TEST_MNEMONIC = "TestRunner"
SIZE_TIMEOUTS = {"small": 60, "medium": 300, "large": 900, "enormous": 3600}
TIMEOUT_NAMES = {"short": 60, "moderate": 300, "long": 900, "eternal": 3600}

TESTLOGS = "bp-out/testlogs"   # exec path of the test logs (the workspace's bp-out/testlogs)
TEST_TMP = "bp-out/_tmp"        # exec path under which each test run has its TEST_TMPDIR
WRAPPER = "external/prelude/test/test-setup.sh"   # the test wrapper, from @prelude
SHELL = "/bin/sh"   # runs the wrapper (whose executable bit an installed bp may lose)


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
    owner: str = ""                 # `//pkg:name (config hash)`, as the target's actions
    configuration: str = ""
    requirements: tuple[tuple[str, str], ...] = ()   # execution requirements from tags


def host_env() -> dict[str, str]:
    """What a test's environment takes from the machine: part of the action's key, so
    that a test run with another PATH (other tools) is not a cache hit."""
    return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": os.environ.get("LANG", "C.UTF-8"), "TZ": "UTC"}


def test_actions(spec: TestSpec, workspace_name: str, test_env: Mapping[str, str], *,
                 local: bool = False) -> list[tuple[str, Action]]:
    """The TestRunner action of each run and shard of `spec`, with its unit directory;
    `local` (--test_output=streamed) runs them outside any sandbox."""
    directory = "/".join(p for p in (TESTLOGS, spec.package, spec.name) if p)
    split = spec.runs * spec.shard_count > 1
    made = []
    for run in range(spec.runs):
        for shard in range(spec.shard_count):
            parts = []
            if spec.runs > 1:
                parts.append(f"run_{run + 1}_of_{spec.runs}")
            if spec.shard_count > 1:
                parts.append(f"shard_{shard + 1}_of_{spec.shard_count}")
            unit = "/".join([directory, *parts]) if split else directory
            made.append((unit, _action(spec, unit, shard, workspace_name, test_env,
                                       local, " ".join(parts).replace("_", " "))))
    return made


def _action(spec: TestSpec, unit: str, shard: int, workspace_name: str,
            test_env: Mapping[str, str], local: bool, part: str) -> Action:
    runfiles = f"{spec.executable}.runfiles"
    tmp = f"{TEST_TMP}/{unit[len(TESTLOGS) + 1:]}"
    paths = {
        "HOME": tmp, "TMPDIR": tmp, "TEST_TMPDIR": tmp,
        "TEST_SRCDIR": runfiles, "RUNFILES_DIR": runfiles,
        "XML_OUTPUT_FILE": f"{unit}/test.xml",
        "TEST_UNDECLARED_OUTPUTS_DIR": f"{unit}/test.outputs",
    }
    env = {**host_env(), "TEST_WORKSPACE": workspace_name, "TEST_TARGET": spec.label,
           "TEST_SIZE": spec.size, "TEST_TIMEOUT": f"{spec.timeout:g}"}
    if spec.shard_count > 1:
        env["TEST_SHARD_INDEX"] = str(shard)
        env["TEST_TOTAL_SHARDS"] = str(spec.shard_count)
        paths["TEST_SHARD_STATUS_FILE"] = f"{unit}/shard_status"
    env.update(test_env)
    env.update(spec.env)
    rooted = [name for name in paths if name not in env]   # a user's value wins
    env.update((name, paths[name]) for name in rooted)
    requirements = dict(spec.requirements)
    if not spec.cacheable:
        requirements.setdefault("no-cache", "")
    if spec.local or local:
        requirements.setdefault("local", "")
    return Action(
        owner=spec.owner or spec.label, owner_label=spec.label,
        configuration=spec.configuration, mnemonic=TEST_MNEMONIC, kind=ActionKind.RUN,
        outputs=(f"{unit}/test.log", f"{unit}/test.xml", f"{unit}/test.outputs"),
        inputs=tuple(dict.fromkeys((WRAPPER, spec.executable, *spec.runfiles,
                                    f"{runfiles}/MANIFEST"))),
        argv=(SHELL, WRAPPER, unit, ",".join(rooted), spec.label, spec.executable,
              *spec.args),
        env=tuple(sorted(env.items())),
        progress_message=f"Testing {spec.label}" + (f" ({part})" if part else ""),
        execution_requirements=tuple(sorted(requirements.items())),
        output_directories=(f"{unit}/test.outputs",), timeout=spec.timeout)


def timeout_for(size: str, timeout: str, override: float | None) -> float:
    if override is not None:
        return override
    if timeout:
        return TIMEOUT_NAMES[timeout]
    return SIZE_TIMEOUTS.get(size, 300)
