"""Incremental builds give what a build from scratch gives: in-process actions keyed by
what they write, tree artifacts, outputs whole or absent, tools and printed output."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

RULES = {
    "rules/defs.bzl": '''
        def _w_impl(ctx):
            out = ctx.actions.declare_file(ctx.label.name + ".txt")
            ctx.actions.write(out, ctx.attr.text, is_executable = ctx.attr.exe)
            return [DefaultInfo(files = depset([out]))]

        w = rule(implementation = _w_impl,
                 attrs = {"text": attr.string(), "exe": attr.bool()})

        def _t_impl(ctx):
            out = ctx.actions.declare_file(ctx.label.name + ".out")
            ctx.actions.expand_template(template = ctx.file.src, output = out,
                                        substitutions = {"{WHO}": ctx.attr.who})
            return [DefaultInfo(files = depset([out]))]

        t = rule(implementation = _t_impl,
                 attrs = {"src": attr.label(allow_single_file = True), "who": attr.string()})

        def _tree_impl(ctx):
            out = ctx.actions.declare_directory(ctx.label.name + ".d")
            ctx.actions.run_shell(outputs = [out], command = ctx.attr.cmd.replace("OUT", out.path))
            return [DefaultInfo(files = depset([out]))]

        tree = rule(implementation = _tree_impl, attrs = {"cmd": attr.string()})
        ''',
    "rules/BUILD": "",
}


@pytest.fixture
def build(bp, ws):
    def run(root: Path, *args: str, code: int = 0):
        result = bp("-C", str(root), "build", *args)
        assert result.code == code, result.err
        return result
    return run


def bin_file(root: Path, path: str) -> Path:
    return root / "bp-bin" / path


def test_changing_what_a_write_writes_rebuilds_it_even_after_clean(bp, ws, build):
    root = ws(dict(RULES, **{"p/BUILD": '''
        load("//rules:defs.bzl", "w", "t")
        w(name = "x", text = "one")
        t(name = "y", src = "y.in", who = "world")
        ''', "p/y.in": "hello {WHO}\n"}))
    build(root, "//p:all")
    assert bin_file(root, "p/x.txt").read_text() == "one"
    (root / "p/BUILD").write_text((root / "p/BUILD").read_text()
                                  .replace('"one"', '"two"').replace('"world"', '"bp"'))
    build(root, "//p:all")
    assert bin_file(root, "p/x.txt").read_text() == "two"
    assert bin_file(root, "p/y.out").read_text() == "hello bp\n"
    assert bp("-C", str(root), "clean").code == 0
    assert "0 executed, 2 cache hits" in build(root, "//p:all").err
    assert bin_file(root, "p/x.txt").read_text() == "two"
    (root / "p/BUILD").write_text((root / "p/BUILD").read_text()
                                  .replace('text = "two"', 'text = "two", exe = True'))
    build(root, "//p:x")
    assert os.stat(bin_file(root, "p/x.txt")).st_mode & stat.S_IXUSR


@pytest.mark.parametrize("strategy", ["local", "sandboxed", "linux-sandbox"])
def test_a_declared_directory_exists_before_its_action_and_is_cached_as_a_tree(
        bp, ws, build, strategy):
    if strategy == "linux-sandbox" and shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (scripts/install-test-deps installs it)")
    root = ws(dict(RULES, **{"p/BUILD": '''
        load("//rules:defs.bzl", "tree")
        tree(name = "gen", cmd = "echo 1 > OUT/f1 && mkdir OUT/sub && echo 2 > OUT/sub/f2 && mkdir OUT/empty")
        genrule(name = "use", srcs = [":gen"], outs = ["use.txt"],
                cmd = "cat $(location :gen)/f1 $(locations :gen)/sub/f2 > $@; ls $(location :gen) >> $@")
        '''}))
    (root / ".bprc").write_text(f"build --spawn_strategy={strategy}\n")
    build(root, "//p:use")
    tree = bin_file(root, "p/gen.d")
    assert (tree / "f1").read_text() == "1\n" and (tree / "sub/f2").read_text() == "2\n"
    assert bin_file(root, "p/use.txt").read_text() == "1\n2\nempty\nf1\nsub\n"
    assert bp("-C", str(root), "clean").code == 0
    result = build(root, "//p:use")
    assert "0 executed, 2 cache hits" in result.err and "damaged" not in result.err
    assert (tree / "sub/f2").read_text() == "2\n" and (tree / "empty").is_dir()
    (root / "p/BUILD").write_text((root / "p/BUILD").read_text().replace("echo 2", "echo 3"))
    build(root, "//p:use")
    assert bin_file(root, "p/use.txt").read_text() == "1\n3\nempty\nf1\nsub\n"
    aquery = bp("-C", str(root), "aquery", "//p:gen")
    assert aquery.code == 0 and "bp-out/" in aquery.out and "gen.d" in aquery.out


def test_a_file_where_a_directory_was_declared_fails_the_action(ws, build):
    root = ws(dict(RULES, **{"p/BUILD": '''
        load("//rules:defs.bzl", "tree")
        tree(name = "gen", cmd = "rmdir OUT && echo x > OUT")
        '''}))
    result = build(root, "//p:gen", code=1)
    assert "created bp-out/" in result.err and "as a file, but declared it as a directory" \
        in result.err
    assert not bin_file(root, "p/gen.d").exists()


def test_a_failed_action_leaves_no_output_and_whatever_stands_there_is_replaced(ws, build):
    root = ws({"p/BUILD": '''
        genrule(name = "partial", outs = ["partial.txt"], cmd = "echo partial > $@; exit 1")
        genrule(name = "ok", outs = ["ok.txt"], cmd = "echo ok > $@")
        '''})
    build(root, "//p:partial", code=1)
    assert not bin_file(root, "p/partial.txt").exists()
    build(root, "//p:ok")
    target = bin_file(root, "p/ok.txt")
    for blocker in ("directory", "read-only file"):
        os.chmod(target, 0o644)
        target.unlink()
        if blocker == "directory":
            (target / "inner").mkdir(parents=True)
            (target / "inner/f").write_text("x")
            os.chmod(target / "inner", 0o555)
        else:
            target.write_text("stale")
            os.chmod(target, 0o444)
        build(root, "//p:ok")
        assert target.read_text() == "ok\n", blocker


def test_a_tool_found_on_path_is_identified_by_its_content(ws, build, monkeypatch, tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    tool = tools / "mytool"
    tool.write_text("#!/bin/sh\necho version one > \"$1\"\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    root = ws({"p/defs.bzl": '''
        def _impl(ctx):
            out = ctx.actions.declare_file(ctx.label.name + ".txt")
            ctx.actions.run(outputs = [out], executable = "mytool", arguments = [out.path],
                            use_default_shell_env = True)
            return [DefaultInfo(files = depset([out]))]
        uses_tool = rule(implementation = _impl)
        ''', "p/BUILD": 'load(":defs.bzl", "uses_tool")\nuses_tool(name = "v")\n'})
    build(root, "//p:v", "--spawn_strategy=local")
    assert bin_file(root, "p/v.txt").read_text() == "version one\n"
    tool.write_text("#!/bin/sh\necho version two > \"$1\"\n")   # an upgraded compiler
    build(root, "//p:v", "--spawn_strategy=local")
    assert bin_file(root, "p/v.txt").read_text() == "version two\n"


def test_what_an_action_printed_is_shown_again_on_a_cache_hit(bp, ws, build):
    root = ws({"p/BUILD": '''
        genrule(name = "warn", outs = ["w.txt"],
                cmd = "echo 'warning: unused variable' >&2; echo ok > $@")
        '''})
    first = build(root, "//p:warn")
    assert "INFO: From " in first.err and "warning: unused variable" in first.err
    assert bp("-C", str(root), "clean").code == 0
    again = build(root, "//p:warn")
    assert "1 cache hits" in again.err and "warning: unused variable" in again.err



def test_a_tree_is_stored_and_restored_with_the_digest_its_files_on_disk_give(tmp_path):
    """The digest a tree is stored (or restored) with is computed from its Tree message,
    not by hashing its files again; it must be the one a later build computes from disk,
    or the next no-op would take the tree for changed."""
    from buildpy.actions.graph import Action, ActionKind
    from buildpy.execution.cas import ContentStore
    from buildpy.execution.digests import FileDigests
    from buildpy.execution.outputs import Outputs
    from buildpy.execution.state import open_files_db

    root = tmp_path / "root"
    tree = root / "out" / "t.d"
    (tree / "sub" / "deep").mkdir(parents=True)
    (tree / "empty").mkdir()
    (tree / "f1").write_text("1\n")
    (tree / "f1").chmod(0o755)
    (tree / "sub" / "deep" / "f2").write_text("2\n")
    action = Action(owner="//p:t", owner_label="//p:t", configuration="", mnemonic="Tree",
                    kind=ActionKind.RUN, outputs=("out/t.d",), output_directories=("out/t.d",))

    def fresh_digests() -> FileDigests:
        return FileDigests(open_files_db(tmp_path / "state"), root, 0)

    outputs = Outputs(root, fresh_digests(), ContentStore(tmp_path / "cas"))
    stored, entries, problems = outputs.store_all(action)
    assert problems == [] and stored["out/t.d"] == fresh_digests().digest("out/t.d")
    restored = outputs.restore(entries)
    assert restored == stored and fresh_digests().digest("out/t.d") == stored["out/t.d"]
    assert (tree / "empty").is_dir() and os.access(tree / "f1", os.X_OK)


def test_outputs_that_cannot_be_stored_fail_the_action_and_are_removed(ws, build, monkeypatch):
    import errno

    from buildpy.core.errors import NO_SPACE_HINT
    from buildpy.execution.cas import ContentStore

    def full(self, source):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ContentStore, "put_output", full)
    root = ws({"p/BUILD": 'genrule(name = "g", outs = ["g.txt"], cmd = "echo g > $@")\n'})
    result = build(root, "//p:g", code=36)   # the machine's fault
    assert "ERROR: //p:g: Genrule failed: could not store its outputs: [Errno 28] No space " \
        "left on device" in result.err
    assert f"hint: {NO_SPACE_HINT}\n" in result.err
    assert not bin_file(root, "p/g.txt").exists()


def test_a_fifo_in_a_directory_output_is_refused_not_read(tmp_path):
    """Reading a fifo to store it would block bp forever."""
    from buildpy.actions.graph import Action, ActionKind
    from buildpy.execution.cas import ContentStore
    from buildpy.execution.digests import FileDigests
    from buildpy.execution.outputs import Outputs
    from buildpy.execution.state import open_files_db

    root = tmp_path / "root"
    (root / "out" / "t.d" / "sub").mkdir(parents=True)
    os.mkfifo(root / "out" / "t.d" / "sub" / "p")
    action = Action(owner="//p:t", owner_label="//p:t", configuration="", mnemonic="Tree",
                    kind=ActionKind.RUN, outputs=("out/t.d",), output_directories=("out/t.d",))
    outputs = Outputs(root, FileDigests(open_files_db(tmp_path / "state"), root, 0),
                      ContentStore(tmp_path / "cas"))
    assert outputs.store_all(action)[2] == [
        "created sub/p inside out/t.d as a fifo, not a regular file"]
