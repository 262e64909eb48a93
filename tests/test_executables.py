"""A rule's executable is executable even when the rule wrote it without asking for it
(`ctx.actions.write(ctx.outputs.executable, ...)`): Bazel makes every output
executable, and rules in the wild rely on it (bazelbuild/examples' test_rule)."""

from __future__ import annotations

import os

import pytest

RULES = """
    def _predeclared(ctx):
        ctx.actions.write(ctx.outputs.executable, "echo predeclared\\n")

    def _declared(ctx):
        script = ctx.actions.declare_file(ctx.label.name + ".sh")
        ctx.actions.expand_template(template = ctx.file.template, output = script,
                                    substitutions = {"WHO": "declared"})
        return [DefaultInfo(executable = script)]

    def _not_the_executable(ctx):
        data = ctx.actions.declare_file(ctx.label.name + ".txt")
        ctx.actions.write(data, "data\\n")
        script = ctx.actions.declare_file(ctx.label.name + ".sh")
        ctx.actions.write(script, "cat %s\\n" % data.short_path, is_executable = True)
        return [DefaultInfo(executable = script, runfiles = ctx.runfiles([data]))]

    predeclared_test = rule(implementation = _predeclared, test = True)
    declared_test = rule(implementation = _declared, test = True,
                         attrs = {"template": attr.label(allow_single_file = True)})
    other_test = rule(implementation = _not_the_executable, test = True)
"""


@pytest.fixture
def root(ws):
    return ws({
        "BUILD": """
            load(":rules.bzl", "declared_test", "other_test", "predeclared_test")
            predeclared_test(name = "predeclared")
            declared_test(name = "declared", template = "template.sh")
            other_test(name = "other")
        """,
        "rules.bzl": RULES,
        "template.sh": "echo WHO\n",
    })


def test_an_executable_written_without_is_executable_runs(bp, root):
    result = bp("-C", str(root), "test", "//...", "--test_output=all")
    assert result.code == 0, result.err + result.out
    assert "predeclared\n" in result.out and "declared\n" in result.out
    assert os.access(root / "bp-bin/predeclared", os.X_OK)
    assert os.access(root / "bp-bin/declared.sh", os.X_OK)
    assert not os.access(root / "bp-bin/other.txt", os.X_OK)   # only the executable


def test_a_genrule_executable_its_command_did_not_make_executable_runs(bp, ws):
    root = ws({"BUILD": """
        genrule(name = "script", outs = ["script.sh"], executable = True,
                cmd = "printf '#!/bin/sh\\necho ran\\n' > $@")
        genrule(name = "data", outs = ["data.txt"], cmd = "echo data > $@")
    """})
    result = bp("-C", str(root), "run", "//:script")   # (the program's output is not ours)
    assert result.code == 0, result.err
    assert os.access(root / "bp-bin/script.sh", os.X_OK)
    assert bp("-C", str(root), "build", "//:data").code == 0
    assert not os.access(root / "bp-bin/data.txt", os.X_OK)


MERGING = """
    def _bundle(ctx):
        own = ctx.actions.declare_file(ctx.label.name + ".txt")
        ctx.actions.write(own, ctx.label.name + "\\n")
        script = ctx.actions.declare_file(ctx.label.name + ".sh")
        ctx.actions.write(script, "cat $(find -L . -name '*.txt' | sort)\\n",
                          is_executable = True)
        deps = [d[DefaultInfo].default_runfiles for d in ctx.attr.deps]
        runfiles = ctx.runfiles([own]).merge_all(deps)
        if ctx.attr.deps:   # merge(), on a dependency's runfiles too; merge_all(tuple)
            first = ctx.attr.deps[0][DefaultInfo].default_runfiles
            runfiles = runfiles.merge(first.merge(ctx.runfiles())).merge_all(tuple(deps))
        return [DefaultInfo(executable = script, runfiles = runfiles)]

    bundle_test = rule(implementation = _bundle, test = True,
                       attrs = {"deps": attr.label_list()})
"""


def test_runfiles_merge_and_merge_all(bp, ws):
    root = ws({
        "BUILD": """
            load(":rules.bzl", "bundle_test")
            bundle_test(name = "a")
            bundle_test(name = "b")
            bundle_test(name = "c", deps = [":a", ":b"])
        """,
        "rules.bzl": MERGING,
    })
    result = bp("-C", str(root), "test", "//:c", "--test_output=all")
    assert result.code == 0, result.err + result.out
    assert "a\nb\nc\n" in result.out
