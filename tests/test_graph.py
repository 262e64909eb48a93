"""`bp graph`: DOT and the HTML page's embedded data, flags and errors."""

from __future__ import annotations

import json
import re

import pytest

from buildpy.query.graphview import html_page, script_json

GRAPH = {
    "lib/BUILD": '''
        load(":defs.bzl", "stamp")
        package(default_visibility = ["//visibility:public"])
        filegroup(name = "base", srcs = ["base.txt"])
        filegroup(name = "mid", srcs = [":base"], tags = ["x"])
        stamp(name = "stamped", src = ":mid")
        filegroup(name = "a</script><b>\\"x", srcs = [":mid"])
        ''',
    "lib/defs.bzl": '''
        def stamp(name, src):
            native.genrule(name = name, srcs = [src], outs = [name + ".txt"], cmd = "x")
        ''',
    "app/BUILD": '''
        filegroup(name = "app", srcs = ["//lib:stamped", "//lib:base"])
        ''',
}
ODD = '//lib:a</script><b>"x'


@pytest.fixture
def root(ws):
    return ws(GRAPH)


def embedded(page: str):
    """The JSON data of a page, checking that it cannot end its <script> element early."""
    start = '<script type="application/json" id="bp-graph-data">'
    assert page.count(start) == 1
    text = page.split(start, 1)[1].split("</script>", 1)[0]
    assert "<" not in text and ">" not in text
    return json.loads(text)


def test_dot_has_every_node_and_the_edges_among_them(bp, root):
    done = bp("-C", str(root), "graph", "deps(//lib:stamped) + //app:app")
    assert done.code == 0, done.err
    assert done.out.splitlines() == [
        "digraph mygraph {", "  node [shape=box];",
        '  "//app:app"', '  "//app:app" -> "//lib:base"', '  "//app:app" -> "//lib:stamped"',
        '  "//lib:base"', '  "//lib:base" -> "//lib:base.txt"',
        '  "//lib:base.txt"',
        '  "//lib:mid"', '  "//lib:mid" -> "//lib:base"',
        '  "//lib:stamped"', '  "//lib:stamped" -> "//lib:mid"',
        "}"]


def test_dot_quotes_labels_with_quotes(bp, root):
    done = bp("-C", str(root), "graph", "//lib:mid + //lib:all", "--format=dot")
    assert done.code == 0, done.err
    assert '  "//lib:a</script><b>\\"x" -> "//lib:mid"' in done.out.splitlines()
    for line in done.out.splitlines()[2:-1]:   # every name is one well-formed DOT string
        assert re.fullmatch(r'  "(?:[^"\\]|\\.)*"(?: -> "(?:[^"\\]|\\.)*")?', line), line
    query = bp("-C", str(root), "query", "//lib:all", "--output=graph")
    assert '\\"x' in query.out   # bp query --output=graph quotes the same way


def test_html_embeds_the_targets_attributes_and_edges(bp, root):
    done = bp("-C", str(root), "graph", "deps(//app:app) + //lib:all", "--format=html")
    assert done.code == 0, done.err
    data = embedded(done.out)
    assert data["expression"] == "deps(//app:app) + //lib:all"
    labels = [node["label"] for node in data["nodes"]]
    assert labels == sorted(labels, key=lambda l: l.split(":"))
    assert ODD in labels
    by_label = {node["label"]: node for node in data["nodes"]}
    app = by_label["//app:app"]
    assert app["kind"] == "filegroup rule" and app["rule"] == "filegroup"
    assert app["location"] == "app/BUILD:1:10"
    assert app["attrs"] == {"srcs": ["//lib:stamped", "//lib:base"]}
    assert sorted(labels[d] for d in app["deps"]) == ["//lib:base", "//lib:stamped"]
    stamped = by_label["//lib:stamped"]
    assert stamped["generator"] == {"name": "stamped", "function": "stamp",
                                    "location": "lib/BUILD:5:6"}
    assert stamped["attrs"]["outs"] == ["//lib:stamped.txt"]
    assert by_label["//lib:base.txt"] == {"label": "//lib:base.txt", "kind": "source file",
                                          "location": "lib/base.txt:1:1", "deps": []}
    assert data["edges"] == sum(len(node["deps"]) for node in data["nodes"])


def test_the_page_is_self_contained(bp, root):
    page = html_page({"expression": "x", "nodes": [], "edges": 0})
    assert "/*BP_GRAPH_DATA*/" not in page
    assert not re.search(r"""\b(src|href)\s*=\s*["'](?!#)""", page)   # nothing fetched
    assert "@import" not in page and "url(" not in page
    assert "default-src 'none'" in page


def test_script_json_escapes_what_could_end_the_element():
    text = script_json({"label": "</script><!-- & -->"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"label": "</script><!-- & -->"}


def test_output_file(bp, root, tmp_path):
    target = tmp_path / "out" / "graph.html"
    target.parent.mkdir()
    done = bp("-C", str(root), "graph", "//app:app", "--format=html",
              f"--output_file={target}")
    assert done.code == 0, done.err
    assert done.out == ""
    assert done.err == f"INFO: wrote the graph of 1 target to {target}\n"
    assert [n["label"] for n in embedded(target.read_text())["nodes"]] == ["//app:app"]
    missing = tmp_path / "nowhere" / "graph.dot"
    done = bp("-C", str(root), "graph", "//app:app", f"--output_file={missing}")
    assert done.code == 36
    assert done.err == (f"ERROR: cannot write --output_file '{missing}': "
                        "No such file or directory\n")


def test_errors_are_those_of_bp_query(bp, root):
    for expression in ("deps(//lib:mid", "dpes(//lib:mid)", "//lib:nothere"):
        graph = bp("-C", str(root), "graph", expression)
        query = bp("-C", str(root), "query", expression)
        assert graph.code == query.code != 0
        assert graph.err == query.err
        assert graph.out == ""
    done = bp("-C", str(root), "graph", "//app:app", "--format=svg")
    assert done.code == 2
    assert "Invalid value for '--format': 'svg' is not one of 'dot', 'html'." in done.err
    done = bp("-C", str(root), "graph")
    assert done.code == 2
    assert "missing query expression" in done.err and "bp graph '//...'" in done.err


def test_an_empty_result_is_an_empty_graph(bp, root):
    done = bp("-C", str(root), "graph", "//app:app - //app:app")
    assert done.code == 0
    assert done.out == "digraph mygraph {\n  node [shape=box];\n}\n"
    assert done.err == "INFO: Empty results\n"
