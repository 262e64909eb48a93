"""One error path for BUILD-file errors, whatever command loaded the file: bp query,
cquery and build name the BUILD file's own line (not the query text); a missing load()
file points at its load statement; a bad flag in .bprc names the .bprc line."""

from __future__ import annotations

import pytest

SYNTAX_BUILD = 'genrule(name = "a", outs = ["a.out"], cmd = "x"\n'
FILES = {
    "attr/BUILD": 'genrule(name = "a", outs = ["a.out"], cmd = "x", bogus = 1)\n',
    "label/BUILD": 'genrule(name = "a", outs = ["a.out"], cmd = "x", srcs = ["//x/../y:z"])\n',
    "dep/BUILD": 'genrule(name = "a", outs = ["a.out"], cmd = "x", srcs = ["//gone:x"])\n',
    "dup/BUILD": 'genrule(name = "a", outs = ["a.out"], cmd = "x")\n'
                 'genrule(name = "a", outs = ["b.out"], cmd = "x")\n',
    "syntax/BUILD": SYNTAX_BUILD,
    "ld/BUILD": '# a comment first\nload("//lib:nothere.bzl", "f")\n',
    "lib/BUILD": "",
    "lib/deep.bzl": 'load("//lib:nothere.bzl", "f")\n',
    "ld2/BUILD": 'load("//lib:deep.bzl", "f")\n',
    "nopkg/BUILD": 'load("//gone:defs.bzl", "f")\n',
}

EXPECTED = {
    "//attr:a": (
        "ERROR: attr/BUILD:1:50: genrule rule '//attr:a': no such attribute 'bogus' in "
        "'genrule' rule; did you mean 'outs'?\n"
        '1 | genrule(name = "a", outs = ["a.out"], cmd = "x", bogus = 1)\n'
        "  |                                                  ^\n"),
    "//label:a": (
        "ERROR: label/BUILD:1:50: genrule rule '//label:a': invalid label '//x/../y:z': "
        "package name 'x/../y' contains a '..' segment in attribute 'srcs'\n"
        '1 | genrule(name = "a", outs = ["a.out"], cmd = "x", srcs = ["//x/../y:z"])\n'
        "  |                                                  ^\n"
        "hint: labels are always relative to the workspace root; write the package path "
        "without '.' or '..'\n"),
    "//dep:a": (
        "ERROR: dep/BUILD:1:58: in 'srcs' of genrule rule '//dep:a': no such package "
        "'//gone': BUILD file not found in directory 'gone'\n"
        '1 | genrule(name = "a", outs = ["a.out"], cmd = "x", srcs = ["//gone:x"])\n'
        "  |                                                          ^\n"
        "hint: add a BUILD file to a directory to mark it as a package\n"),
    "//dup:a": (
        "ERROR: dup/BUILD:2:9: target 'a' is already defined as a genrule rule at "
        "dup/BUILD:1:8\n"
        '2 | genrule(name = "a", outs = ["b.out"], cmd = "x")\n'
        "  |         ^\n"
        "hint: give one of them another name\n"),
    "//missing:a": (
        "ERROR: no such package '//missing': BUILD file not found in directory 'missing'\n"
        "hint: add a BUILD file to a directory to mark it as a package\n"),
    "//ld:all": (
        "ERROR: ld/BUILD:2:6: cannot load '//lib:nothere.bzl': no such file\n"
        '2 | load("//lib:nothere.bzl", "f")\n'
        "  |      ^\n"
        "hint: there is no lib/nothere.bzl: create it, or load another file\n"),
    "//ld2:all": (   # a load in a loaded .bzl: at that file's statement
        "ERROR: lib/deep.bzl:1:6: cannot load '//lib:nothere.bzl': no such file\n"
        '1 | load("//lib:nothere.bzl", "f")\n'
        "  |      ^\n"
        "hint: there is no lib/nothere.bzl: create it, or load another file\n"),
    "//nopkg:all": (
        "ERROR: nopkg/BUILD:1:6: cannot load '//gone:defs.bzl': 'gone' is not a package (it "
        "has no BUILD file)\n"
        '1 | load("//gone:defs.bzl", "f")\n'
        "  |      ^\n"
        "hint: perhaps you meant '//:gone/defs.bzl'\n"),
}


