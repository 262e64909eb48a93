"""Unresolved symlinks (`ctx.actions.declare_symlink`, behind Bazel's
--experimental_allow_unresolved_symlinks): an output that is a symbolic link, kept as
the link it is (its text, never what it names) by every strategy, in the cache, in
runfiles trees and remotely; its consumers see the same link. (tests/compat/
unresolved_symlinks checks the same against Bazel's outputs.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from buildpy.execution.sandbox import LinuxSandboxStrategy

BP = [sys.executable, "-m", "buildpy"]
FLAG = "--experimental_allow_unresolved_symlinks"

RULES = """
    def _link_impl(ctx):
        link = ctx.actions.declare_symlink(ctx.label.name + ".link")
        ctx.actions.symlink(output = link, target_path = ctx.attr.target)
        return [DefaultInfo(files = depset([link]))]

    link = rule(implementation = _link_impl, attrs = {"target": attr.string()})

    def _made_impl(ctx):
        data = ctx.actions.declare_file(ctx.label.name + ".data")
        made = ctx.actions.declare_symlink(ctx.label.name + ".made")
        # a declared file that the action makes a link: it gets what the link names
        alias = ctx.actions.declare_file(ctx.label.name + ".alias")
        ctx.actions.run_shell(outputs = [data, made, alias], command = (
            "echo {words} > {data} && ln -s {name} {made} && ln -s {name} {alias}").format(
            words = ctx.attr.text, data = data.path, name = data.basename, made = made.path,
            alias = alias.path))
        return [DefaultInfo(files = depset([made, data, alias]))]

    made = rule(implementation = _made_impl, attrs = {"text": attr.string()})
"""

BUILD = """
    load(":rules.bzl", "link", "made")
    link(name = "l", target = "some/where")
    made(name = "m", text = "hello")
    genrule(name = "read", srcs = [":l", ":m"], outs = ["read.out"],
            cmd = "readlink $(location :l) > $@ && for f in $(locations :m); do " +
                  "case $$f in *.made) readlink $$f >> $@ && cat $$f >> $@;; esac; done")
    sh_test(name = "t", srcs = ["t.sh"], data = [":l"])
"""

TEST_SH = """
    #!/bin/sh
    test "$(readlink "$RUNFILES_DIR/__main__/l.link")" = some/where
