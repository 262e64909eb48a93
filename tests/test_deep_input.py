"""Deep input: long dependency chains and deeply nested queries work (no recursion limit);
past the query nesting bound, a located error (exit 2), never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from buildpy.lang import limits
from buildpy.lang.nesting import TooDeep, check_nesting
from buildpy.query.syntax import MAX_NESTING, QuerySyntaxError, parse_query

GENRULES = 200      # a chain of genrules, each reading the one before (each runs bash)
FILEGROUPS = 2000   # then a chain of filegroups on top of it


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    """t0 <- t1 <- ... <- t199 <- f0 <- ... <- f1999 <- top: 2,201 targets in one line."""
    root = tmp_path_factory.mktemp("chain") / "ws"
    root.mkdir()
    (root / "WORKSPACE").write_text("")
    lines = ['genrule(name = "t0", outs = ["t0.txt"], cmd = "echo 0 > $@")']
    lines += [f'genrule(name = "t{i}", srcs = [":t{i - 1}"], outs = ["t{i}.txt"], '
              f'cmd = "cat $< > $@; echo {i} >> $@")' for i in range(1, GENRULES)]
    lines += [f'filegroup(name = "f{i}", srcs = [":{"f" if i else "t"}'
              f'{i - 1 if i else GENRULES - 1}"])' for i in range(FILEGROUPS)]
    lines.append(f'genrule(name = "top", srcs = [":f{FILEGROUPS - 1}"], outs = ["top.txt"], '
                 'cmd = "wc -l < $< > $@")')
    (root / "BUILD").write_text("\n".join(lines) + "\n")
    return root


def _labels(out: str) -> list[str]:
    return out.split()


def test_query_follows_a_chain_of_2200_targets(bp, chain):
    result = bp("-C", str(chain), "query", "deps(//:top)")
    assert result.code == 0, result.err
    labels = _labels(result.out)
    assert len(labels) == 1 + FILEGROUPS + GENRULES
    assert {"//:t0", "//:t199", "//:f1999", "//:top"} <= set(labels)
    result = bp("-C", str(chain), "query", "somepath(//:top, //:t0)")
    assert (result.code, len(result.out.split("\n")) - 1) == (0, 1 + FILEGROUPS + GENRULES)


def test_cquery_follows_a_chain_of_2200_targets(bp, chain):
    result = bp("-C", str(chain), "cquery", "deps(//:top)")
    assert result.code == 0, result.err
    assert len(result.out.splitlines()) == 1 + FILEGROUPS + GENRULES


def test_build_of_a_chain_of_2200_targets(bp, chain):
    result = bp("-C", str(chain), "build", "//:top")
    assert result.code == 0, result.err
    assert (chain / "bp-out/linux_x86_64-fastbuild/bin/top.txt").read_text().strip() \
        == str(GENRULES)


def test_a_chain_incompatible_at_its_bottom_names_the_first_link(bp, ws):
    n = 1500
    lines = ['constraint_setting(name = "s")', 'constraint_value(name = "v", '
             'constraint_setting = ":s")',
             'genrule(name = "g0", outs = ["g0.txt"], cmd = "true", '
             'target_compatible_with = [":v"])']
    lines += [f'filegroup(name = "g{i}", srcs = [":g{i - 1}"])' for i in range(1, n)]
    root = ws({"BUILD": "\n".join(lines) + "\n"})
    result = bp("-C", str(root), "cquery", f"//:g{n - 1}")
    assert result.code == 2
    first = result.err.splitlines()[0]
    assert first.startswith(f"ERROR: BUILD:{n + 2}:10: target '//:g{n - 1}' is "
                            "incompatible with the target platform")
    assert first.endswith(", which depends on '//:g1', which depends on '//:g0', which needs "
                          "'//:v'")
    assert first.count("which depends on") == n - 2
    result = bp("-C", str(root), "cquery", "//...")   # a wildcard skips all of them
    assert (result.code, [line.split()[0] for line in result.out.splitlines()]) == (
        0, ["//:s", "//:v"])


# ---- deep queries ---------------------------------------------------------------------

@pytest.fixture
def small(ws) -> Path:
    return ws({"BUILD": "".join(
        f'genrule(name = "t{i}", outs = ["t{i}.txt"], cmd = "true"'
        f'{f", srcs = [{chr(34)}:t{i - 1}{chr(34)}]" if i else ""})\n' for i in range(1000))})


def test_400_nested_parentheses(bp, small):
    result = bp("-C", str(small), "query", "(" * 400 + "//:t1" + ")" * 400)
    assert (result.code, result.out, result.err) == (0, "//:t1\n", "")


def test_1000_terms_joined_with_plus(bp, small):
    result = bp("-C", str(small), "query", " + ".join(f"//:t{i}" for i in range(1000)))
    assert result.code == 0, result.err
    assert sorted(result.out.split()) == sorted(f"//:t{i}" for i in range(1000))


def test_500_pipeline_stages(bp, small):
    result = bp("-C", str(small), "query", "//:t2" + " | deps" * 500)
    assert (result.code, result.err) == (0, "")
    assert result.out.split() == ["//:t0", "//:t1", "//:t2"]


def test_2000_nested_lets(bp, small):
    text = "".join(f"let v{i} = {f'$v{i - 1} + ' if i else ''}//:t{i % 3} in "
                   for i in range(2000)) + "$v1999 ^ set(//:t0 //:t2)"
    result = bp("-C", str(small), "query", text)
    assert (result.code, result.out, result.err) == (0, "//:t0\n//:t2\n", "")


def test_deeply_nested_function_calls(bp, small):
    result = bp("-C", str(small), "query", "deps(" * 3000 + "//:t1" + ")" * 3000)
    assert (result.code, result.out.split()) == (0, ["//:t0", "//:t1"])


def test_nesting_past_the_bound_is_a_located_error(bp, small):
    depth = MAX_NESTING   # the whole query is one level already
    result = bp("-C", str(small), "query", "(" * depth + "//:t1" + ")" * depth)
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        f"ERROR: <query>:1:{depth + 1}: query is nested too deeply: more than {MAX_NESTING} "
        "levels of parentheses, arguments and let")
    assert "Traceback" not in result.err


def test_the_bound_holds_for_lets_and_calls_too():
    for text in ["let x = " * (MAX_NESTING + 1) + "//a",
                 "deps(" * (MAX_NESTING + 1) + "//a" + ")" * (MAX_NESTING + 1)]:
        with pytest.raises(QuerySyntaxError) as error:
            parse_query(text)
        assert error.value.message.startswith("query is nested too deeply")


def test_test_suites_nested_2000_deep(bp, ws):
    n = 2000
    lines = ['sh_test(name = "t", srcs = ["t.sh"])', 'test_suite(name = "s0", tests = [":t"])']
    lines += [f'test_suite(name = "s{i}", tests = [":s{i - 1}"])' for i in range(1, n)]
    root = ws({"BUILD": "\n".join(lines) + "\n", "t.sh": "exit 0\n"})
    result = bp("-C", str(root), "query", f"tests(//:s{n - 1})")
    assert (result.code, result.out, result.err) == (0, "//:t\n", "")


# ---- Starlark source the parser cannot take, and evaluations that run away ------------

def _bp_process(root: Path, *args: str) -> subprocess.CompletedProcess:
    """bp in its own process: without the guard these inputs kill it with SIGSEGV."""
    return subprocess.run([sys.executable, "-m", "buildpy", "-C", str(root), *args],
                          capture_output=True, text=True, timeout=120)


TOO_DEEP = ("this code is too deeply nested: more than 500 levels of brackets, operators and "
            "blocks (Starlark cannot evaluate it safely)")


@pytest.mark.parametrize("text, where", [
    ("x = " + "+".join(["1"] * 4000) + "\n", "BUILD:1:1004"),   # the 500th '+'
    ("x = 1\ny = " + "[" * 5000 + "]" * 5000 + "\n", "BUILD:2:504"),   # the 500th '['
], ids=["4000-terms", "list-5000-deep"])
def test_source_too_deep_for_the_parser_is_a_located_error(ws, text, where):
    root = ws({"BUILD": text})
    result = _bp_process(root, "build", "//...")
    assert (result.returncode, result.stderr) == (
        2, f"ERROR: {where}: {TOO_DEEP}\n"
           "hint: split the expression: assign parts of it to variables\n")


def test_too_deep_in_a_bzl_file_names_it(bp, ws):
    root = ws({"BUILD": 'load("//:defs.bzl", "x")\n',
               "defs.bzl": "def f():\n    return " + "(" * 600 + "1" + ")" * 600 + "\n"})
    result = bp("-C", str(root), "build", "//...")
    assert (result.code, result.err.splitlines()[0]) == (2, f"ERROR: defs.bzl:2:510: {TOO_DEEP}")


@pytest.mark.parametrize("text", [
    'x = "' + "(" * 5000 + '"\n',                        # inside a string
    "# " + "[" * 5000 + "\n",                            # inside a comment
    '"""\n' + "{" * 5000 + '\n"""\n',                    # inside a docstring
    "x = [\n" + "    1 +\n" * 400 + "    1]\ny = [" + "1, " * 3000 + "]\n",   # long, flat
    "x = [" + "-1, 2.5, a.b, " * 1000 + "]\n",          # siblings are not a chain
])
def test_deep_looking_text_that_is_not_deep_passes(text):
    check_nesting(text, "BUILD")


@pytest.mark.parametrize("text, where", [
    ("x = " + "[" * 300 + "]" * 300 + " + 1" * 250 + "\n", (1, 1)),   # together too deep
    ("x = " + "lambda: " * 170 + "1\n", (1, 1333)),                   # lambdas weigh 3
    ("def f():\n" + "".join(" " * i + "if x:\n" for i in range(1, 502)) + " " * 502 + "pass\n",
     (500, 500)),                                                     # blocks
])
def test_nesting_counts_brackets_operators_lambdas_and_blocks(text, where):
    with pytest.raises(TooDeep) as error:
        check_nesting(text, "BUILD")
    assert (error.value.location.line, error.value.location.column) == where


def test_a_rust_panic_in_starlark_is_an_error_naming_the_file(bp, ws):
    root = ws({"BUILD": "x = list(range(2147483647))\n"})   # fails fast, before allocating
    result = bp("-C", str(root), "build", "//...")
    assert (result.code, result.err) == (
        2, "ERROR: error loading package '//': Starlark failed in BUILD: AlignedSize must not "
           "exceed u32::MAX\nhint: a value probably grew too large (strings and lists hold at "
           "most 4 GiB); look for one doubled or multiplied many times\n")


def test_the_report_a_panic_prints_by_itself_is_held_back(ws):
    root = ws({"BUILD": 'print("before")\nx = list(range(2147483647))\n'})
    result = subprocess.run([sys.executable, "-m", "buildpy", "-C", str(root), "build", "//..."],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "RUST_BACKTRACE": "1"})
    assert (result.returncode, result.stderr) == (2, (
        "DEBUG: BUILD:1:6: before\n"
        "ERROR: error loading package '//': Starlark failed in BUILD: AlignedSize must not "
        "exceed u32::MAX\nhint: a value probably grew too large (strings and lists hold at "
        "most 4 GiB); look for one doubled or multiplied many times\n"))


def test_evaluation_stops_when_memory_grows_past_the_bound(bp, ws, monkeypatch):
    monkeypatch.setattr(limits, "MAX_EVAL_MEMORY", 64 << 20)
    root = ws({"BUILD": "def grow():\n    kept = []\n    for i in range(3000000):\n"
                        "        kept.append(str(i) * 20)\ngrow()\n"})
    result = bp("-C", str(root), "build", "//...")
    assert result.code == 2
    assert result.err.startswith("ERROR: error loading package '//': evaluation used more "
                                 "than 64 MiB of memory and was stopped\n")
    assert result.err.endswith("hint: look for a value that grows without bound (a list or "
                               "string built in a loop)\n")


def test_package_groups_including_each_other_2000_deep(bp, ws):
    n = 2000
    groups = ['package_group(name = "g0", packages = ["//app"])']
    groups += [f'package_group(name = "g{i}", includes = [":g{i - 1}"])' for i in range(1, n)]
    root = ws({"lib/BUILD": "\n".join(groups) + "\n"
                            f'filegroup(name = "lib", visibility = [":g{n - 1}"])\n',
               "app/BUILD": 'filegroup(name = "app", srcs = ["//lib"])\n'})
    result = bp("-C", str(root), "query", "deps(//app)")
    assert (result.code, result.out, result.err) == (0, "//app:app\n//lib:lib\n", "")


def test_starlark_output_expressions_are_guarded_too(bp, ws):
    root = ws({"BUILD": 'filegroup(name = "a")\n'})
    deep = "(" * 600 + "str(target.label)" + ")" * 600
    result = bp("-C", str(root), "cquery", "--output=starlark", f"--starlark:expr={deep}",
                "//:a")
    assert (result.code, result.err.splitlines()[0]) == (2, f"ERROR: --starlark:expr:1:500: "
                                                            f"{TOO_DEEP}")
    result = bp("-C", str(root), "cquery", "--output=starlark",
                "--starlark:expr=str(list(range(2147483647)))", "//:a")
    assert (result.code, result.err) == (
        2, "ERROR: --starlark:expr failed: AlignedSize must not exceed u32::MAX\n"
           "hint: a value probably grew too large (strings and lists hold at most 4 GiB)\n")


def _load_chain(ws, n: int) -> Path:
    files = {"BUILD": 'load("//:b0.bzl", "x")\nfilegroup(name = "a", tags = ["%d" % x])\n'}
    for i in range(n):
        files[f"b{i}.bzl"] = (f'load("//:b{i + 1}.bzl", y = "x")\nx = y + 1\n'
                              if i < n - 1 else "x = 1\n")
    return ws(files)


def test_a_chain_of_90_bzl_files_loads(bp, ws):
    root = _load_chain(ws, 90)
    result = bp("-C", str(root), "query", "attr(tags, '\\[90\\]', //:a)")
    assert (result.code, result.out) == (0, "//:a\n")


def test_a_load_chain_too_deep_is_an_error_naming_it(bp, ws):
    root = _load_chain(ws, 300)   # Python's recursion limit stopped near 190
    result = bp("-C", str(root), "build", "//...")
    assert (result.code, result.err) == (
        2, "ERROR: load() statements nest too deeply: more than 100 .bzl files each loaded by "
           "the one before (//:b0.bzl -> ... -> //:b99.bzl -> //:b100.bzl)\n"
           "hint: load what a file needs from fewer levels of files\n")


def test_the_quick_bounds_never_let_through_what_the_scan_refuses(monkeypatch):
    """check_nesting skips the exact scan when a quick bound (first of the text as
    written, strings and comments in) is within the limit. With a small limit, random
    text shows that check_nesting refuses exactly what the scan refuses."""
    import random

    from buildpy.lang import nesting

    pieces = ["(", ")", "[", "]", "{", "}", "+", "-", "*", ".", "a.b", "x", "1.5", "in",
              "not", "lambda", "if", "and", ":", ",", '"s(["', "'q+.'", '"""d\n  {"""',
              "r'\\''", "# c[(\n", "\n", "\n    ", "\n\t", "  ", "   "]
    rng = random.Random(21)
    refused = 0
    for _ in range(3000):
        text = " ".join(rng.choice(pieces) for _ in range(rng.randrange(1, 40)))
        monkeypatch.setattr(nesting, "MAX_DEPTH", rng.randrange(2, 12))
        try:
            nesting._Scan(text, "BUILD").run()
        except TooDeep:
            refused += 1
            with pytest.raises(TooDeep):
                check_nesting(text, "BUILD")
        else:
            check_nesting(text, "BUILD")
    assert refused > 300   # (the text reaches the limits often enough to test them)
