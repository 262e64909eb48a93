"""Bazel's Label, Target, File and depset values in .bzl code: str(), %, format(),
dep[Provider], Provider in dep, and errors shown as the file was written."""

from __future__ import annotations

import pytest

from buildpy.lang.rewrite import rewrite


@pytest.mark.parametrize("source, expected", [
    ('x = d["a"]\n', 'x = _bp_at(d, "a")\n'),
    ("y = (a)[k] + b[c][d]\n", "y = _bp_at((a), k) + _bp_at(_bp_at(b, c), d)\n"),
    ("ok = p in dep and q not in dep\n", "ok = _bp_in(p , dep) and _bp_not_in(q , dep)\n"),
    ('m = "%s: %d" % (label, 3)\n', 'm = _bp_mod("%s: %d" , (label, 3))\n'),
    ('s = "{}".format(x)\nt = "a".format()\n', 's = _bp_format("{}", x)\nt = _bp_format("a", )\n'),
    ("w = x in a[b]\n", "w = _bp_in(x , _bp_at(a, b))\n"),
    # a call of to_list() without arguments; one with arguments is another function's
    ("f = dep.files.to_list() + (d).to_list ()\ns = sets.to_list(x)\n",
     "f = _bp_to_list(dep.files) + _bp_to_list((d))\ns = sets.to_list(x)\n"),
    ("r = a.merge(b).merge_all([c])\n", "r = _bp_merge_all(_bp_merge(a, b), [c])\n"),
    ('v = "é" + d["k"]\n', 'v = "é" + _bp_at(d, "k")\n'),
    ("z = l[1:2]\nd[k] = 3\nfor x in y:\n    pass\n", None),   # slices, stores, loops stay
    ("def f(:\n    x[1]\n", None),   # does not parse: Starlark reports it as written
])
def test_operators_are_routed_through_helpers_and_lines_are_kept(source, expected):
    result = rewrite(source)
    assert (result.text if result else None) == expected
    if result:
        assert result.text.count("\n") == source.count("\n")


def test_columns_of_the_rewritten_text_map_back_to_the_original():
    source = 'v = "é" + d["k"] + e[1]\n'
    result = rewrite(source)
    new = result.text
    assert new == 'v = "é" + _bp_at(d, "k") + _bp_at(e, 1)\n'
    for piece in ("d", '"k"', "e", "1]", "1)"):
        if piece in new:
            original = piece.replace(")", "]")
            assert result.original_column(1, new.index(piece, 8)) == \
                source.index(original, 8)
    assert result.original_column(1, new.index("_bp_at")) == 10   # inserted text: its place


VALUES = '''
MyInfo = provider(fields = ["value"])
OtherInfo = provider(fields = ["value"])

def _lib_impl(ctx):
    return MyInfo(value = ctx.label.name)

lib = rule(implementation = _lib_impl)

def _show_impl(ctx):
    dep = ctx.attr.dep
    lines = [
        str(ctx.label), "%s" % ctx.label, "{}-{x}".format(ctx.label, x = dep.label),
        repr(ctx.label), type(ctx.label), type(dep), str(dep), dep[MyInfo].value,
        "%s %s" % (MyInfo in dep, OtherInfo not in dep), str([dep.label]),
        "%s|%r|%d%%" % (ctx.label, ctx.label, 7),
    ]
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.write(out, "\\n".join(lines) + "\\n")
    return [DefaultInfo(files = depset([out]))]

show = rule(implementation = _show_impl, attrs = {"dep": attr.label()})

def _bad_impl(ctx):
    dep = ctx.attr.dep
    value = (1 +
             dep[OtherInfo].value)
    return []

bad = rule(implementation = _bad_impl, attrs = {"dep": attr.label()})

def _index_impl(ctx):
    return [] if {"a": 1}["b"] else []

index = rule(implementation = _index_impl)
'''

BUILD = '''
load(":defs.bzl", "bad", "index", "lib", "show")

lib(name = "l")

show(name = "s", dep = ":l")

bad(name = "b", dep = ":l")

index(name = "i")
'''


@pytest.fixture
def values_ws(ws):
    return ws({"p/defs.bzl": VALUES, "p/BUILD": BUILD})


