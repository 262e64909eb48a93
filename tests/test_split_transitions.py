"""Split transitions (a transition returning several configurations) on attributes:
`ctx.split_attr`, every branch in `ctx.attr`, each branch in its own configuration
(tests/compat/split_transitions checks the values against Bazel's); and the errors."""

from __future__ import annotations

import pytest

DEFS = """
    def _split(settings, attr):
        return RETURNED

    split = transition(implementation = _split, inputs = [],
                       outputs = ["//command_line_option:compilation_mode"])

    def _show(ctx):
        out = ctx.actions.declare_file(ctx.label.name + ".txt")
        ctx.actions.write(out, ctx.var["COMPILATION_MODE"] + "\\n")
        return [DefaultInfo(files = depset([out]))]

    show = rule(implementation = _show)

    def _use(ctx):
        out = ctx.actions.declare_file(ctx.label.name + ".txt")
        ctx.actions.write(out, "\\n".join([
            "%s=%s" % (k, v.files.to_list()[0].path)
            for k, v in sorted(ctx.split_attr.dep.items())
        ]) + "\\n")
        return [DefaultInfo(files = depset([out] + getattr(ctx.files, "dep", [])))]

    use = rule(implementation = _use, attrs = {"dep": attr.label(cfg = split)})
    on_rule = rule(implementation = _use, cfg = split)
"""

BRANCHES = ('{"fast": {"//command_line_option:compilation_mode": "opt"}, '
            '"slow": {"//command_line_option:compilation_mode": "dbg"}}')


def _workspace(ws, returned=BRANCHES, build='use(name = "use", dep = ":show")'):
    return ws({
        "defs.bzl": DEFS.replace("RETURNED", returned),
        "BUILD": f'load(":defs.bzl", "on_rule", "show", "use")\nshow(name = "show")\n{build}\n',
    })


def test_each_branch_builds_in_its_own_configuration(ws, bp):
    root = _workspace(ws)
    result = bp("-C", str(root), "build", "//:use")
    assert result.code == 0, result.err
    lines = (root / "bp-bin/use.txt").read_text().splitlines()
    assert [line.split("=")[0] for line in lines] == ["fast", "slow"]
    fast, slow = (root / line.split("=")[1] for line in lines)
    assert "-opt" in str(fast) and "-dbg" in str(slow)
    assert fast.read_text() == "opt\n" and slow.read_text() == "dbg\n"


def test_cquery_shows_the_dependency_once_per_branch(ws, bp):
    root = _workspace(ws)
    result = bp("-C", str(root), "cquery", "deps(//:use, 1)")
    assert result.code == 0, result.err
    shown = [line for line in result.out.splitlines() if line.startswith("//:show ")]
    assert len(shown) == 2 and len(set(shown)) == 2


@pytest.mark.parametrize("returned, build, message", [
    (BRANCHES, 'on_rule(name = "r")',
     "transition 'split' on rule '//:r' returned 2 configurations (a split transition); "
     "a rule's own transition (rule(cfg = ...)) must return one"),
    ("[]", 'use(name = "use", dep = ":show")',
     "transition 'split' (applied to '//:use') returned an empty list"),
    ('{"a": {"//command_line_option:compilation_mode": "opt"}, "b": {}}',
     'use(name = "use", dep = ":show")',
     "transition 'split' (applied to '//:use'), branch 'b' returned no value for "
     "//command_line_option:compilation_mode"),
])
def test_split_transition_errors(ws, bp, returned, build, message):
    root = _workspace(ws, returned, build)
    result = bp("-C", str(root), "build", "//...")
    assert result.code == 2
    assert "defs.bzl:4:" in result.err   # the transition() call
    assert message in result.err
