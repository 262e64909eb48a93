"""Tools with runfiles inside actions, as in Bazel: an action that runs the executable of
an `executable = True` attribute (or a target's files_to_run, or a genrule's tool) gets
the tool's runfiles tree beside it, locally, in both sandboxes and remotely; and
runfiles' `symlinks` / `root_symlinks`. (tests/compat/tool_runfiles checks the same
against Bazel's outputs.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from buildpy.execution.sandbox import LinuxSandboxStrategy

BP = [sys.executable, "-m", "buildpy"]

TOOL_WORKSPACE = {
    "WORKSPACE": 'workspace(name = "w")\n',
    "tools/BUILD": """
        package(default_visibility = ["//visibility:public"])
        py_library(name = "words", srcs = ["words.py"])
        py_binary(name = "gen", srcs = ["gen.py"], deps = [":words"], data = ["suffix.txt"])
    """,
    # it imports a library and reads a data file, both found through its runfiles tree
    "tools/gen.py": """
        import os, sys
        from tools.words import WORD
        suffix = os.path.join(os.environ["RUNFILES_DIR"], "w/tools/suffix.txt")
        with open(sys.argv[1], "w") as out:
            out.write(WORD + " " + open(suffix).read())
    """,
    "tools/words.py": 'WORD = "generated"\n',
    "tools/suffix.txt": "one\n",
    "p/BUILD": """
        load(":use.bzl", "use")
        use(name = "used")
        genrule(name = "gen_rule", outs = ["genrule.out"], tools = ["//tools:gen"],
                cmd = "$(location //tools:gen) $@")
    """,
    "p/use.bzl": """
        def _use_impl(ctx):
            out = ctx.actions.declare_file("used.out")
            ctx.actions.run(executable = ctx.executable._gen, arguments = [out.path],
                            outputs = [out], mnemonic = "Gen")
            return [DefaultInfo(files = depset([out]))]

        use = rule(implementation = _use_impl, attrs = {
            "_gen": attr.label(default = "//tools:gen", executable = True, cfg = "exec"),
        })
    """,
}


def _bp(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*BP, "--nohome_rc", *args], cwd=root, capture_output=True,
                          text=True, timeout=300)


def _strategy(name: str) -> str:
    if name == "linux-sandbox":
        ok, reason = LinuxSandboxStrategy.available()
        if not ok:
            pytest.skip(reason)
    return name


@pytest.mark.parametrize("strategy", ["local", "sandboxed", "linux-sandbox"])
def test_a_tool_runs_in_its_runfiles_tree(ws, bp, strategy):
    root = ws(TOOL_WORKSPACE)
    result = bp("-C", str(root), "build", f"--spawn_strategy={_strategy(strategy)}",
                "//p:all")
    assert result.code == 0, result.err
    assert (root / "bp-bin/p/used.out").read_text() == "generated one\n"
    assert (root / "bp-bin/p/genrule.out").read_text() == "generated one\n"


def test_a_change_in_the_tools_runfiles_runs_its_users_again(ws, bp):
    root = ws(TOOL_WORKSPACE)
    assert bp("-C", str(root), "build", "//p:used").code == 0
    (root / "tools/suffix.txt").write_text("two\n")
    result = bp("-C", str(root), "build", "//p:used")
    assert result.code == 0, result.err
    assert (root / "bp-bin/p/used.out").read_text() == "generated two\n"
    (root / "tools/words.py").write_text('WORD = "changed"\n')
    assert bp("-C", str(root), "build", "//p:used").code == 0
    assert (root / "bp-bin/p/used.out").read_text() == "changed two\n"


def test_a_tool_that_is_also_requested_gets_one_tree(ws, bp):
    """The tree of a requested executable and that of the same program used as a tool
    are one action, whichever the analysis meets first."""
    root = ws(TOOL_WORKSPACE)
    for patterns in (["//tools:gen", "//p:used"], ["//p:used", "//tools:gen"]):
        result = bp("-C", str(root), "build", *patterns)
        assert result.code == 0, result.err
    assert (root / "bp-bin/p/used.out").read_text() == "generated one\n"
    run = _bp(root, "run", "//tools:gen", "--", str(root / "ran.txt"))
    assert run.returncode == 0, run.stderr
    assert (root / "ran.txt").read_text() == "generated one\n"


def test_aquery_shows_the_tree_as_the_tools_input(ws, bp):
    root = ws(TOOL_WORKSPACE)
    result = bp("-C", str(root), "aquery", "mnemonic(Gen, //p:used)")
    assert result.code == 0, result.err
    assert "bp-out/linux_x86_64-opt-exec/bin/tools/gen.runfiles/MANIFEST" in result.out
    trees = bp("-C", str(root), "aquery", "mnemonic(SymlinkTree, deps(//p:used))")
    assert "Mnemonic: SymlinkTree" in trees.out
    assert "Target: //tools:gen" in trees.out


def test_tools_runfiles_reach_a_remote_action(remote_cluster, ws, tmp_path):
    root = ws(TOOL_WORKSPACE)
    done = _bp(root, "build", "//p:all", f"--remote_executor={remote_cluster.endpoint}",
               f"--disk_cache={tmp_path / 'cache'}")
    assert done.returncode == 0, done.stderr
    assert "2 remote, 2 local" in done.stderr, done.stderr   # tool runs; write, tree
    assert (root / "bp-bin/p/used.out").read_text() == "generated one\n"
    assert (root / "bp-bin/p/genrule.out").read_text() == "generated one\n"


LINKS_WORKSPACE = {
    "WORKSPACE": 'workspace(name = "w")\n',
    "t/BUILD": """
        load(":links.bzl", "linked_test")
        linked_test(name = "linked_test", data = "data.txt")
    """,
    "t/data.txt": "data\n",
    "t/links.bzl": """
        def _impl(ctx):
            script = ctx.actions.declare_file(ctx.label.name + ".sh")
            ctx.actions.write(script, "\\n".join([
                "#!/bin/sh",
                "set -e",
                "cat \\"$RUNFILES_DIR/w/renamed/d.txt\\" \\"$RUNFILES_DIR/top/d.txt\\"",
                "test ! -e \\"$RUNFILES_DIR/w/t/data.txt\\"",
                "",
            ]), is_executable = True)
            runfiles = ctx.runfiles(symlinks = {"renamed/d.txt": ctx.file.data},
                                    root_symlinks = {"top/d.txt": ctx.file.data})
            return [DefaultInfo(executable = script, runfiles = runfiles)]

        linked_test = rule(implementation = _impl, test = True, attrs = {
            "data": attr.label(allow_single_file = True),
        })
    """,
}


def test_runfiles_symlinks_and_root_symlinks_are_laid_out(ws, bp):
    root = ws(LINKS_WORKSPACE)
    result = bp("-C", str(root), "test", "//t:linked_test", "--test_output=all")
    assert result.code == 0, result.err + result.out
    assert "data\ndata\n" in result.out
    tree = root / "bp-bin/t/linked_test.sh.runfiles"
    assert os.path.islink(tree / "w/renamed/d.txt")
    assert (tree / "top/d.txt").read_text() == "data\n"
    assert "w/renamed/d.txt " in (tree / "MANIFEST").read_text()


def test_runfiles_symlinks_take_only_relative_paths(ws, bp):
    root = ws(dict(LINKS_WORKSPACE, **{"t/links.bzl": LINKS_WORKSPACE["t/links.bzl"].replace(
        '"renamed/d.txt"', '"../escape.txt"')}))
    result = bp("-C", str(root), "build", "//t:linked_test")
    assert result.code == 2
    assert "runfiles() 'symlinks': \"../escape.txt\" is not a relative path inside the " \
           "runfiles tree" in result.err
    assert "t/links.bzl:" in result.err


@pytest.mark.parametrize("value, message", [
    ('["d.txt"]', "runfiles() 'symlinks' must be a dict of paths to Files, got list"),
    ('{"renamed/d.txt": "d.txt"}',
     "runfiles() 'symlinks': the value of 'renamed/d.txt' must be a File, got \"d.txt\""),
])
def test_runfiles_symlinks_must_map_paths_to_files(ws, bp, value, message):
    root = ws(dict(LINKS_WORKSPACE, **{"t/links.bzl": LINKS_WORKSPACE["t/links.bzl"].replace(
        '{"renamed/d.txt": ctx.file.data}', value)}))
    result = bp("-C", str(root), "build", "//t:linked_test")
    assert result.code == 2
    assert message in result.err
    assert "t/links.bzl:" in result.err
