"""Stamping: ctx.info_file and ctx.version_file, --stamp, --embed_label and
--workspace_status_command; which changes of the status files run their readers again."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys

import pytest

RULE = """
def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    files = [ctx.info_file, ctx.version_file] if ctx.attr.volatile else [ctx.info_file]
    ctx.actions.run_shell(
        inputs = files, outputs = [out],
        command = "cat %s > %s; echo run >> %s" % (
            " ".join([f.path for f in files]), out.path, ctx.attr.log),
        execution_requirements = {"no-sandbox": "1"},
    )
    return [DefaultInfo(files = depset([out]))]

stamped = rule(implementation = _impl, attrs = {"volatile": attr.bool(default = True),
                                              "log": attr.string()})

def _show_impl(ctx):
    out = ctx.actions.declare_file("show.txt")
    ctx.actions.write(out, "".join(["%s|%s|%s|%s|%s|%s\\n" % (
        f.path, f.short_path, f.root.path, f.is_source, f.owner, type(f))
        for f in (ctx.info_file, ctx.version_file)]))
    return [DefaultInfo(files = depset([out]))]

show = rule(implementation = _show_impl)
"""

STATUS = """#!/bin/sh
echo STABLE_GIT_COMMIT $(cat commit.txt)
echo BUILD_SCM_STATUS $(cat scm.txt)
echo
echo NOVALUE
echo BUILD_USER builder
"""


def _workspace(ws, **extra):
    root = ws()
    root = ws({"pkg/defs.bzl": RULE, "pkg/BUILD": f"""
        load(":defs.bzl", "show", "stamped")
        stamped(name = "s", log = "{root / 'runs.log'}")
        stamped(name = "only_stable", volatile = False, log = "{root / 'runs.log'}")
        show(name = "show")
        config_setting(name = "stamping", values = {{"stamp": "1"}})
        genrule(name = "which", outs = ["which.txt"],
                cmd = select({{":stamping": "echo stamped", "//conditions:default":
                               "echo unstamped"}}) + " > $@")
    """, "status.sh": STATUS, "commit.txt": "abc123\n", "scm.txt": "clean\n", **extra})
    script = root / "status.sh"
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return root


def _runs(root) -> int:
    log = root / "runs.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def _stamped(bp, root, *flags):
    return bp("build", "//pkg:s", "//pkg:only_stable", "--stamp",
              "--workspace_status_command=./status.sh", *flags, cwd=root)


def test_info_and_version_files_are_bp_out_files(ws, bp):
    root = _workspace(ws)
    result = bp("build", "//pkg:show", cwd=root)
    assert result.code == 0, result.err
    assert (root / "bp-bin/pkg/show.txt").read_text() == (
        "bp-out/stable-status.txt|stable-status.txt|bp-out|False|None|File\n"
        "bp-out/volatile-status.txt|volatile-status.txt|bp-out|False|None|File\n")


def test_without_stamp_the_files_are_fixed_and_no_command_runs(ws, bp):
    root = _workspace(ws)
    result = bp("build", "//pkg:s", "--workspace_status_command=exit 1", cwd=root)
    assert result.code == 0, result.err
    assert (root / "bp-bin/pkg/s.txt").read_text() == (
        "BUILD_EMBED_LABEL \nBUILD_HOST \nBUILD_USER \nBUILD_TIMESTAMP 0\n")
    result = bp("build", "//pkg:s", cwd=root)
    assert result.code == 0, result.err
    assert "0 executed, 1 cache hits" in result.err
    assert _runs(root) == 1
    bp("build", "//pkg:which", cwd=root)
    assert (root / "bp-bin/pkg/which.txt").read_text() == "unstamped\n"


def test_embed_label_without_stamp(ws, bp):
    root = _workspace(ws)
    assert bp("build", "//pkg:s", "--embed_label=rel-1", cwd=root).code == 0
    assert (root / "bp-out/stable-status.txt").read_text() == (
        "BUILD_EMBED_LABEL rel-1\nBUILD_HOST \nBUILD_USER \n")


def test_stamp_writes_the_keys_split_by_stable_prefix(ws, bp):
    root = _workspace(ws)
    result = _stamped(bp, root, "--embed_label=v2")
    assert result.code == 0, result.err
    stable = (root / "bp-out/stable-status.txt").read_text()
    # as Bazel 4.2.3: the command's BUILD_USER replaces bp's, in the stable file; a line
    # with no space is no key
    assert stable == (f"BUILD_EMBED_LABEL v2\nBUILD_HOST {socket.gethostname()}\n"
                      "BUILD_USER builder\nSTABLE_GIT_COMMIT abc123\n")
    volatile = (root / "bp-out/volatile-status.txt").read_text().splitlines()
    assert [line.split(" ")[0] for line in volatile] == ["BUILD_SCM_STATUS", "BUILD_TIMESTAMP"]
    assert volatile[0] == "BUILD_SCM_STATUS clean"
    assert abs(int(volatile[1].split(" ")[1]) - int(os.path.getmtime(
        root / "bp-out/volatile-status.txt"))) < 5
    # what a rule's run_shell read: both files, as they are
    built = root / "bp-bin/pkg/s.txt"
    assert built.read_text() == stable + "\n".join(volatile) + "\n"
    assert bp("build", "//pkg:which", "--stamp", cwd=root).code == 0
    assert (root / "bp-bin/pkg/which.txt").read_text() == "stamped\n"


def test_stable_change_reruns_volatile_change_alone_does_not(ws, bp):
    root = _workspace(ws)
    assert _stamped(bp, root).code == 0
    assert _runs(root) == 2
    first = (root / "bp-bin/pkg/s.txt").read_text()
    # volatile only (a new BUILD_SCM_STATUS, and the time): the outputs stay, as in Bazel
    (root / "scm.txt").write_text("dirty\n")
    result = _stamped(bp, root)
    assert result.code == 0, result.err
    assert "BUILD_SCM_STATUS dirty" in (root / "bp-out/volatile-status.txt").read_text()
    assert _runs(root) == 2
    assert (root / "bp-bin/pkg/s.txt").read_text() == first
    # a stable key changed: both readers of the stable file run again, and now see the
    # volatile file as it is
    (root / "commit.txt").write_text("def456\n")
    result = _stamped(bp, root)
    assert result.code == 0, result.err
    assert _runs(root) == 4
    text = (root / "bp-bin/pkg/s.txt").read_text()
    assert "STABLE_GIT_COMMIT def456" in text and "BUILD_SCM_STATUS dirty" in text
    # --embed_label is a stable key too
    assert _stamped(bp, root, "--embed_label=x").code == 0
    assert _runs(root) == 6


def test_failing_status_command_names_it_with_status_and_stderr(ws, bp):
    root = _workspace(ws, **{"fail.sh": "echo partial\necho 'something broke' >&2\nexit 3\n"})
    result = bp("build", "//pkg:s", "--stamp", "--workspace_status_command=sh fail.sh",
                cwd=root)
    assert result.code == 2
    assert ("ERROR: --workspace_status_command 'sh fail.sh' failed: Failed to determine "
            "workspace status: Process exited with status 3\nsomething broke\n"
            "hint: the command runs in the workspace root") in result.err
    assert _runs(root) == 0


def test_aquery_shows_the_status_files_as_inputs(ws, bp):
    root = _workspace(ws)
    result = bp("aquery", "//pkg:only_stable", "--output=inputs", cwd=root)
    assert result.code == 0, result.err
    assert "bp-out/stable-status.txt" in result.out
    assert "volatile-status.txt" not in result.out


COMMIT = {"defs.bzl": """
def _impl(ctx):
    out = ctx.actions.declare_file("commit.txt")
    ctx.actions.run_shell(inputs = [ctx.info_file, ctx.version_file], outputs = [out],
                          command = "grep -h '^STABLE_COMMIT\\\\|^SCM' %s %s > %s" % (
                              ctx.info_file.path, ctx.version_file.path, out.path))
    return [DefaultInfo(files = depset([out]))]
