"""File names that mean something to a shell: every name Bazel accepts builds, and no
name runs as shell code when bp substitutes it into a genrule's command."""

from __future__ import annotations

import json

import pytest

OUT = "bp-bin"


def _build_file(*rules: str) -> str:
    return "\n".join(rules) + "\n"


def _genrule(name: str, cmd: str, srcs: list[str] | None = None,
             outs: list[str] | None = None) -> str:
    """A genrule call with every string written as a Starlark literal (json is one)."""
    parts = [f"name = {json.dumps(name)}"]
    if srcs:
        parts.append(f"srcs = {json.dumps(srcs)}")
    parts.append(f"outs = {json.dumps(outs or [name + '.out'])}")
    parts.append(f"cmd = {json.dumps(cmd)}")
    return "genrule(" + ", ".join(parts) + ")"


def test_an_output_name_holding_a_command_substitution_does_not_run_it(bp, ws, tmp_path):
    # The name's `$(touch ...)` would create `tmp_path/PWNED` if it reached the shell as
    # code; quoted, it is just part of the output's file name.
    planted = tmp_path / "PWNED"
    out = f"o_$(touch${{IFS}}{planted}).txt"
    root = ws({"BUILD": _build_file(
        _genrule("g", "echo hi > $@", outs=["o_$(touch${IFS}PWNED).txt"]),
        _genrule("h", "echo hi > $@", outs=[out]))})
    result = bp("build", "//:g", "//:h", cwd=root)
    assert result.code == 0, result.err
    assert not planted.exists()
    assert (root / OUT / "o_$(touch${IFS}PWNED).txt").read_text() == "hi\n"
    assert (root / OUT / out).read_text() == "hi\n"
    stray = [p for p in tmp_path.rglob("PWNED") if p != planted]
    assert stray == []


NAMES = ["a b.txt", "x;y.txt", "p|q&r.txt", "it's.txt", 'say "hi".txt', "d$ollar.txt",
         "back`tick`.txt", "glob*?[x].txt", "semi; rm -rf x.txt", "~tilde.txt",
         "é ü.txt", "=equals.txt"]


def test_sources_and_outputs_with_shell_characters_build(bp, ws):
    files = {name: f"<{name}>\n" for name in NAMES}
    outs = ["o " + name for name in NAMES]
    # $(SRCS), $(OUTS), $@, $<, $(@D), $(RULEDIR) and every location function, with
    # each name one word of the command.
    copies = [_genrule(f"c{i}", f"cat $(location {name}) $< > $@; ls $(@D) > /dev/null",
                       srcs=[name], outs=["c " + name]) for i, name in enumerate(NAMES)]
    root = ws({**files, "BUILD": _build_file(
        *copies,
        _genrule("all", "printf '%s\\n' $(SRCS) > $(RULEDIR)/list; touch $(OUTS); "
                 "printf '%s\\n' $(OUTS) >> $(RULEDIR)/list", srcs=NAMES,
                 outs=outs + ["list"]),
        _genrule("one", "cat $(location a b.txt) > $@; echo $(execpath a b.txt) "
                 "$(rootpath x;y.txt) $(execpaths p|q&r.txt) $(rootpaths it's.txt) >> $@",
                 srcs=["a b.txt", "x;y.txt", "p|q&r.txt", "it's.txt"],
                 outs=["one $x.txt"]))})
    result = bp("build", "//...", cwd=root)
    assert result.code == 0, result.err
    for name in NAMES:
        assert (root / OUT / ("c " + name)).read_text() == f"<{name}>\n" * 2
        assert (root / OUT / ("o " + name)).exists()
    listed = (root / OUT / "list").read_text().splitlines()
    assert listed[:len(NAMES)] == NAMES
    assert [p.rsplit("/", 1)[-1] for p in listed[len(NAMES):]] == outs + ["list"]
    one = (root / OUT / "one $x.txt").read_text().splitlines()
    assert one == ["<a b.txt>", "a b.txt x;y.txt p|q&r.txt it's.txt"]


