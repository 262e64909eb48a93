"""A test target as a test spec: what analysis and the target's attributes say of how
to run it (its program, runfiles, args and env with $(location) expanded, size,
timeout, shards, attempts, tags), for `bp test` and `bp aquery` to make its actions.

Knows configured targets and analysis results; not how tests run.
"""

from __future__ import annotations

import shlex
from typing import Mapping

from buildpy.actions.tests import TestSpec, timeout_for
from buildpy.analysis.analyzer import EXECUTION_TAGS
from buildpy.analysis.results import TargetResult
from buildpy.config.configuration import OPTION_PREFIX, Configuration


def test_spec(key, attrs: Mapping, result: TargetResult, *, timeout: float | None = None,
              attempts: int | None = None, runs: int = 1, test_filter: str | None = None,
              test_args: tuple[str, ...] = (),
              configuration: Configuration | None = None) -> TestSpec | None:
    """The spec of the test target `key` (a configured target key) with attributes
    `attrs`, analyzed as `result` in `configuration`; the keywords are bp test's flags
    (a transition's `//command_line_option:test_arg` replaces --test_arg, as in Bazel).
    None when it has no executable."""
    if result.executable is None:
        return None
    if configuration is not None and \
            OPTION_PREFIX + "test_arg" in configuration.setting_values:
        test_args = tuple(configuration.option("test_arg"))
    env = dict(result.test_env)
    env.update(result.environment)
    if test_filter:
        env["TESTBRIDGE_TEST_ONLY"] = test_filter
    given = dict(result.test_requirements)   # testing.ExecutionInfo, as tags would
    tags = set(attrs.get("tags", ())) | set(given)
    size = attrs.get("size", "medium")
    return TestSpec(
        label=str(key.label), package=key.label.package, name=key.label.name,
        executable=result.executable, runfiles=tuple(result.runfiles),
        args=tuple(word for a in result.test_args for word in shlex.split(a))
             + tuple(test_args),   # paths quoted, as Bazel does, then split
        env=env, size=size,
        timeout=timeout_for(size, attrs.get("timeout", ""), timeout),
        shard_count=max(1, attrs.get("shard_count", -1)), runs=max(1, runs),
        attempts=attempts or (3 if attrs.get("flaky") else 1),
        exclusive="exclusive" in tags,
        cacheable=not tags & {"external", "no-cache"},
        local=bool(tags & {"local", "no-sandbox"} or attrs.get("local")),
        owner=str(key), configuration=key.config or "",
        requirements=tuple(sorted({**{t: "" for t in tags & EXECUTION_TAGS},
                                   **given}.items())))
