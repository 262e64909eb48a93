"""`bp graph`: a query result's dependency graph as data, and as one self-contained HTML page.

Knows the target graph only through the query environment (labels, kinds, explicit
attributes, edges within the result); lays nothing out: the page's own script does that
in the browser. DOT output is `output.graph_dot`, shared with `bp query --output=graph`.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from buildpy.query.output import generator_data, json_value

_TEMPLATE = "graphview.html"
_DATA_SLOT = "/*BP_GRAPH_DATA*/"


def graph_data(env, nodes: list, expression: str) -> dict[str, Any]:
    """A query's result (`nodes`) as plain JSON data: one entry per node, in order, with
    its kind, location, explicit attributes and its dependencies among `nodes`, as
    indices into the list."""
    index = {node: i for i, node in enumerate(nodes)}
    entries = []
    edges = 0
    for node in nodes:
        target = env.target(node)
        deps = sorted({index[dep] for dep in env.successors(node) if dep in index})
        edges += len(deps)
        entry: dict[str, Any] = {"label": env.display(node), "kind": env.kind(node),
                                 "location": str(target.location), "deps": deps}
        if target.is_rule:
            entry["rule"] = target.kind
            entry["attrs"] = {name: json_value(target.attrs[name])
                              for name in sorted(target.explicit - {"name"})}
            if target.generator is not None:
                entry["generator"] = generator_data(target.generator)
        elif target.generating_rule is not None:
            entry["generating_rule"] = str(target.generating_rule)
        entries.append(entry)
    return {"expression": expression, "nodes": entries, "edges": edges}


def script_json(data: Any) -> str:
    """`data` as JSON that can sit inside a <script> element: '<', '>' and '&' are
    written as \\u escapes, so no label can close the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def html_page(data: dict[str, Any]) -> str:
    """One HTML file holding the page's script, its styles and `data`: opens offline."""
    template = resources.files(__package__).joinpath(_TEMPLATE).read_text(encoding="utf-8")
    before, slot, after = template.partition(_DATA_SLOT)
    assert slot and _DATA_SLOT not in after, f"{_TEMPLATE} needs exactly one data slot"
    return before + script_json(data) + after