def test_ordinary_paths_are_not_quoted(bp, ws):
    root = ws({"in.txt": "x\n", "BUILD": _build_file(
        _genrule("g", "echo $< $@ $(location in.txt) > $@", srcs=["in.txt"]))})
    result = bp("aquery", "//:g", cwd=root)
    assert result.code == 0, result.err
    assert ("echo in.txt bp-out/linux_x86_64-fastbuild/bin/g.out in.txt > "
            "bp-out/linux_x86_64-fastbuild/bin/g.out") in result.out, result.out


def test_a_package_whose_name_needs_quoting_builds(bp, ws):
    pkg = "p $(x) & q"
    root = ws({f"{pkg}/in.txt": "in\n", f"{pkg}/BUILD": _build_file(
        _genrule("g", "cat $< > $@; cat $(SRCS) >> $(RULEDIR)/g.out; ls $(@D) >/dev/null",
                 srcs=["in.txt"]))})
    result = bp("build", f"//{pkg}:g", cwd=root)
    assert result.code == 0, result.err
    assert (root / OUT / pkg / "g.out").read_text() == "in\nin\n"


@pytest.mark.parametrize("name, why, hint", [
    ("a\\b", "target name 'a\\b' contains '\\', which is not allowed in target names",
     "use '/' to separate directories"),
    ("a\tb", "target name 'a\tb' contains '\\t', which is not allowed in target names", None),
    ("a::b", "a label naming a package must start with '//'", "write '//a::b'"),
    ("a/../../b", "target name 'a/../../b' contains a '..' segment",
     "a label may not reach outside its package's directory tree"),
])
def test_names_bazel_rejects_are_errors_at_their_line(bp, ws, name, why, hint):
    line = _genrule("g", "touch $@", outs=[name])
    root = ws({"BUILD": "# outputs\n" + line + "\n"})
    result = bp("build", "//:g", cwd=root)
    assert result.code == 2
    expected = (f"ERROR: BUILD:2:21: genrule rule '//:g': invalid label '{name}': {why} "
                f"in attribute 'outs'\n2 | {line}\n  |                     ^\n")
    assert result.err == expected + (f"hint: {hint}\n" if hint else ""), result.err


@pytest.mark.parametrize("name, message", [
    ("a\\b", "genrule rule: invalid name: invalid label 'a\\b': target name 'a\\b' contains "
             "'\\', which is not allowed in target names"),
    (":g", "genrule rule: invalid name: invalid label ':g': target name ':g' may not start "
           "with ':'"),
])
def test_rule_names_bazel_rejects_are_errors_at_their_line(bp, ws, name, message):
    root = ws({"BUILD": _genrule(name, "touch $@", outs=["x"]) + "\n"})
    result = bp("build", "//...", cwd=root)
    assert result.code == 2
    assert result.err.startswith(f"ERROR: BUILD:1:9: {message}\n"), result.err


def test_rule_names_with_shell_characters_are_accepted(bp, ws):
    name = "g $(x);|&'`"
    root = ws({"BUILD": _genrule(name, "echo ok > $@", outs=["o"]) + "\n"})
    result = bp("build", f"//:{name}", cwd=root)
    assert result.code == 0, result.err
    assert (root / OUT / "o").read_text() == "ok\n"


def test_a_test_argument_naming_a_file_with_spaces_stays_one_word(bp, ws):
    root = ws({
        "t/BUILD": 'sh_test(name = "a_test", srcs = ["a_test.sh"], '
                   'data = ["my data;$x.txt"], args = ["$(location my data;$x.txt)", "two"])\n',
        "t/my data;$x.txt": "data!\n",
        "t/a_test.sh": '#!/bin/sh\n[ "$#" = 2 ] && [ "$2" = two ] && grep -q data! "$1"\n',
    })
    (root / "t" / "a_test.sh").chmod(0o755)
    result = bp("test", "//t:a_test", cwd=root)
    assert result.code == 0, result.out + result.err
