"""`bp graph`: DOT and the HTML page's embedded data, flags and errors."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from urllib.parse import quote

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


def test_keep_going_draws_what_loaded_and_reports_the_rest(bp, root, tmp_path):
    (root / "broken").mkdir()
    (root / "broken" / "BUILD").write_text("filegroup(\n")
    target = tmp_path / "graph.html"
    done = bp("-C", str(root), "graph", "//app/... + //broken/...", "-k", "--format=html",
              f"--output_file={target}")
    assert done.code == 3
    assert "error loading package '//broken'" in done.err
    assert [n["label"] for n in embedded(target.read_text())["nodes"]] == ["//app:app"]
    done = bp("-C", str(root), "graph", "//app/... + //broken/...")
    query = bp("-C", str(root), "query", "//app/... + //broken/...")
    assert done.code == query.code == 2 and done.out == ""
    assert done.err == query.err and "error loading package '//broken'" in done.err


def test_an_empty_result_is_an_empty_graph(bp, root):
    done = bp("-C", str(root), "graph", "//app:app - //app:app")
    assert done.code == 0
    assert done.out == "digraph mygraph {\n  node [shape=box];\n}\n"
    assert done.err == "INFO: Empty results\n"


_NAME_CHARS = "".join(chr(c) for c in range(0x20, 0x7f) if chr(c) not in "\\/:") + "é→中😀"


def random_workspace(ws, seed: int, count: int = 25):
    """A package of filegroups with names of any character a target name may hold, each
    depending on some of the ones before it; returns (root, {label: its deps})."""
    rng = random.Random(seed)
    names: list[str] = []
    while len(names) < count:
        name = "t" + "".join(rng.choice(_NAME_CHARS) for _ in range(rng.randint(0, 8)))
        if name not in names and not name.endswith(".") and name.strip() == name:
            names.append(name)
    lines, expected = [], {}
    for i, name in enumerate(names):
        deps = rng.sample(names[:i], min(i, rng.randint(0, 3)))
        quoted = ", ".join(json.dumps(":" + d, ensure_ascii=False) for d in deps)
        lines.append(f"filegroup(name = {json.dumps(name, ensure_ascii=False)}, "
                     f"srcs = [{quoted}])")
        expected[f"//p:{name}"] = sorted(f"//p:{d}" for d in deps)
    return ws({"p/BUILD": "\n".join(lines) + "\n"}), expected


def dot_graph(text: str) -> dict[str, list[str]]:
    """Nodes and edges of the DOT that bp writes, every line checked on the way."""
    lines = text.splitlines()
    assert lines[:2] == ["digraph mygraph {", "  node [shape=box];"] and lines[-1] == "}"
    string = r'"((?:[^"\\]|\\.)*)"'
    graph: dict[str, list[str]] = {}
    for line in lines[2:-1]:
        match = re.fullmatch(rf"  {string}(?: -> {string})?", line)
        assert match, line
        source, dep = (re.sub(r"\\(.)", r"\1", g) if g is not None else None
                       for g in match.groups())
        graph.setdefault(source, [])
        if dep is not None:
            graph[source].append(dep)
    return {label: sorted(deps) for label, deps in graph.items()}


@pytest.mark.parametrize("seed", range(4))
def test_any_target_name_survives_dot_and_html(bp, ws, seed):
    root, expected = random_workspace(ws, seed)
    dot = bp("-C", str(root), "graph", "//p:all")
    assert dot.code == 0, dot.err
    assert dot_graph(dot.out) == expected
    html = bp("-C", str(root), "graph", "//p:all", "--format=html")
    assert html.code == 0, html.err
    nodes = embedded(html.out)["nodes"]
    assert {n["label"]: sorted(nodes[d]["label"] for d in n["deps"]) for n in nodes} == expected


# ---- the page in a real browser --------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright; both come from scripts/install-test-deps
    and the test extras. Skips, saying which is missing, on a machine without them."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is not installed "
        "(pip install -e '.[test]' brings it)")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no Chromium on this machine (scripts/install-test-deps installs "
                    "Debian's chromium package)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, timeout=20_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    """A fresh tab; the test fails if the page logs an error or throws."""
    tab = browser.new_page(viewport={"width": 1280, "height": 800})
    tab.set_default_timeout(5_000)
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning")
           else None)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on("request", lambda request: problems.append(f"fetched {request.url}")
           if not request.url.startswith("file:") else None)
    yield tab
    tab.close()
    assert problems == []


def open_page(page, path: Path) -> None:
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-state=ready]", timeout=15_000)


def node(page, label: str):
    return page.locator(f"g.node[data-label={json.dumps(label)}]")


def centre_of(locator) -> tuple[float, float]:
    """Where the node is drawn once the page has applied the view's last move (the page
    sets the transform in the next animation frame: a loaded machine measured before it)."""
    locator.page.wait_for_function("() => new Promise(r => requestAnimationFrame(() => r(true)))")
    box = locator.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def scene_transform(page) -> str:
    page.wait_for_function("() => new Promise(r => requestAnimationFrame(() => r(true)))")
    return page.get_attribute("#scene", "transform")


def test_the_page_shows_finds_and_explains_targets(bp, root, tmp_path, page):
    target = tmp_path / "graph.html"
    done = bp("-C", str(root), "graph", "deps(//app:app) + //lib:all", "--format=html",
              f"--output_file={target}")
    assert done.code == 0, done.err
    labels = [n["label"] for n in embedded(target.read_text())["nodes"]]
    open_page(page, target)
    assert page.locator("g.node").count() == len(labels)
    for label in labels:   # every target is drawn, inside the window after the fit
        x, y = centre_of(node(page, label))
        assert 0 < x < 1280 and 44 < y < 800, label
    assert page.text_content("#counts") == f"{len(labels)} targets, 6 edges"

    page.fill("#search", "MID")   # any case; the view centres on the match
    assert page.locator("g.node.match").count() == 1
    assert page.get_attribute("g.node.current", "data-label") == "//lib:mid"
    assert page.text_content("#matches") == "1 of 1"
    x, y = centre_of(node(page, "//lib:mid"))
    assert abs(x - 640) < 2 and abs(y - (44 + 756 / 2)) < 2
    page.press("#search", "Enter")   # selects it
    assert page.text_content("#panel h2") == "//lib:mid"
    assert page.text_content("#kind") == "filegroup rule"
    assert page.locator("#rdeps a").all_text_contents() == [ODD, "//lib:stamped"]
    assert page.locator("#deps a").all_text_contents() == ["//lib:base"]
    assert page.locator("#attributes tr").all_inner_texts() == [
        'srcs\t["//lib:base"]', 'tags\t["x"]']
    page.fill("#search", "")
    assert page.locator("g.node.match").count() == 0

    page.keyboard.press("Escape")   # closes the panel
    assert page.is_hidden("#panel")
    node(page, "//lib:stamped").click()
    assert page.text_content("#panel h2") == "//lib:stamped"
    assert page.text_content("#kind") == "genrule rule"
    assert "made by macro stamp(name = \"stamped\") at lib/BUILD:5:6" in page.text_content(
        "#panel")
    assert page.locator("#rdeps a").all_text_contents() == ["//app:app"]
    assert page.get_attribute("g.node.selected", "data-label") == "//lib:stamped"
    assert page.locator("g.node.rdep").count() == 1 and page.locator("g.node.dep").count() == 1
    page.click("#rdeps a")   # a reverse dependency is a link to it
    assert page.text_content("#panel h2") == "//app:app"
    page.click(f"#deps a >> text={json.dumps('//lib:base')}")
    assert page.locator("#rdeps a").all_text_contents() == ["//app:app", "//lib:mid"]
    page.click("#panel .close")
    assert page.is_hidden("#panel")

    page.click("#fit")
    node(page, ODD).click()   # a label with markup in it stays text
    assert page.text_content("#panel h2") == ODD
    assert page.locator("#panel b").count() == 0


def test_the_page_pans_and_zooms(bp, root, tmp_path, page):
    target = tmp_path / "graph.html"
    assert bp("-C", str(root), "graph", "//...", "--format=html",
              f"--output_file={target}").code == 0
    open_page(page, target)
    scale = lambda: float(re.search(r"scale\(([^)]+)\)", scene_transform(page)).group(1))  # noqa: E731
    start = scale()
    page.click("#zoom-in")
    assert scale() == pytest.approx(start * 1.4)
    page.click("#zoom-out")
    page.click("#zoom-out")
    assert scale() == pytest.approx(start / 1.4)
    page.mouse.move(640, 700)
    page.mouse.wheel(0, -200)
    assert scale() > start / 1.4
    page.click("#fit")
    assert scale() == pytest.approx(start)
    x, y = centre_of(node(page, "//app:app"))
    page.mouse.move(5, 60)   # drag the background: the graph follows, nothing is selected
    page.mouse.down()
    page.mouse.move(105, 110, steps=5)
    page.mouse.up()
    moved = centre_of(node(page, "//app:app"))
    assert moved == pytest.approx((x + 100, y + 50), abs=1)
    assert page.is_hidden("#panel")


def test_a_few_thousand_targets_lay_out_quickly(tmp_path, page):
    count = 3000
    rng = random.Random(20)
    nodes = [{"label": f"//pkg{i // 10}:t{i}", "kind": "genrule rule", "rule": "genrule",
              "location": f"pkg{i // 10}/BUILD:{i % 10 + 1}:1", "attrs": {},
              "deps": sorted(rng.sample(range(i + 1, count), min(3, count - i - 1)))}
             for i in range(count)]
    nodes[-1]["deps"] = [0]   # a cycle through the whole graph
    target = tmp_path / "big.html"
    target.write_text(html_page({"expression": "//...", "nodes": nodes,
                                 "edges": sum(len(n["deps"]) for n in nodes)}))
    open_page(page, target)
    assert page.locator("g.node").count() == count
    assert int(page.get_attribute("body", "data-layout-ms")) < 5_000
    page.fill("#search", "t2999")
    assert page.text_content("#matches") == "1 of 1"
    page.press("#search", "Enter")
    assert page.locator("#deps a").all_text_contents() == ["//pkg0:t0"]


def test_the_page_draws_any_label_as_text(bp, ws, tmp_path, page):
    root, expected = random_workspace(ws, 7)
    target = tmp_path / "graph.html"
    assert bp("-C", str(root), "graph", "//p:all", "--format=html",
              f"--output_file={target}").code == 0
    open_page(page, target)
    drawn = page.eval_on_selector_all(
        "g.node", "nodes => nodes.map(n => [n.dataset.label, n.querySelector('text')"
        ".textContent])")
    assert sorted(label for label, _ in drawn) == sorted(expected)
    assert all(text == label for label, text in drawn)
    assert sum(d.count("M") for d in page.eval_on_selector_all(
        "#edges path", "paths => paths.map(p => p.getAttribute('d'))")) == sum(
        len(deps) for deps in expected.values())


def test_a_link_to_the_page_can_name_a_target(bp, root, tmp_path, page):
    target = tmp_path / "graph.html"
    assert bp("-C", str(root), "graph", "//lib:*", "--format=html",
              f"--output_file={target}").code == 0
    page.goto(target.as_uri() + "#" + quote("//lib:stamped.txt"))
    page.wait_for_selector("body[data-state=ready]", timeout=15_000)
    assert page.text_content("#panel h2") == "//lib:stamped.txt"
    assert page.text_content("#kind") == "generated file"
    assert page.locator("#attributes").count() == 0
    page.click("#panel p a")   # the rule that writes it
    assert page.text_content("#panel h2") == "//lib:stamped"
    assert page.locator("#deps a").all_text_contents() == ["//lib:mid"]
    assert page.locator("#rdeps a").all_text_contents() == ["//lib:stamped.txt"]
    page.click("#deps a")
    page.click(f"#deps a >> text={json.dumps('//lib:base')}")
    page.click("#deps a")
    assert page.text_content("#panel h2") == "//lib:base.txt"
    assert page.text_content("#panel").count("none in this graph") == 1   # no deps
