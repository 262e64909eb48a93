"""Bazel options that a transition sets and that reach past analysis: a transition's
`//command_line_option:test_arg` gives the test its arguments, in place of the command
line's --test_arg (as bazelbuild/examples' configurations/cc_test relies on)."""

from __future__ import annotations

import pytest

WORKSPACE = {
    "BUILD": """
        load(":defs.bzl", "with_args_test")
        sh_test(name = "native", srcs = ["show.sh"], tags = ["manual"])
        with_args_test(name = "moved", actual = ":native", args = ["first"])
    """,
    "show.sh": """
        #!/bin/sh
        echo "ARGS: $*"
    """,
    "defs.bzl": """
        _ARG = "//command_line_option:test_arg"

        def _set_args(settings, attr):
            return {_ARG: ["from the transition"]}

        _args_transition = transition(implementation = _set_args, inputs = [],
                                      outputs = [_ARG])

        def _impl(ctx):
            out = ctx.actions.declare_file(ctx.label.name)
            ctx.actions.run_shell(tools = [ctx.executable.actual], outputs = [out],
                                  command = "cp %s %s" % (ctx.executable.actual.path,
                                                         out.path))
            return [DefaultInfo(executable = out,
                                runfiles = ctx.attr.actual[DefaultInfo].default_runfiles)]

        with_args_test = rule(implementation = _impl, cfg = _args_transition, test = True,
                              attrs = {"actual": attr.label(executable = True,
                                                            cfg = "target")})
    """,
}


@pytest.mark.parametrize("target, args", [
    ("//:moved", "first from the transition"),   # the transition's, not the flag's
    ("//:native", "from-the-command-line"),
])
def test_a_transitions_test_arg_replaces_the_command_lines(ws, bp, target, args):
    root = ws(WORKSPACE)
    (root / "show.sh").chmod(0o755)
    result = bp("-C", str(root), "test", target, "--test_output=all",
                "--test_arg=from-the-command-line")
    assert result.code == 0, result.err + result.out
    assert f"ARGS: {args}\n" in result.out
