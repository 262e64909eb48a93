"""Prints query results: --output formats and --order_output orders.

Computes nothing about the graph beyond what a format needs (ranks, factored nodes).
"""

from __future__ import annotations

import json
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, TextIO

from buildpy.core.label import Label
from buildpy.lang.values import Select, SelectorList
from buildpy.loading.target import GENERATED_FILE, PACKAGE_GROUP, SOURCE_FILE, Target
from buildpy.query.engine import Result

if TYPE_CHECKING:   # networkx is imported only where a format or an order needs the graph:
    import networkx as nx   # (a default `bp query //...` prints sorted labels, without it)

FORMATS = ("label", "label_kind", "build", "graph", "json", "streamed_jsonproto", "minrank",
           "maxrank", "package", "location")
ORDERS = ("no", "deps", "auto", "full")


def ordered(env, result: Result, order: str, path_result: bool) -> list:
    """The nodes in the order --order_output asks for."""
    if order == "no" or (order == "auto" and path_result):
        return list(result)
    if order == "auto":
        return sorted(result, key=_key(env))
    import networkx as nx

    graph = _subgraph(env, result)
    try:
        return list(nx.lexicographical_topological_sort(graph, key=env.display))
    except nx.NetworkXUnfeasible:  # a cycle: fall back to a stable order
        return sorted(result, key=_key(env))


def _key(env) -> Callable:
    return env.sort_key


def _subgraph(env, result: Result) -> nx.DiGraph:
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(result)
    for node in result:
        graph.add_edges_from((node, dep) for dep in env.successors(node) if dep in result)
    return graph


def write(env, nodes: list, result: Result, output: str, out: TextIO,
          factored: bool = True) -> None:
    if output == "label":
        out.writelines(f"{env.display(n)}\n" for n in nodes)
    elif output == "label_kind":
        out.writelines(f"{env.kind(n)} {env.display(n)}\n" for n in nodes)
    elif output == "package":
        packages = sorted({env.package(n) for n in nodes}, key=lambda p: p.split("/"))
        out.writelines(f"{p}\n" for p in packages)
    elif output == "location":
        out.writelines(f"{env.absolute_location(n)}: {env.kind(n)} {env.display(n)}\n"
                       for n in nodes)
    elif output in ("minrank", "maxrank"):
        ranks = _ranks(env, result, maximum=output == "maxrank")
        for node in sorted(nodes, key=lambda n: ranks[n]):
            out.write(f"{ranks[node]} {env.display(node)}\n")
    elif output == "graph":
        out.write(graph_dot(env, nodes, result, factored))
    elif output == "build":
        out.write("\n".join(build_text(env, n) for n in nodes))
    elif output == "json":
        json.dump([env.record(n) for n in nodes], out, indent=2)
        out.write("\n")
    elif output == "streamed_jsonproto":
        for node in nodes:
            out.write(json.dumps(proto_record(env, node), separators=(",", ":")) + "\n")
    else:
        raise AssertionError(output)


# ---- ranks and graphs -----------------------------------------------------------------

def _ranks(env, result: Result, maximum: bool) -> dict:
    """Rank of every node: its shortest (or longest) distance from a root of the result."""
    import networkx as nx

    graph = _subgraph(env, result)
    condensed = nx.condensation(graph)
    members = condensed.graph["mapping"]
    rank: dict[int, int] = {}
    if maximum:
        for component in nx.topological_sort(condensed):
            parents = list(condensed.predecessors(component))
            rank[component] = 1 + max(rank[p] for p in parents) if parents else 0
    else:
        queue = deque(c for c in condensed if condensed.in_degree(c) == 0)
        rank.update((c, 0) for c in queue)
        while queue:
            component = queue.popleft()
            for child in condensed.successors(component):
                if child not in rank:
                    rank[child] = rank[component] + 1
                    queue.append(child)
    return {node: rank[members[node]] for node in result}


