"""bp query gives Bazel 4.2's answers: every case of tests/query_compat/cases.txt.

The answers in golden.json were made by real Bazel (scripts/bazel-query-goldens, see
docs/bazel-peer.md) over the workspace in tests/query_compat/ws.
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import REPO_ROOT

HERE = REPO_ROOT / "tests" / "query_compat"
GOLDEN = {k: v for k, v in json.loads((HERE / "golden.json").read_text()).items()
          if not k.startswith("_")}
FLAGS = ("--noimplicit_deps", "--order_output=full")
# Cases whose graph-shaped outputs (graph, minrank, maxrank) differ on purpose.
GRAPH_DIFFERENCES = {
    "//build_defs:*": "Bazel draws a package_group's `includes` edge only once deps() has "
                      "walked it, though deps() follows it; bp draws the edge always",
}


def _graph_content(text: str) -> tuple[set, set]:
    """The nodes and edges of a DOT text, whatever their order (labels on edges aside)."""
    nodes, edges = set(), set()
    for line in text.splitlines():
        edge = re.fullmatch(r'\s*"(.*)" -> "(.*)"', line)
        node = re.fullmatch(r'\s*"(.*)"', line)
        if edge:
            edges.add(edge.groups())
        elif node:
            nodes.add(node[1])
    return nodes, edges


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_same_answer_as_bazel(case, bp):
    golden = GOLDEN[case]
    ws = str(HERE / "ws")
    if "error" in golden:
        result = bp("-C", ws, "query", *FLAGS, case)
        assert result.code != 0, f"Bazel failed with {golden['error']!r}; bp printed {result.out}"
        return
    result = bp("-C", ws, "query", *FLAGS, case)
    assert result.code == 0, result.err
    assert sorted(result.out.splitlines()) == golden["label"]
    for output in ("label_kind", "package"):
        if output in golden:
            out = bp("-C", ws, "query", *FLAGS, f"--output={output}", case).out
            assert sorted(out.splitlines()) == sorted(golden[output]), output
    if case in GRAPH_DIFFERENCES:
        return
    for output in ("minrank", "maxrank"):
        if output in golden:
            out = bp("-C", ws, "query", *FLAGS, f"--output={output}", case).out
            assert sorted(out.splitlines()) == sorted(golden[output]), output
    if "graph" in golden:
        out = bp("-C", ws, "query", *FLAGS, "--output=graph", case).out
        assert _graph_content(out) == _graph_content(golden["graph"])