"""


def _bp(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*BP, "--nohome_rc", *args, "--curses=no"], cwd=root,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def root(ws):
    root = ws({"rules.bzl": RULES, "BUILD": BUILD, "t.sh": TEST_SH})
    os.chmod(root / "t.sh", 0o755)
    return root


def _strategies() -> list[str]:
    found = ["local", "sandboxed"]
    if LinuxSandboxStrategy.available()[0]:
        found.append("linux-sandbox")
    return found


def test_declare_symlink_needs_the_flag(root):
    done = _bp(root, "build", "//:l")
    assert done.returncode == 2
    assert "actions.declare_symlink() is not allowed; use the " \
           "--experimental_allow_unresolved_symlinks command line option" in done.stderr
    assert "rules.bzl:2" in done.stderr


@pytest.mark.parametrize("strategy", _strategies())
def test_a_declared_symlink_stays_a_link_for_its_consumers(root, tmp_path, strategy):
    done = _bp(root, "build", FLAG, f"--spawn_strategy={strategy}",
               f"--disk_cache={tmp_path / 'cache'}", "//:read")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "read.out").read_text() == "some/where\nm.data\nhello\n"
    assert os.readlink(root / "bp-bin" / "l.link") == "some/where"
    assert os.readlink(root / "bp-bin" / "m.made") == "m.data"
    assert (root / "bp-bin" / "m.alias").read_text() == "hello\n"


def test_the_link_text_is_what_counts_and_the_cache_restores_links(root, tmp_path):
    cache = f"--disk_cache={tmp_path / 'cache'}"
    assert _bp(root, "build", FLAG, cache, "//:read").returncode == 0
    # a new text: the link and its reader run again
    (root / "BUILD").write_text((root / "BUILD").read_text().replace("some/where", "else"))
    done = _bp(root, "build", FLAG, cache, "//:read")
    assert done.returncode == 0, done.stderr
    assert "2 executed" in done.stderr, done.stderr
    assert (root / "bp-bin" / "read.out").read_text().startswith("else\n")
    # back: everything comes from the cache, the links as links
    (root / "BUILD").write_text((root / "BUILD").read_text().replace('"else"', '"some/where"'))
    shutil.rmtree(root / "bp-out")
    done = _bp(root, "build", FLAG, cache, "//:read")
    assert done.returncode == 0, done.stderr
    assert "0 executed" in done.stderr, done.stderr
    assert os.readlink(root / "bp-bin" / "l.link") == "some/where"
    assert os.readlink(root / "bp-bin" / "m.made") == "m.data"
    # a link changed by hand is put back: the fast path compares the text
    os.unlink(root / "bp-bin" / "l.link")
    os.symlink("tampered", root / "bp-bin" / "l.link")
    done = _bp(root, "build", FLAG, cache, "//:read")
    assert done.returncode == 0, done.stderr
    assert os.readlink(root / "bp-bin" / "l.link") == "some/where"


@pytest.mark.parametrize("strategy", _strategies())
def test_a_runfiles_tree_holds_the_link_as_it_is(root, tmp_path, strategy):
    done = _bp(root, "test", FLAG, f"--spawn_strategy={strategy}",
               f"--disk_cache={tmp_path / 'cache'}", "//:t")
    assert done.returncode == 0, done.stdout + done.stderr


def test_symlink_arguments_are_checked(ws, bp):
    root = ws({
        "rules.bzl": """
            def _impl(ctx):
                out = ctx.actions.declare_file(ctx.label.name)
                if ctx.attr.mode == "path_to_file":
                    ctx.actions.symlink(output = out, target_path = "x")
                elif ctx.attr.mode == "executable_link":
                    link = ctx.actions.declare_symlink(ctx.label.name + ".link")
                    ctx.actions.symlink(output = link, target_path = "x", is_executable = True)
                else:
                    link = ctx.actions.declare_symlink(ctx.label.name + ".link")
                    ctx.actions.symlink(output = link, target_file = ctx.file.src)
                return [DefaultInfo(files = depset([out]))]

            r = rule(implementation = _impl, attrs = {"mode": attr.string(),
                                                      "src": attr.label(allow_single_file = True)})
        """,
        "BUILD": """
            load(":rules.bzl", "r")
            r(name = "a", mode = "path_to_file")
            r(name = "b", mode = "file_to_link", src = "BUILD")
            r(name = "c", mode = "executable_link")
        """})
    done = bp("build", FLAG, "//:a", cwd=root)
    assert done.code == 2
    assert 'symlink() with "target_path" param requires that "output" be declared as a ' \
           "symlink" in done.err
    done = bp("build", FLAG, "//:b", cwd=root)
    assert done.code == 2
    assert 'symlink() with "target_file" param requires that "output" be declared as a ' \
           "file or directory, not a symlink" in done.err
    done = bp("build", FLAG, "//:c", cwd=root)
    assert done.code == 2
    assert '"is_executable" cannot be True when using "target_path"' in done.err


def test_a_file_where_a_symlink_was_declared_fails_the_action(ws):
    root = ws({
        "rules.bzl": """
            def _impl(ctx):
                link = ctx.actions.declare_symlink(ctx.label.name + ".link")
                ctx.actions.run_shell(outputs = [link], command = "echo no > " + link.path)
                return [DefaultInfo(files = depset([link]))]

            r = rule(implementation = _impl)
        """,
        "BUILD": 'load(":rules.bzl", "r")\nr(name = "a")\n'})
    done = _bp(root, "build", FLAG, "//:a")
    assert done.returncode == 1
    assert "created bp-out/" in done.stderr and "a.link as a file, but declared it as a " \
           "symlink" in done.stderr, done.stderr
    assert not os.path.lexists(root / "bp-bin" / "a.link")


def test_links_are_made_and_kept_remotely(remote_cluster, root, tmp_path):
    """The worker reports a declared symlink as a link (REAPI output_paths), the reader
    gets it in its input root, and a fresh clone takes both from the remote cache."""
    flags = (FLAG, f"--remote_executor={remote_cluster.endpoint}")
    done = _bp(root, "build", *flags, f"--disk_cache={tmp_path / 'c1'}", "//:read")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "read.out").read_text() == "some/where\nm.data\nhello\n"
    assert os.readlink(root / "bp-bin" / "m.made") == "m.data"
    clone = tmp_path / "clone"
    shutil.copytree(root, clone, ignore=shutil.ignore_patterns("bp-out", "bp-bin"))
    done = _bp(clone, "build", *flags, f"--disk_cache={tmp_path / 'c2'}", "//:read")
    assert done.returncode == 0, done.stderr
    assert "remote cache hit" in done.stderr or "2 remote-cache" in done.stderr, done.stderr
    assert os.readlink(clone / "bp-bin" / "m.made") == "m.data"
    assert (clone / "bp-bin" / "read.out").read_text() == "some/where\nm.data\nhello\n"
    assert not os.path.islink(clone / "bp-bin" / "m.alias")
    assert (clone / "bp-bin" / "m.alias").read_text() == "hello\n"
