"""bp query: the language, its functions, pipelines, output formats and error texts."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from buildpy.query.syntax import QuerySyntaxError, parse_query
from conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "examples" / "monorepo"

GRAPH = {
    "WORKSPACE": "",
    "lib/BUILD": '''
        load(":defs.bzl", "stamp")
        package(default_visibility = ["//visibility:public"])
        filegroup(name = "base", srcs = ["base.txt"])
        filegroup(name = "mid", srcs = [":base"], tags = ["x"])
        stamp(name = "stamped", src = ":mid")
        genrule(name = "gen", srcs = [":mid"], outs = ["gen.out"], cmd = "c", testonly = 1)
        ''',
    "lib/defs.bzl": '''
        def stamp(name, src):
            native.genrule(name = name, srcs = [src], outs = [name + ".txt"], cmd = "x")
        ''',
    "app/BUILD": '''
        filegroup(name = "app", srcs = ["//lib:stamped", "//lib:gen.out"], testonly = True)
        sh_test(name = "small_test", srcs = ["t.sh"], size = "small", tags = ["fast"])
        sh_test(name = "big_test", srcs = ["t.sh"], size = "large")
        sh_test(name = "manual_test", srcs = ["t.sh"], tags = ["manual", "fast"])
        test_suite(name = "fast", tags = ["fast"])
        test_suite(name = "not_small", tags = ["-small"])
        test_suite(name = "named", tests = [":manual_test", ":fast"])
        filegroup(name = "private", visibility = ["//visibility:private"])
        ''',
}


@pytest.fixture
def q(bp, ws):
    root = ws(GRAPH)

    def run(*args: str) -> list[str]:
        result = bp("-C", str(root), "query", *args)
        assert result.code == 0, result.err
        return result.out.splitlines()

    run.root = root
    return run


def test_a_query_that_needs_no_edges_does_not_import_networkx(q):
    """`bp query //...` (sorted labels) expands patterns only: importing networkx alone
    was about 60 ms of a cold query's second at 13,000 targets. `deps` order needs it."""
    probe = ("import sys; from buildpy.cli import _command; "
             "code = _command(sys.argv[1:]); print(code, 'networkx' in sys.modules)")
    for args, imported in ((["//..."], False), (["--order_output=deps", "//..."], True),
                           (["deps(//app:app)"], True)):
        out = subprocess.run([sys.executable, "-c", probe, "-C", str(q.root), "query", *args],
                             capture_output=True, text=True, timeout=60).stdout
        assert out.splitlines()[-1] == f"0 {imported}", (args, out)


def test_deps_and_depth(q):
    assert q("deps(//lib:mid)") == ["//lib:base", "//lib:base.txt", "//lib:mid"]
    assert q("deps(//app:app, 1)") == ["//app:app", "//lib:gen.out", "//lib:stamped"]
    assert q("deps(//app:app, 0)") == ["//app:app"]


def test_rdeps_with_universe_and_depth(q):
    assert q("rdeps(//..., //lib:base)") == [
        "//app:app", "//lib:base", "//lib:gen", "//lib:gen.out", "//lib:mid", "//lib:stamped"]
    assert q("rdeps(//lib/..., //lib:base, 1)") == ["//lib:base", "//lib:mid"]
    assert q("rdeps(//lib:gen, //lib:base)") == ["//lib:base", "//lib:gen", "//lib:mid"]


def test_somepath_prints_the_path_in_order(q):
    assert q("somepath(//app:app, //lib:base.txt)") == [
        "//app:app", "//lib:stamped", "//lib:mid", "//lib:base", "//lib:base.txt"]
    assert q("somepath(//lib:base, //app:app)") == []


def test_allpaths(q):
    assert q("allpaths(//app:app, //lib:mid)") == [
        "//app:app", "//lib:gen", "//lib:gen.out", "//lib:mid", "//lib:stamped"]


