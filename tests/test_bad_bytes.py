"""Bytes that are not UTF-8 (in BUILD, .bzl and WORKSPACE files, in directory and file
names) and symlink cycles under glob(): clear errors (exit 2) or skipped names, never a
traceback."""

from __future__ import annotations

import os
from pathlib import Path

from buildpy.core.workspace import Workspace
from buildpy.loading.glob import _match, list_package

HINT = "hint: BUILD, .bzl and WORKSPACE files must be UTF-8 text; save it as UTF-8\n"


def test_build_file_with_a_byte_that_is_not_utf8(bp, ws):
    root = ws({})
    (root / "BUILD").write_bytes(b'x = 1\ngenrule(name = "a", outs = ["a"], '
                                 b'cmd = "echo h\xe9llo > $@")\n')
    result = bp("-C", str(root), "build", "//...")
    assert (result.code, result.out, result.err) == (2, "", (
        "ERROR: BUILD:2:48: invalid UTF-8 in BUILD: byte 0xe9 (invalid continuation byte)\n"
        '2 | genrule(name = "a", outs = ["a"], cmd = "echo h\ufffdllo > $@")\n'
        f"  | {' ' * 47}^\n" + HINT))


def test_the_column_counts_characters_before_the_bad_byte(bp, ws):
    root = ws({})
    (root / "BUILD").write_bytes("# café ".encode() + b"\xff\n")
    result = bp("-C", str(root), "build", "//...")
    assert (result.code, result.err.splitlines()[0]) == (
        2, "ERROR: BUILD:1:8: invalid UTF-8 in BUILD: byte 0xff (invalid start byte)")


def test_bzl_and_workspace_files_with_bad_bytes(bp, ws):
    root = ws({"BUILD": 'load("//:defs.bzl", "x")\n'})
    (root / "defs.bzl").write_bytes(b'x = "\xc3"\n')
    result = bp("-C", str(root), "build", "//...")
    assert (result.code, result.err.splitlines()[0]) == (
        2, "ERROR: defs.bzl:1:6: invalid UTF-8 in defs.bzl: byte 0xc3 (invalid continuation "
           "byte)")
    (root / "defs.bzl").write_text('x = "ok"\n')
    (root / "WORKSPACE").write_bytes(b'workspace(name = "\xfe")\n')
    result = bp("-C", str(root), "build", "//...")
    assert (result.code, result.err.splitlines()[0]) == (
        2, "ERROR: WORKSPACE:1:19: invalid UTF-8 in WORKSPACE: byte 0xfe (invalid start byte)")


def test_recursive_patterns_skip_packages_whose_names_are_not_utf8(bp, ws):
    root = ws({"ok/BUILD": 'filegroup(name = "x")\n'})
    bad = os.fsencode(root) + b"/bad\xff"
    os.mkdir(bad)
    with open(bad + b"/BUILD", "wb") as f:
        f.write(b'filegroup(name = "y")\n')
    result = bp("-C", str(root), "query", "//...")
    assert (result.code, result.out, result.err) == (
        0, "//ok:x\n", "WARNING: skipping directory 'bad\\xff': its name is not valid "
                       "UTF-8, so it cannot be a package\n")


def test_glob_skips_names_that_are_not_utf8(bp, ws):
    root = ws({"BUILD": 'filegroup(name = "g", srcs = glob(["**"]))\n', "a.txt": "",
               "d/b.txt": ""})
    base = os.fsencode(root)
    open(base + b"/f\xfe.txt", "wb").close()
    os.mkdir(base + b"/d\xfe")
    open(base + b"/d\xfe/c.txt", "wb").close()
    open(base + b"/d/e\xfe", "wb").close()
    result = bp("-C", str(root), "query", "labels(srcs, //:g)")
    assert (result.code, result.out.split(), result.err) == (
        0, ["//:BUILD", "//:WORKSPACE", "//:a.txt", "//:d/b.txt"], "")


def test_glob_over_a_directory_symlink_cycle(bp, ws):
    root = ws({"BUILD": 'filegroup(\n    name = "g",\n    srcs = glob(["**"]),\n)\n',
               "loop/a.txt": ""})
    (root / "loop" / "back").symlink_to(".")
    result = bp("-C", str(root), "build", "//...")
    assert (result.code, result.err) == (2, (
        f"ERROR: BUILD:3:16: infinite symlink expansion: 'loop/back' is a symlink to "
        f"'{os.path.realpath(root / 'loop')}', a directory that contains it\n"
        "3 |     srcs = glob([\"**\"]),\n"
        "  |                ^\n"
        "hint: remove the symlink, or list its directory in .bpignore\n"))


def test_glob_over_a_symlink_to_itself(bp, ws):
    root = ws({"BUILD": 'filegroup(name = "g", srcs = glob(["*"]))\n'})
    (root / "self").symlink_to("self")
    result = bp("-C", str(root), "build", "//...")
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "ERROR: BUILD:1:10: symlink cycle: 'self' is a symlink that leads back to itself")


def test_a_listing_outside_loading_shows_a_cycle_without_entering_it(tmp_path: Path):
    (tmp_path / "WORKSPACE").write_text("")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "BUILD").write_text("")
    (tmp_path / "p" / "sub").mkdir()
    (tmp_path / "p" / "sub" / "up").symlink_to("../..")
    (tmp_path / "p" / "me").symlink_to("me")
    files, dirs = list_package(Workspace(tmp_path), "p")
    assert (sorted(files), sorted(dirs)) == (["BUILD", "me"], ["sub", "sub/up"])


def test_glob_matches_paths_thousands_of_parts_deep():
    path = tuple(["d"] * 3000 + ["x.c"])
    assert _match(("**", "*.c"), path)
    assert _match(("d", "**", "d", "x.c"), path)
    assert _match(("*",) * 3000 + ("x.c",), path)
    assert not _match(("**", "*.h"), path)
    assert not _match(("d", "*.c"), path)
