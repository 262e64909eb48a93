"""depset(): Bazel's orders, deduplication, and a to_list() linear in the graph's size."""

from __future__ import annotations

from buildpy.core.label import Label
from buildpy.session import load_patterns, open_session

DEFS = '''
def _orders():
    out = []
    for order in ["default", "postorder", "preorder", "topological"]:
        a = depset(["a"], order = order)
        d = depset(["d"], transitive = [depset(["b"], transitive = [a], order = order),
                                        depset(["c"], transitive = [a], order = order)],
                   order = order)
        out.append(order + "=" + ",".join(d.to_list()))
    return " ".join(out)

def _diamonds(layers):
    """A chain of diamonds: without sharing, flattening would take 2**layers steps."""
    d = depset(["x0"])
    for i in range(layers):
        left = depset(["l%d" % i], transitive = [d])
        right = depset(["r%d" % i], transitive = [d])
        d = depset(["x%d" % (i + 1)], transitive = [left, right])
    return len(d.to_list())

ORDERS = _orders()
DIAMONDS = _diamonds(60)
'''


def _cmd(ws, expression: str) -> str:
    root = ws({"d/BUILD": f'load(":defs.bzl", "ORDERS", "DIAMONDS")\n'
                          f'genrule(name = "g", outs = ["o"], cmd = {expression})',
               "d/defs.bzl": DEFS})
    graph = load_patterns(open_session(str(root)), ["//d:g"]).graph
    return graph.target(Label("", "d", "g")).attrs["cmd"]


def test_orders_follow_bazel(ws):
    assert _cmd(ws, "ORDERS") == ("default=a,b,c,d postorder=a,b,c,d preorder=d,b,a,c "
                                  "topological=d,b,c,a")


def test_to_list_is_linear_in_shared_graphs(ws):
    assert _cmd(ws, "str(DIAMONDS)") == str(1 + 3 * 60)


def test_order_mismatch_and_bad_transitive(ws):
    root = ws({"d/BUILD": 'load(":bad.bzl", "X")',
               "d/bad.bzl": 'X = depset(["a"], order = "preorder", '
                            'transitive = [depset(["b"], order = "postorder")])'})
    try:
        load_patterns(open_session(str(root)), ["//d:all"])
    except Exception as error:  # noqa: BLE001
        assert "Order mismatch: cannot add a postorder depset to a preorder depset" in \
            error.render()
    else:
        raise AssertionError("no error")