def test_filters(q):
    assert q('kind("generated file", deps(//app:app))') == ["//lib:gen.out"]
    assert q("kind(genrule, //lib:*)") == ["//lib:gen", "//lib:stamped"]
    assert q("filter('st.*d$', //...)") == ["//lib:stamped"]
    assert q("attr(tags, x, //...)") == ["//lib:mid"]
    assert q("attr(testonly, 1, //lib:all + //app:app)") == ["//app:app", "//lib:gen"]
    assert "//app:fast" in q("attr(testonly, 1, //...)")  # tests and suites are testonly
    assert q('attr(srcs, "\\[//lib:base\\]", //...)') == ["//lib:mid"]
    assert q("attr(generator_function, stamp, //...)") == []
    assert q("labels(srcs, //app:app)") == ["//lib:gen.out", "//lib:stamped"]
    assert q("labels(outs, //lib:gen)") == ["//lib:gen.out"]


def test_tests_expands_suites_like_bazel(q):
    assert q("tests(//app:fast)") == ["//app:small_test"]
    assert q("tests(//app:not_small)") == ["//app:big_test"]
    assert q("tests(//app:named)") == ["//app:manual_test", "//app:small_test"]
    assert q("tests(//app:all)") == [
        "//app:big_test", "//app:manual_test", "//app:small_test"]


def test_package_functions(q):
    assert q("buildfiles(//lib:mid)") == ["//lib:BUILD", "//lib:defs.bzl"]
    assert q("loadfiles(//lib:mid + //app:app)") == ["//lib:defs.bzl"]
    assert q("rbuildfiles(lib/defs.bzl)") == ["//lib:BUILD"]
    assert "//lib:base.txt" in q("siblings(//lib:mid)")
    assert q("same_pkg_direct_rdeps(//lib:mid)") == ["//lib:gen", "//lib:stamped"]
    assert q("visible(//app:app, //app:private + //lib:mid)") == ["//app:private", "//lib:mid"]
    assert q("visible(//lib:mid, //app:private + //lib:base)") == ["//lib:base"]
    assert q("some(//lib:all)") == ["//lib:base"]
    assert q("some(//lib:all, 2)") == ["//lib:base", "//lib:gen"]


def test_operators_let_and_set(q):
    assert q("//lib:all - //lib:gen ^ //lib:base") == ["//lib:base"]
    assert q("//lib:base + //lib:mid except //lib:base") == ["//lib:mid"]
    assert q("let v = //lib:mid in deps($v) intersect rdeps(//..., $v)") == ["//lib:mid"]
    assert q("set(//lib:base //lib:mid)") == ["//lib:base", "//lib:mid"]
    assert q("--", "//lib:all -//lib:gen -//lib:stamped") == ["//lib:base", "//lib:mid"]


def test_pipelines(q):
    assert q("//app:app | deps | kind genrule | except //lib:gen") == ["//lib:stamped"]
    assert q("//lib:base | rdeps //... 1") == ["//lib:base", "//lib:mid"]
    assert q("//lib:base | rdeps //lib/... | filter gen") == ["//lib:gen"]
    assert q("//lib:mid | deps + //app:app") == [
        "//app:app", "//lib:base", "//lib:base.txt", "//lib:mid"]
    assert q("(//lib:mid | deps 1) ^ //lib:base") == ["//lib:base"]


def _table_rows(text: str):
    for line in text.splitlines():
        cells = re.findall(r"`((?:[^`])*)`", line.replace("\\|", "\x00"))
        if line.startswith("| `") and len(cells) == 2:
            yield tuple(c.replace("\x00", "|") for c in cells)


def test_pipeline_examples_in_the_docs_match_their_bazel_form(bp):
    rows = list(_table_rows((REPO_ROOT / "docs" / "query.md").read_text()))
    rows = [(a, b) for a, b in rows if "|" in a]
    assert len(rows) >= 12
    for pipeline, bazel in rows:
        first = bp("-C", str(EXAMPLE), "query", pipeline)
        second = bp("-C", str(EXAMPLE), "query", bazel)
        assert first.code == second.code == 0, (pipeline, first.err, second.err)
        assert first.out == second.out and first.out, pipeline