def test_labels_and_targets_print_and_answer_as_in_bazel(bp, values_ws):
    result = bp("-C", str(values_ws), "build", "//p:s")
    assert result.code == 0, result.err
    out = (values_ws / "bp-out").glob("*/bin/p/s.out")
    assert next(out).read_text().splitlines() == [
        "//p:s", "//p:s", "//p:s-//p:l",
        'Label("//p:s")', "Label", "Target", "<target //p:l>", "l",
        "True True", '[Label("//p:l")]',
        '//p:s|Label("//p:s")|7%',
    ]


def test_a_missing_provider_is_shown_at_the_users_expression(bp, values_ws):
    result = bp("-C", str(values_ws), "build", "//p:b")
    assert result.code != 0
    assert "<target //p:l> doesn't contain declared provider 'OtherInfo'" in result.err
    assert "--> p/defs.bzl:26:14" in result.err
    assert "26 |              dep[OtherInfo].value)" in result.err
    assert "_bp_" not in result.err and "<builtins>" not in result.err


def test_an_error_in_a_rewritten_line_shows_the_line_as_written(bp, values_ws):
    result = bp("-C", str(values_ws), "build", "//p:i")
    assert result.code != 0
    assert "Key `\"b\"` was not found" in result.err
    assert "--> p/defs.bzl:32:18" in result.err
    assert '32 |     return [] if {"a": 1}["b"] else []' in result.err
    assert "_bp_" not in result.err and "<builtins>" not in result.err


def test_an_error_while_a_bzl_file_loads_is_shown_as_written(bp, ws):
    root = ws({"p/defs.bzl": 'X = 1\nY = {"a": 1}["b"]\n', "p/BUILD": 'load(":defs.bzl", "X")\n'})
    result = bp("-C", str(root), "query", "//p:all")
    assert result.code != 0
    assert "error loading '//p:defs.bzl'" in result.err
    assert "--> p/defs.bzl:2:5" in result.err
    assert '2 | Y = {"a": 1}["b"]' in result.err
    assert "Traceback" not in result.err
    assert "_bp_" not in result.err and "<builtins>" not in result.err


DEPSETS = """
def _own_to_list():
    return ["mine"]

def _lists_impl(ctx):
    d = depset(["b"], transitive = [depset(["a"])])
    mine = struct(to_list = _own_to_list, merge = lambda x: ["merged " + x])   # their own
    sets = struct(to_list = lambda s: sorted(s))   # and one that takes an argument
    runfiles = ctx.runfiles(["r1"]).merge(ctx.runfiles(["r2"])).merge_all([ctx.runfiles(["r3"])])
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.write(out, " ".join(d.to_list() + mine.to_list() + sets.to_list(["z", "y"]) +
                                    mine.merge("x") + runfiles.files.to_list()))
    return [DefaultInfo(files = depset([out]))]

lists = rule(implementation = _lists_impl)

def _indirect_impl(ctx):
    return [DefaultInfo(files = depset([]), runfiles = ctx.runfiles(getattr(depset([]), "to_list")()))]

indirect = rule(implementation = _indirect_impl)

def _indirect_merge_impl(ctx):
    merge = ctx.runfiles().merge
    return [DefaultInfo(runfiles = merge(ctx.runfiles()))]

indirect_merge = rule(implementation = _indirect_merge_impl)
"""


def test_to_list_and_merge_of_bp_values_and_of_other_values(bp, ws):
    """`d.to_list()` and runfiles' `merge`/`merge_all` reach bp's values through helpers
    (they hold no function of their own); other values' own `to_list` and `merge` still
    answer, and bp's taken as values fail with a clear error."""
    root = ws({"p/defs.bzl": DEPSETS,
               "p/BUILD": 'load(":defs.bzl", "indirect", "indirect_merge", "lists")\n'
                          'lists(name = "l")\nindirect(name = "i")\n'
                          'indirect_merge(name = "m")\n'})
    result = bp("-C", str(root), "build", "//p:l")
    assert result.code == 0, result.err
    assert (root / "bp-bin" / "p" / "l.out").read_text() == "a b mine y z merged x r1 r2 r3"
    result = bp("-C", str(root), "build", "//p:i")
    assert result.code != 0
    assert "to_list can be called only as d.to_list()" in result.err
    assert "--> p/defs.bzl:" in result.err and "<builtins>" not in result.err
    result = bp("-C", str(root), "build", "//p:m")
    assert result.code != 0
    assert "merge and merge_all can be called only as r.merge(x)" in result.err
    assert "--> p/defs.bzl:" in result.err and "<builtins>" not in result.err