def graph_dot(env, nodes: list, result: Result, factored: bool) -> str:
    """Graphviz DOT of the result's subgraph; nodes with equal neighbours merge if factored."""
    graph = _subgraph(env, result)
    groups: dict[Any, list] = {}
    for node in nodes:
        key = (frozenset(graph.predecessors(node)), frozenset(graph.successors(node))) \
            if factored else node
        groups.setdefault(key, []).append(node)
    group_of = {}
    names = {}
    for key, members in groups.items():
        text = "\\n".join(_dot_escape(env.display(m)) for m in sorted(members, key=_key(env)))
        for member in members:
            group_of[member] = key
        names[key] = text
    lines = ["digraph mygraph {", "  node [shape=box];"]
    for key, members in groups.items():
        lines.append(f'  "{names[key]}"')
        targets = {group_of[dep] for dep in graph.successors(members[0])}
        for other in sorted(targets, key=lambda k: names[k]):
            lines.append(f'  "{names[key]}" -> "{names[other]}"')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_escape(text: str) -> str:
    """Text for inside a DOT quoted string (a target name may hold '"')."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


# ---- targets as text and records ------------------------------------------------------

def starlark_text(value: Any) -> str:
    """An attribute value written back as Starlark."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Label):
        return json.dumps(str(value))
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(starlark_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{starlark_text(k)}: {starlark_text(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, Select):
        return "select(" + starlark_text(dict(value.conditions)) + ")"
    if isinstance(value, SelectorList):
        return " + ".join(starlark_text(p) for p in value.parts)
    if value is None:
        return "None"
    return str(value)


def build_text(env, node) -> str:
    target: Target = env.target(node)
    location = env.absolute_location(node)
    if not target.is_rule:
        return f"# {location}\n# {target.kind_text} {target.label}\n"
    lines = [f"# {location}", f"{target.kind}("]
    lines.append(f"  name = {starlark_text(target.label.name)},")
    if target.generator is not None:
        lines.append(f"  generator_name = {starlark_text(target.generator.name)},")
        lines.append(f"  generator_function = {starlark_text(target.generator.function)},")
        lines.append(f"  generator_location = {starlark_text(str(target.generator.location))},")
    for name in sorted(target.explicit - {"name"}):
        lines.append(f"  {name} = {starlark_text(target.attrs[name])},")
    lines.append(")")
    return "\n".join(lines) + "\n"


def json_value(value: Any) -> Any:
    if isinstance(value, Label):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(json_value(k)): json_value(v) for k, v in value.items()}
    if isinstance(value, Select):
        return {"select": {str(k): json_value(v) for k, v in value.conditions},
                "no_match_error": value.no_match_error}
    if isinstance(value, SelectorList):
        return {"concat": [json_value(p) for p in value.parts]}
    return value


def generator_data(generator) -> dict:
    """The macro that made a target, as JSON: its name, function and location."""
    return {"name": generator.name, "function": generator.function,
            "location": str(generator.location)}


def record(env, node) -> dict:
    """A target as a plain JSON object (--output=json)."""
    target: Target = env.target(node)
    data: dict[str, Any] = {"label": str(target.label), "kind": target.kind_text,
                            "location": str(target.location)}
    if target.is_rule:
        data["rule_class"] = target.kind
        data["attributes"] = {name: json_value(target.attrs[name])
                              for name in sorted(target.attrs)}
        data["explicit"] = sorted(target.explicit)
        data["deps"] = _dependency_labels(target)
        if target.generator is not None:
            data["generator"] = generator_data(target.generator)
    elif target.generating_rule is not None:
        data["generating_rule"] = str(target.generating_rule)
    elif target.kind == PACKAGE_GROUP:
        data["packages"] = list(target.attrs["packages"])
        data["includes"] = [str(i) for i in target.attrs["includes"]]
    return data


_PROTO_TYPES = {
    "string": "STRING", "string_list": "STRING_LIST", "int": "INTEGER",
    "int_list": "INTEGER_LIST", "bool": "BOOLEAN", "label": "LABEL",
    "label_list": "LABEL_LIST", "output": "OUTPUT", "output_list": "OUTPUT_LIST",
    "string_dict": "STRING_DICT", "string_list_dict": "STRING_LIST_DICT",
    "label_keyed_string_dict": "LABEL_KEYED_STRING_DICT",
    "string_keyed_label_dict": "STRING_KEYED_LABEL_DICT",
}


def proto_record(env, node) -> dict:
    """A target in the shape of Bazel's streamed_jsonproto output (one JSON per line)."""
    target: Target = env.target(node)
    location = env.absolute_location(node)
    if target.kind == SOURCE_FILE:
        return {"type": "SOURCE_FILE",
                "sourceFile": {"name": str(target.label), "location": location}}
    if target.kind == GENERATED_FILE:
        return {"type": "GENERATED_FILE",
                "generatedFile": {"name": str(target.label), "location": location,
                                  "generatingRule": str(target.generating_rule)}}
    if target.kind == PACKAGE_GROUP:
        return {"type": "PACKAGE_GROUP",
                "packageGroup": {"name": str(target.label),
                                 "containedPackage": list(target.attrs["packages"]),
                                 "includedPackageGroup": [str(i) for i in
                                                          target.attrs["includes"]]}}
    attributes = []
    for name, spec in sorted(target.rule_class.attrs.items()):
        value = target.attrs.get(name)
        entry = {"name": name, "type": _PROTO_TYPES[spec.type],
                 "explicitlySpecified": name in target.explicit}
        entry["value"] = json_value(value)
        attributes.append(entry)
    outputs = [str(label) for name in target.rule_class.output_attrs
               for label in _labels(target.attrs.get(name))]
    rule = {"name": str(target.label), "ruleClass": target.kind, "location": location,
            "attribute": attributes,
            "ruleInput": _dependency_labels(target),
            "ruleOutput": outputs}
    return {"type": "RULE", "rule": rule}


def _dependency_labels(target: Target) -> list[str]:
    return [str(dep) for dep in dict.fromkeys(dep for _, dep in target.dependencies())]


def _labels(value: Any) -> Iterable[Label]:
    if isinstance(value, Label):
        yield value
    elif isinstance(value, (tuple, list)):
        yield from value