SYNTAX_ERRORS = [
    ("deps(//a", "<query>:1:9: syntax error: expected ',' or ')' in the arguments of deps(), "
                 "found end of query\n1 | deps(//a\n  |         ^"),
    ("dpes(//a)", "<query>:1:1: unknown function 'dpes'; did you mean 'deps'?\n"
                  "1 | dpes(//a)\n  | ^\nhint: the functions are: allpaths, allrdeps, attr, "
                  "buildfiles, config, deps, emit, filter, inputs, kind, labels, loadfiles, "
                  "mnemonic, outputs, rbuildfiles, rdeps, same_pkg_direct_rdeps, siblings, "
                  "some, somepath, subquery, tests, visible"),
    ("//a //b", "<query>:1:5: syntax error: expected an operator, '|' or the end of the query, "
                "found '//b'\n1 | //a //b\n  |     ^\nhint: join expressions with an operator "
                "(union, intersect, except) or '|'"),
    ('kind("x, //a)', "<query>:1:6: unclosed quotation mark \"\n1 | kind(\"x, //a)\n"
                      "  |      ^\nhint: end the word with \""),
    ("let v = //a $v", "<query>:1:13: syntax error: expected 'in', found '$v'\n"
                       "1 | let v = //a $v\n  |             ^"),
    ("deps(//a, x)", "<query>:1:11: syntax error: deps() expects an integer here, found 'x'\n"
                     "1 | deps(//a, x)\n  |           ^"),
    ("rdeps(//a)", "<query>:1:10: syntax error: rdeps() needs 2 arguments, got 1\n"
                   "1 | rdeps(//a)\n  |          ^\nhint: rdeps(expression, expression, "
                   "[integer])"),
    ("//a | kind", "<query>:1:11: syntax error: the stage 'kind' needs one more word argument\n"
                   "1 | //a | kind\n  |           ^"),
    ("//a | //b", "<query>:1:7: unknown function '//b'\n1 | //a | //b\n  |       ^\n"
                  "hint: the functions are: allpaths, allrdeps, attr, buildfiles, config, "
                  "deps, emit, filter, inputs, kind, labels, loadfiles, mnemonic, outputs, "
                  "rbuildfiles, rdeps, same_pkg_direct_rdeps, siblings, some, somepath, "
                  "subquery, tests, visible"),
    ("", "empty query\nhint: for example: bp query '//...'"),
]


@pytest.mark.parametrize("text,expected", SYNTAX_ERRORS)
def test_syntax_errors_point_at_the_column(text, expected):
    with pytest.raises(QuerySyntaxError) as error:
        parse_query(text)
    assert error.value.render() == expected


def test_evaluation_errors_name_the_pattern(bp, q):
    result = bp("-C", str(q.root), "query", "deps(//lib:mdi)")
    assert (result.code, result.err) == (
        2, "ERROR: <query>:1:6: no such target '//lib:mdi': target 'mdi' not declared in "
           "package 'lib' defined by lib/BUILD; did you mean '//lib:mid'?\n"
           "1 | deps(//lib:mdi)\n  |      ^\n")
    result = bp("-C", str(q.root), "query", "$x")
    assert result.err == ("ERROR: <query>:1:1: undefined variable '$x'\n1 | $x\n  | ^\n"
                          "hint: bind it first: let x = ... in ...\n")
    result = bp("-C", str(q.root), "query", "some(//nothing:here - //nothing:here)")
    assert result.code == 2
    result = bp("-C", str(q.root), "query", "kind('(', //...)")
    assert result.err.startswith("ERROR: <query>:1:6: invalid regular expression '(' in kind()")
    result = bp("-C", str(q.root), "query", "config(//lib:mid, target)")
    assert result.err.startswith("ERROR: <query>:1:1: config() is only available in bp cquery")