commit = rule(implementation = _impl)
""", "pkg/BUILD": 'load("//:defs.bzl", "commit")\ncommit(name = "c")\n'}


@pytest.mark.parametrize("strategy", ["sandboxed", "local"])
def test_a_sandboxed_action_reads_the_status_files(ws, bp, strategy):
    root = ws(COMMIT)
    result = bp("build", "//pkg:c", "--stamp", f"--spawn_strategy={strategy}",
                "--workspace_status_command=echo STABLE_COMMIT 42; echo SCM x", cwd=root)
    assert result.code == 0, result.err
    assert (root / "bp-bin/pkg/commit.txt").read_text() == "STABLE_COMMIT 42\nSCM x\n"


def test_a_remote_action_gets_the_status_files(remote_cluster, ws, tmp_path):
    root = ws(COMMIT)

    def build(status: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "buildpy", "--nohome_rc", "build", "//pkg:c", "--stamp",
             f"--workspace_status_command={status}", "--curses=no",
             f"--remote_executor={remote_cluster.endpoint}", f"--disk_cache={tmp_path / 'c'}"],
            cwd=root, capture_output=True, text=True, timeout=300)

    done = build("echo STABLE_COMMIT 7; echo SCM a")
    assert done.returncode == 0, done.stderr
    assert "(0 remote cache hits, 1 remote, 0 local" in done.stderr
    assert (root / "bp-bin/pkg/commit.txt").read_text() == "STABLE_COMMIT 7\nSCM a\n"
    done = build("echo STABLE_COMMIT 8; echo SCM b")
    assert done.returncode == 0, done.stderr
    assert "(0 remote cache hits, 1 remote, 0 local" in done.stderr
    assert (root / "bp-bin/pkg/commit.txt").read_text() == "STABLE_COMMIT 8\nSCM b\n"


def test_tools_are_built_unstamped(ws, bp):
    """As in Bazel, --stamp sets the target configuration's stamp option, not the exec
    configuration's."""
    root = _workspace(ws, **{"tools/BUILD": """
        config_setting(name = "stamping", values = {"stamp": "1"})
        genrule(name = "tool", outs = ["tool.sh"], executable = True,
                cmd = select({":stamping": "echo 'echo stamped'",
                              "//conditions:default": "echo 'echo unstamped'"}) + " > $@")
        genrule(name = "use", outs = ["use.txt"], tools = [":tool"],
                cmd = "sh $(location :tool) > $@")
    """})
    result = bp("build", "//tools:use", "//pkg:which", "--stamp", cwd=root)
    assert result.code == 0, result.err
    assert (root / "bp-bin/tools/use.txt").read_text() == "unstamped\n"
    assert (root / "bp-bin/pkg/which.txt").read_text() == "stamped\n"


