"""testing.ExecutionInfo: the requirements a test rule returns reach its test action,
as its tags' would (Bazel's behaviour)."""

from __future__ import annotations

WORKSPACE = {
    "BUILD": """
        load(":defs.bzl", "info_test")
        info_test(name = "t")
    """,
    "defs.bzl": """
        def _impl(ctx):
            script = ctx.actions.declare_file(ctx.label.name + ".sh")
            ctx.actions.write(script, "#!/bin/sh\\necho run >> $TEST_TMPDIR/../../../runs\\n",
                              is_executable = True)
            return [DefaultInfo(executable = script),
                    testing.ExecutionInfo({"no-cache": "1", "requires-network": "1"})]

        info_test = rule(implementation = _impl, test = True)
    """,
}


def test_execution_info_reaches_the_test_action(ws, bp):
    root = ws(WORKSPACE)
    result = bp("-C", str(root), "aquery", "mnemonic(TestRunner, //:t)")
    assert result.code == 0, result.err
    assert "ExecutionInfo: {no-cache: 1, requires-network: 1}" in result.out


def test_a_test_whose_execution_info_says_no_cache_runs_every_time(ws, bp):
    root = ws(WORKSPACE)
    for _ in range(2):
        result = bp("-C", str(root), "test", "//:t")
        assert result.code == 0, result.err + result.out
        assert "Executed 1 out of 1 test" in result.out