def test_output_formats(q):
    assert q("deps(//lib:mid)", "--output=label_kind") == [
        "filegroup rule //lib:base", "source file //lib:base.txt", "filegroup rule //lib:mid"]
    assert q("//...", "--output=package") == ["app", "lib"]
    root = q.root
    assert q("//lib:mid + //lib:base.txt", "--output=location") == [
        f"{root}/lib/base.txt:1:1: source file //lib:base.txt",
        f"{root}/lib/BUILD:4:10: filegroup rule //lib:mid"]
    assert q("deps(//lib:stamped)", "--output=minrank") == [
        "0 //lib:stamped", "1 //lib:mid", "2 //lib:base", "3 //lib:base.txt"]
    assert q("deps(//app:app)", "--output=maxrank")[-1] == "5 //lib:base.txt"
    assert q("deps(//lib:mid)", "--output=graph") == [
        "digraph mygraph {", "  node [shape=box];",
        '  "//lib:base"', '  "//lib:base" -> "//lib:base.txt"',
        '  "//lib:base.txt"',
        '  "//lib:mid"', '  "//lib:mid" -> "//lib:base"', "}"]
    factored = q("//lib:gen + //lib:stamped + //lib:mid", "--output=graph")
    assert '  "//lib:gen\\n//lib:stamped" -> "//lib:mid"' in factored
    assert len(q("//lib:gen + //lib:stamped", "--output=graph", "--nograph:factored")) == 5
    assert len(q("//lib:gen + //lib:stamped", "--output=graph")) == 4


def test_build_and_json_outputs(q):
    text = "\n".join(q("//lib:stamped", "--output=build"))
    assert text == (
        f"# {q.root}/lib/BUILD:5:6\n"
        "genrule(\n"
        '  name = "stamped",\n'
        '  generator_name = "stamped",\n'
        '  generator_function = "stamp",\n'
        '  generator_location = "lib/BUILD:5:6",\n'
        '  cmd = "x",\n'
        '  outs = ["//lib:stamped.txt"],\n'
        '  srcs = ["//lib:mid"],\n'
        ")")
    records = json.loads("\n".join(q("//lib:mid", "--output=json")))
    assert records[0]["label"] == "//lib:mid" and records[0]["kind"] == "filegroup rule"
    assert records[0]["attributes"]["srcs"] == ["//lib:base"]
    assert records[0]["location"] == "lib/BUILD:4:10" and records[0]["deps"] == ["//lib:base"]
    lines = q("deps(//lib:gen.out)", "--output=streamed_jsonproto")
    kinds = [json.loads(line)["type"] for line in lines]
    assert kinds == ["RULE", "SOURCE_FILE", "RULE", "GENERATED_FILE", "RULE"]


def test_order_output(q):
    assert q("deps(//lib:stamped)", "--order_output=deps") == [
        "//lib:stamped", "//lib:mid", "//lib:base", "//lib:base.txt"]
    assert sorted(q("deps(//lib:stamped)", "--order_output=no")) == sorted(
        q("deps(//lib:stamped)"))


