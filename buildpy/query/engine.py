"""Evaluates query expressions over any graph that implements QueryEnvironment.

The functions of the query language live here, written once against a small interface;
thin adapters give them the target graph (query), the configured graph (cquery) or the
action graph (aquery). Computes result sets only; printing is output.py's job.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Callable, Generator, Generic, Hashable, Iterable, Protocol, TypeVar

from buildpy.core.errors import BpError, UserError
from buildpy.query.syntax import (
    BinaryOp, Call, Expr, Let, SetLiteral, Var, Word, trampoline,
)

N = TypeVar("N", bound=Hashable)
Result = dict  # an ordered set: node -> None


class QueryEnvironment(Protocol[N]):
    """What the evaluator needs from a graph. Nodes are hashable and ordered."""

    def resolve(self, word: Word) -> Result: ...
    def ensure(self, nodes: Iterable[N]) -> None: ...
    def successors(self, node: N) -> Iterable[N]: ...
    def predecessors(self, node: N) -> Iterable[N]: ...
    def universe(self) -> Iterable[N]: ...
    def label(self, node: N) -> str: ...
    def kind(self, node: N) -> str: ...
    def package(self, node: N) -> str: ...
    def attr_strings(self, node: N, name: str) -> list[str] | None: ...
    def attr_nodes(self, node: N, name: str) -> list[N] | None: ...
    def tests(self, nodes: Iterable[N]) -> Result: ...
    def buildfiles(self, nodes: Iterable[N], with_build_files: bool) -> Result: ...
    def rbuildfiles(self, paths: list[str]) -> Result: ...
    def siblings(self, nodes: Iterable[N]) -> Result: ...
    def visible(self, node: N, viewer: N) -> bool: ...
    def config(self, nodes: Result, configuration: str, call: Call) -> Result: ...


class QueryError(UserError):
    pass


def _error(node, message: str, hint: str | None = None) -> QueryError:
    return QueryError(message, location=node.location, hint=hint)


class Evaluator(Generic[N]):
    """Evaluates one expression; with keep_going, failing words count as empty sets."""

    def __init__(self, env: QueryEnvironment[N], keep_going: bool = False):
        self.env = env
        self.keep_going = keep_going
        self.errors: list[BpError] = []

    def evaluate(self, expr: Expr) -> Result:
        return trampoline(self._eval(expr, {}))

    def _eval(self, expr: Expr, scope: dict[str, Result]) -> Generator:
        """A generator that yields the evaluation of each subexpression and receives its
        result (see `trampoline`): queries nested thousands deep need no recursion."""
        if isinstance(expr, Word):
            return self._word(expr)
        if isinstance(expr, SetLiteral):
            result: Result = {}
            for word in expr.words:
                result.update(self._word(word))
            return result
        if isinstance(expr, Var):
            if expr.name not in scope:
                raise _error(expr, f"undefined variable '${expr.name}'",
                             hint=f"bind it first: let {expr.name} = ... in ...")
            return scope[expr.name]
        if isinstance(expr, Let):
            value = yield self._eval(expr.value, scope)
            return (yield self._eval(expr.body, {**scope, expr.name: value}))
        if isinstance(expr, BinaryOp):
            left = yield self._eval(expr.left, scope)
            right = yield self._eval(expr.right, scope)
            if expr.op == "union":
                return {**left, **right}
            if expr.op == "intersect":
                return {n: None for n in left if n in right}
            return {n: None for n in left if n not in right}
        if isinstance(expr, Call):
            args = []
            for arg in expr.args:
                args.append(arg if isinstance(arg, (str, int)) else
                            (yield self._eval(arg, scope)))
            function: Callable = getattr(self, f"_fn_{expr.function}")
            return function(expr, *args)
        raise AssertionError(expr)

    def _word(self, word: Word) -> Result:
        try:
            return self.env.resolve(word)
        except BpError as error:
            if not self.keep_going:
                raise
            self.errors.append(error)
            return {}

    # ---- graph traversal ------------------------------------------------------------

    def _closure(self, start: Iterable[N], step: Callable[[N], Iterable[N]],
                 depth: int | None = None, within: Result | None = None,
                 strict: bool = False) -> Result | None:
        """The nodes `step` reaches from `start` (start included), breadth first, at most
        `depth` steps away, only through nodes `within`; with `strict`, None as soon as
        it meets a node outside `within`."""
        result: Result = {}
        queue = deque()
        for node in start:
            if node not in result:
                if within is None or node in within:
                    result[node] = None
                    queue.append((node, 0))
                elif strict:
                    return None
        while queue:
            node, distance = queue.popleft()
            if depth is not None and distance >= depth:
                continue
            for other in step(node):
                if other not in result:
                    if within is None or other in within:
                        result[other] = None
                        queue.append((other, distance + 1))
                    elif strict:
                        return None
        return result

    def _deps(self, nodes: Iterable[N], depth: int | None = None) -> Result:
        nodes = list(nodes)
        self.env.ensure(nodes)
        return self._closure(nodes, self.env.successors, depth)

    @staticmethod
    def _depth(call: Call, depth: int | None) -> int | None:
        if depth is not None and depth < 0:
            raise _error(call, f"{call.function}() depth must not be negative, got {depth}")
        return depth

    def _fn_deps(self, call: Call, x: Result, depth: int | None = None) -> Result:
        return self._deps(x, self._depth(call, depth))

    def _fn_rdeps(self, call: Call, universe: Result, x: Result,
                  depth: int | None = None) -> Result:
        """Those of x's reverse dependencies that are in the universe's transitive closure.

        Every node on a path of dependencies from a node of that closure is in it too, so
        a walk back from x that meets only nodes of the universe itself gives the answer
        (the common `rdeps(//..., x)`) without the closure; it is made only when the walk
        meets others (test_query.py: test_rdeps_is_its_definition)."""
        depth = self._depth(call, depth)
        self.env.ensure(universe)
        result = self._closure(x, self.env.predecessors, depth, universe, strict=True)
        if result is not None:
            return result
        within = self._closure(universe, self.env.successors)
        return self._closure(x, self.env.predecessors, depth, within)

    def _fn_allrdeps(self, call: Call, x: Result, depth: int | None = None) -> Result:
        within = dict.fromkeys(self.env.universe())
        return self._closure(x, self.env.predecessors, self._depth(call, depth), within)

    def _fn_somepath(self, call: Call, start: Result, end: Result) -> Result:
        self._deps(start)
        parents: dict = {}
        queue = deque()
        for node in start:
            if node not in parents:
                parents[node] = None
                queue.append(node)
        while queue:
            node = queue.popleft()
            if node in end:
                path = []
                while node is not None:
                    path.append(node)
                    node = parents[node]
                return dict.fromkeys(reversed(path))
            for other in self.env.successors(node):
                if other not in parents:
                    parents[other] = node
                    queue.append(other)
        return {}

    def _fn_allpaths(self, call: Call, start: Result, end: Result) -> Result:
        forward = self._deps(start)
        backward = self._closure((n for n in end if n in forward), self.env.predecessors,
                                 within=forward)
        return {n: None for n in forward if n in backward}

    # ---- filters --------------------------------------------------------------------

    def _regex(self, call: Call, pattern: str) -> re.Pattern[str]:
        try:
            return re.compile(pattern)
        except (re.error, OverflowError) as e:   # OverflowError: a{99999999999}
            raise QueryError(f"invalid regular expression '{pattern}' in {call.function}(): "
                             f"{e}", location=call.location_of(pattern)) from None

    def _fn_kind(self, call: Call, pattern: str, x: Result) -> Result:
        regex = self._regex(call, pattern)
        return {n: None for n in x if regex.search(self.env.kind(n))}

    def _fn_filter(self, call: Call, pattern: str, x: Result) -> Result:
        regex = self._regex(call, pattern)
        return {n: None for n in x if regex.search(self.env.label(n))}

    def _fn_attr(self, call: Call, name: str, pattern: str, x: Result) -> Result:
        regex = self._regex(call, pattern)
        result: Result = {}
        for node in x:
            values = self.env.attr_strings(node, name)
            if values is not None and any(regex.search(v) for v in values):
                result[node] = None
        return result

    def _fn_labels(self, call: Call, name: str, x: Result) -> Result:
        result: Result = {}
        for node in x:
            result.update(dict.fromkeys(self.env.attr_nodes(node, name) or ()))
        return result

    def _fn_tests(self, call: Call, x: Result) -> Result:
        return self.env.tests(x)

    def _fn_buildfiles(self, call: Call, x: Result) -> Result:
        return self.env.buildfiles(x, with_build_files=True)

    def _fn_loadfiles(self, call: Call, x: Result) -> Result:
        return self.env.buildfiles(x, with_build_files=False)

    def _fn_rbuildfiles(self, call: Call, *paths: str) -> Result:
        return self.env.rbuildfiles(list(paths))

    def _fn_siblings(self, call: Call, x: Result) -> Result:
        return self.env.siblings(x)

    def _fn_same_pkg_direct_rdeps(self, call: Call, x: Result) -> Result:
        candidates = self.env.siblings(x)
        self.env.ensure(candidates)
        return {n: None for n in candidates
                if any(dep in x for dep in self.env.successors(n))}

    def _fn_visible(self, call: Call, viewers: Result, x: Result) -> Result:
        return {n: None for n in x if all(self.env.visible(n, v) for v in viewers)}

    def _fn_some(self, call: Call, x: Result, count: int = 1) -> Result:
        if count < 1:
            raise _error(call, f"some() count must be at least 1, got {count}")
        if not x:
            raise _error(call, "argument set of some() is empty",
                         hint="some() needs at least one element to pick")
        return dict.fromkeys(sorted(x, key=self.env.label)[:count])

    def _fn_subquery(self, call: Call, x: Result) -> Result:
        return x

    def _fn_config(self, call: Call, x: Result, configuration: str) -> Result:
        return self.env.config(x, configuration, call)

    def _actions(self, call: Call, field: str, pattern: str, x: Result) -> Result:
        actions = getattr(self.env, "action_filter", None)
        if actions is None:
            raise _error(call, f"{call.function}() is only available in bp aquery",
                         hint="it filters actions: bp aquery "
                              f"'{call.function}(\"{pattern}\", ...)'")
        return actions(field, self._regex(call, pattern), x)

    def _fn_inputs(self, call: Call, pattern: str, x: Result) -> Result:
        return self._actions(call, "inputs", pattern, x)

    def _fn_outputs(self, call: Call, pattern: str, x: Result) -> Result:
        return self._actions(call, "outputs", pattern, x)

    def _fn_mnemonic(self, call: Call, pattern: str, x: Result) -> Result:
        return self._actions(call, "mnemonic", pattern, x)

    def _fn_emit(self, call: Call, what: str, x: Result) -> Result:
        if not getattr(self.env, "emits", None) or what not in self.env.emits:
            known = ", ".join(getattr(self.env, "emits", ()) or ())
            raise _error(call, f"emit '{what}' is not known here" +
                         (f"; choose one of: {known}" if known else
                          " (emit is a stage of bp aquery pipelines)"))
        return x


def evaluate(env: QueryEnvironment, expr: Expr, keep_going: bool = False
             ) -> tuple[Result, list[BpError]]:
    evaluator = Evaluator(env, keep_going)
    return evaluator.evaluate(expr), evaluator.errors