def _errors(err: str) -> str:
    """The error report, without progress and INFO lines."""
    return "".join(line for line in err.splitlines(keepends=True)
                   if not line.startswith(("INFO: ", "Loading", "Analyzing")))


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_a_build_file_error_reads_the_same_from_every_command(bp, ws, target):
    root = ws(FILES)
    for command in ("query", "cquery", "build"):   # (a query loads deps only for deps())
        result = bp("-C", str(root), command,
                    target if command == "build" else f"deps({target})")
        assert result.code == 2, (command, result.err)
        assert _errors(result.err) == EXPECTED[target], command


def test_a_build_file_error_reached_through_a_query_function(bp, ws):
    root = ws(FILES)
    for expression in ("deps(//dep:a)", "rdeps(//dep:a, //dep:a)", "//dup:a + //attr:a"):
        result = bp("-C", str(root), "query", expression)
        assert result.code == 2
        assert "<query>" not in result.err and "BUILD:" in result.err, result.err


def test_a_starlark_syntax_error_reads_the_same_from_every_command(bp, ws):
    root = ws(FILES)
    reports = {command: _errors(bp("-C", str(root), command, "//syntax:a").err)
               for command in ("query", "cquery", "build")}
    assert reports["query"] == reports["cquery"] == reports["build"]
    assert "syntax/BUILD:1" in reports["build"] and "<query>" not in reports["query"]


def test_a_bad_pattern_in_a_query_still_points_into_the_query(bp, ws):
    root = ws(FILES)
    result = bp("-C", str(root), "query", "//attr::b")
    assert result.code == 2
    assert result.err.startswith("ERROR: <query>:1:1: ")


def test_an_unknown_flag_in_bprc_names_its_line(bp, ws):
    root = ws({**FILES, ".bprc": "# defaults\ncommon --color=no\nbuild --jobz=3\n"})
    result = bp("-C", str(root), "build", "//lib:all")
    assert result.code == 2
    assert result.err == (
        f"ERROR: {root}/.bprc:3:7: unknown option '--jobz' for bp build; did you mean "
        "'--jobs'?\n"
        "3 | build --jobz=3\n"
        "  |       ^\n"
        f"hint: fix that line of {root}/.bprc (bp help build lists the options)\n")


def test_a_bad_flag_value_in_bprc_names_its_line(bp, ws):
    root = ws({**FILES, ".bprc": "query --output=bogus\nbuild -k --jobs=x\n"})
    result = bp("-C", str(root), "build", "//lib:all")
    assert result.code == 2
    assert result.err == (
        f"ERROR: {root}/.bprc:2:10: invalid value for '-j' / '--jobs': 'x' is not a valid "
        "integer.\n"
        "2 | build -k --jobs=x\n"
        "  |          ^\n"
        f"hint: fix that line of {root}/.bprc\n")
    result = bp("-C", str(root), "query", "//lib:all")
    assert result.code == 2
    assert result.err.startswith(f"ERROR: {root}/.bprc:1:7: invalid value for '--output': "
                                 "'bogus' is not one of 'label', ")
    # the command line's own bad value is the command line's, as before
    result = bp("-C", str(root), "build", "--jobs=2", "--jobs=y", "//lib:all")
    assert result.code == 2 and ".bprc" not in result.err


def test_the_same_error_found_through_several_targets_is_printed_once(bp, ws):
    root = ws({"BUILD": """
        config_setting(name = "c", values = {"compilation_mode": "opt"})
        [genrule(name = "g%d" % i, outs = ["g%d.txt" % i], cmd = select({
            "@nowhere//conditions:x": "a", "//conditions:default": "echo > $@"}))
         for i in range(3)]
    """})
    result = bp("-C", str(root), "build", "-k", "//...")
    assert result.code != 0
    errors = [line for line in result.err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == len(set(errors)), result.err