def test_query_file_and_universe_scope(q, tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("deps(\n  //lib:mid\n)\n")
    assert q("--query_file", str(path)) == ["//lib:base", "//lib:base.txt", "//lib:mid"]
    assert q("--universe_scope=//lib/...", "allrdeps(//lib:mid, 1)") == [
        "//lib:gen", "//lib:mid", "//lib:stamped"]


def test_query_file_errors_point_into_the_file(bp, q, tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("deps(\n  //lib:mid,\n  oops)\n")
    result = bp("-C", str(q.root), "query", "--query_file", str(path))
    assert result.err == (f"ERROR: {path}:3:3: syntax error: deps() expects an integer here, "
                          "found 'oops'\n3 |   oops)\n  |   ^\n")


def test_a_query_file_that_is_not_utf8_is_located(bp, q, tmp_path):
    path = tmp_path / "q.txt"
    path.write_bytes(b"deps(//lib:mid)\n+ //lib:\xff\n")
    result = bp("-C", str(q.root), "query", "--query_file", str(path))
    assert result.code == 2
    assert result.err == (f"ERROR: {path}:2:9: invalid UTF-8 in {path}: byte 0xff (invalid "
                          "start byte)\n2 | + //lib:\ufffd\n  |         ^\n"
                          "hint: a query file must be UTF-8 text\n")


def test_noimplicit_deps_skips_private_attributes(bp, ws):
    root = ws({
        "r/BUILD": 'load(":defs.bzl", "tooled")\ntooled(name = "t")\nfilegroup(name = "tool")',
        "r/defs.bzl": 'tooled = rule(implementation = lambda ctx: [], '
                      'attrs = {"_tool": attr.label(default = ":tool")})',
    })
    assert bp("-C", str(root), "query", "deps(//r:t)").out == "//r:t\n//r:tool\n"
    assert bp("-C", str(root), "query", "deps(//r:t)", "--noimplicit_deps").out == "//r:t\n"


def test_keep_going_reports_broken_packages(bp, q):
    (q.root / "broken").mkdir()
    (q.root / "broken" / "BUILD").write_text("filegroup(\n")
    result = bp("-C", str(q.root), "query", "//... - //app/...", "--keep_going")
    assert result.code == 3
    assert result.out.splitlines() == ["//lib:base", "//lib:gen", "//lib:mid", "//lib:stamped"]
    assert "error loading package '//broken'" in result.err


def test_empty_result_says_so(bp, q):
    result = bp("-C", str(q.root), "query", "//lib:base - //lib:base")
    assert (result.code, result.out, result.err) == (0, "", "INFO: Empty results\n")


class _Graph:
    """A query environment over a networkx DiGraph of numbers, `n<k>` naming node k: the
    engine's seam, for its graph functions alone."""

    def __init__(self, graph):
        self.graph = graph
        self.ensured = []
        self.forward = 0   # successors() calls: the walks that made the universe's closure

    def resolve(self, word):
        return {int(word.text[1:]): None}

    def ensure(self, nodes):
        self.ensured.append(list(nodes))

    def successors(self, node):
        self.forward += 1
        return self.graph.successors(node)

    def predecessors(self, node):
        return self.graph.predecessors(node)


def _rdeps_by_definition(graph, universe, x, depth):
    """rdeps as Bazel defines it, breadth first from x, through the universe's closure."""
    import networkx as nx

    closure = set(universe).union(*(nx.descendants(graph, n) for n in universe))
    result = {n: 0 for n in x if n in closure}
    queue = list(result)
    for node in queue:
        if depth is not None and result[node] >= depth:
            continue
        for other in graph.predecessors(node):
            if other in closure and other not in result:
                result[other] = result[node] + 1
                queue.append(other)
    return list(result)


def test_rdeps_is_its_definition():
    """rdeps walks back from x without the universe's closure while it meets only nodes
    of the universe itself (engine.py); it must give the same nodes in the same order as
    the walk through the closure, for universes closed under deps or not."""
    import random

    import networkx as nx

    from buildpy.query.engine import evaluate

    rng = random.Random(21)
    fast = slow = 0
    for _ in range(400):
        size = rng.randint(1, 12)
        graph = nx.DiGraph()
        graph.add_nodes_from(range(size))
        graph.add_edges_from((a, b) for a in range(size) for b in range(a + 1, size)
                             if rng.random() < 0.25)
        universe = rng.sample(range(size), rng.randint(1, size))
        if rng.random() < 0.5:   # closed under deps, as //... nearly always is
            universe = list(dict.fromkeys(
                universe + [d for n in universe for d in nx.descendants(graph, n)]))
        x = rng.sample(range(size), rng.randint(1, size))
        depth = rng.choice([None, 0, 1, 2])
        env = _Graph(graph)
        text = (f"rdeps(set({' '.join(f'n{n}' for n in universe)}), "
                f"set({' '.join(f'n{n}' for n in x)})" +
                (f", {depth})" if depth is not None else ")"))
        result, errors = evaluate(env, parse_query(text))
        assert not errors
        assert list(result) == _rdeps_by_definition(graph, universe, x, depth), text
        assert env.ensured == [universe]   # (the universe is loaded, as Bazel does)
        closed = set(universe) >= set(_rdeps_by_definition(graph, graph.nodes, x, depth))
        assert (env.forward == 0) == closed, text   # no closure made when none is needed
        fast += closed
        slow += not closed
    assert fast > 50 and slow > 50   # both ways were taken