def test_genrule_stamp_makes_the_status_files_inputs(ws, bp):
    """Bazel's genrule has a (little documented) boolean `stamp`: the status files are
    inputs of its command, which reads them at their exec paths."""
    root = _workspace(ws, **{"gen/BUILD": """
        genrule(name = "stamped", outs = ["stamped.txt"], stamp = 1,
                cmd = "grep ^STABLE_ bp-out/stable-status.txt > $@; " +
                      "grep -c ^BUILD_TIMESTAMP bp-out/volatile-status.txt >> $@")
        genrule(name = "plain", outs = ["plain.txt"], stamp = 0,
                cmd = "cat bp-out/stable-status.txt > $@ 2>&1 || echo absent > $@")
    """})
    result = bp("build", "//gen:all", "--stamp", "--spawn_strategy=sandboxed",
                "--workspace_status_command=./status.sh", cwd=root)
    assert result.code == 0, result.err
    assert (root / "bp-bin/gen/stamped.txt").read_text() == "STABLE_GIT_COMMIT abc123\n1\n"
    assert (root / "bp-bin/gen/plain.txt").read_text() == "absent\n"


def test_an_unstamped_build_after_a_stamped_one_is_as_from_scratch(ws, bp):
    """The volatile file's content is left out of keys only while stamping: a tool (built
    unstamped, in the exec configuration, whatever --stamp says) that read it during a
    stamped build is built again when the file holds the fixed unstamped content."""
    root = _workspace(ws, **{"tools/defs.bzl": """
def _impl(ctx):
    out = ctx.actions.declare_file("vtool.sh")
    ctx.actions.run_shell(inputs = [ctx.version_file], outputs = [out], command =
                          "echo \\"echo '$(grep TIMESTAMP %s)'\\" > %s" % (
                              ctx.version_file.path, out.path))
    return [DefaultInfo(files = depset([out]))]
volatile_only = rule(implementation = _impl)
""", "tools/BUILD": """
        load(":defs.bzl", "volatile_only")
        volatile_only(name = "vtool")
        genrule(name = "vuse", outs = ["vuse.txt"], tools = [":vtool"],
                cmd = "sh $(location :vtool) > $@")
    """})
    assert bp("build", "//tools:vuse", "--stamp", cwd=root).code == 0
    assert (root / "bp-bin/tools/vuse.txt").read_text() != "BUILD_TIMESTAMP 0\n"
    result = bp("build", "//tools:vuse", cwd=root)
    assert result.code == 0, result.err
    assert (root / "bp-bin/tools/vuse.txt").read_text() == "BUILD_TIMESTAMP 0\n"
