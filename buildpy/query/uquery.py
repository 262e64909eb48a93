"""The query environment of `bp query`: the unconfigured target graph, loaded on demand.

Adapts loading (patterns, packages, the growing target graph) to the evaluator's
QueryEnvironment. Nodes are Labels. Knows nothing of configurations or actions.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import Any, Iterable, Mapping

from buildpy.core.errors import BpError, ErrorGroup, Location, UserError
from buildpy.core.label import Label, LabelError, PackageId, label_sort_key, parse_label
from buildpy.config.selects import concat
from buildpy.core.pattern import parse_pattern
from buildpy.lang.values import Select, SelectorList
from buildpy.loading.builder import source_path
from buildpy.loading.loader import Loader
from buildpy.loading.patterns import about_the_pattern, expand_patterns, packages_below
from buildpy.loading.target import IMPLICIT_TESTS, SOURCE_FILE, Target, labels_in
from buildpy.query.engine import QueryError, Result
from buildpy.query.syntax import Call, Word

_SIZES = ("small", "medium", "large", "enormous")
_MAX_COMBINATIONS = 256


class TargetQueryEnvironment:
    def __init__(self, loader: Loader, offset: str = "", *, keep_going: bool = False,
                 implicit_deps: bool = True, universe_scope: tuple[str, ...] = ()):
        self.loader = loader
        self.offset = offset
        self.keep_going = keep_going
        self.implicit_deps = implicit_deps
        self.universe_scope = universe_scope
        self.errors: list[BpError] = []
        self._extra: dict[Label, Target] = {}   # .bzl files named by buildfiles()

    @functools.cached_property
    def graph_loader(self):
        """The target graph, made when a query first needs edges or targets: a query
        that only expands patterns (`bp query //...`) needs neither it nor networkx."""
        from buildpy.loading.graph import GraphLoader

        return GraphLoader(self.loader, graph=True)

    # ---- nodes --------------------------------------------------------------------

    def target(self, label: Label) -> Target:
        graph = self.graph_loader.graph
        if label in graph:
            return graph.nodes[label]["target"]
        extra = self._extra.get(label)
        return extra if extra is not None else self.graph_loader.lookup(label)

    def label(self, node: Label) -> str:
        return str(node)

    display = label

    def sort_key(self, node: Label) -> tuple:
        return label_sort_key(node)

    def kind(self, node: Label) -> str:
        return self.target(node).kind_text

    def package(self, node: Label) -> str:
        return node.package if not node.repo else f"@{node.repo}//{node.package}"

    def record(self, node: Label) -> dict:
        from buildpy.query.output import record
        return record(self, node)

    def absolute_location(self, node: Label) -> str:
        """`/abs/path/BUILD:line:col`, as Bazel prints locations."""
        location = self.target(node).location
        return f"{workspace_path(self.loader, location)}:{location.line}:{location.column}"

    # ---- resolution and loading -----------------------------------------------------

    def _is_package(self, path: str) -> bool:
        return self.loader.is_package(PackageId("", path))

    def resolve(self, word: Word) -> Result:
        try:
            pattern = parse_pattern(word.text, self.offset, self._is_package)
        except UserError as error:   # the word itself: shown in the query
            raise QueryError(error.message, location=word.location, hint=error.hint) from None
        try:   # loading errors keep their own place (a BUILD file's line), as in bp build
            labels, errors = expand_patterns(self.loader, [pattern], self.keep_going)
        except UserError as error:
            if not about_the_pattern(error):
                raise
            raise QueryError(error.message, location=word.location, hint=error.hint) from None
        self.errors.extend(errors)
        return dict.fromkeys(labels)

    def ensure(self, nodes: Iterable[Label]) -> None:
        errors = self.graph_loader.add(n for n in nodes if n not in self._extra)
        if not errors:
            return
        if not self.keep_going:
            raise ErrorGroup.of(errors)
        self.errors.extend(e for e in errors if not any(e is seen for seen in self.errors))

    def _edges(self, pairs) -> Iterable[Label]:
        for other, data in pairs:
            if self.implicit_deps or not data.get("attr", "").startswith("_"):
                yield other

    def successors(self, node: Label) -> Iterable[Label]:
        graph = self.graph_loader.graph
        if node not in graph:
            return ()
        return self._edges(graph.succ[node].items())

    def predecessors(self, node: Label) -> Iterable[Label]:
        graph = self.graph_loader.graph
        if node not in graph:
            return ()
        return self._edges(graph.pred[node].items())

    def universe(self) -> Iterable[Label]:
        if self.universe_scope:
            roots: Result = {}
            for text in self.universe_scope:
                roots.update(self.resolve(Word(text, Location("--universe_scope"))))
            self.ensure(roots)
        return list(self.graph_loader.graph.nodes)

    # ---- attributes -------------------------------------------------------------------

    def attr_strings(self, node: Label, name: str) -> list[str] | None:
        target = self.target(node)
        if not target.is_rule or name not in target.attrs:
            return None
        values = [v for v in possible_values(target.attrs[name]) if v is not None]
        if name == "tags":  # Bazel keeps tags as a sorted set
            values = [tuple(sorted(v)) for v in values]
        return [format_attr(v) for v in values]

    def attr_nodes(self, node: Label, name: str) -> list[Label] | None:
        target = self.target(node)
        if not target.is_rule or name not in target.rule_class.attrs:
            return None
        spec = target.rule_class.attrs[name]
        if not (spec.is_label or spec.is_output) or (
                spec.nodep and name not in target.explicit):
            return []  # Bazel: labels(visibility, x) names only a visibility written out
        labels = list(dict.fromkeys(labels_in(target.attrs.get(name), conditions=False)))
        if spec.is_label:
            self.ensure(labels)
        return labels

    # ---- package-level functions ----------------------------------------------------

    def tests(self, nodes: Iterable[Label]) -> Result:
        result: Result = {}
        seen: set[Label] = set()
        for node in nodes:
            self._collect_tests(node, result, seen)
        return result

    def _collect_tests(self, node: Label, result: Result, seen: set[Label]) -> None:
        stack = [node]   # test suites of test suites, depth first, in the order written
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            target = self.target(node)
            if target.is_test:
                result[node] = None
            elif target.kind == "test_suite":
                stack.extend(reversed(self._suite_members(target)))

    def _suite_members(self, suite: Target) -> list[Label]:
        candidates = list(suite.attrs.get("tests") or suite.attrs.get(IMPLICIT_TESTS, ()))
        self.ensure(candidates)
        wanted = [t for t in suite.attrs.get("tags", ()) if t != "manual"]
        return [c for c in candidates if self.target(c).kind == "test_suite"
                or tags_match(self.target(c), wanted)]

    def buildfiles(self, nodes: Iterable[Label], with_build_files: bool) -> Result:
        result: Result = {}
        for package_id in dict.fromkeys(n.package_id for n in nodes):
            package = self.graph_loader.package(package_id)
            if with_build_files:
                result[package.build_label] = None
            for text in package.loads:
                label = self._file_target(text)
                result[label] = None
                if with_build_files and self.loader.is_package(label.package_id):
                    result[self.graph_loader.package(label.package_id).build_label] = None
        return result

    def _file_target(self, text: str) -> Label:
        label = parse_label(text)
        package = None
        if self.loader.is_package(label.package_id):
            package = self.graph_loader.package(label.package_id)
        if package is None or label.name not in package.targets:
            self._extra[label] = Target(label=label, kind=SOURCE_FILE,
                                        location=Location(source_path(label), 1, 1))
        return label

    def rbuildfiles(self, paths: list[str]) -> Result:
        wanted = set()
        for path in paths:
            try:
                label = parse_label(path) if path.startswith(("//", "@")) else None
            except LabelError as error:
                raise UserError(error.message, hint=error.hint) from None
            wanted.add(f"{label.package}/{label.name}".lstrip("/") if label else path)
        if self.universe_scope:
            names = []
            for text in self.universe_scope:
                pattern = parse_pattern(text, self.offset, self._is_package)
                names += packages_below(self.loader, pattern.repo, pattern.package)
        else:
            names = packages_below(self.loader, "", "")
        result: Result = {}
        for name in names:
            package = self.graph_loader.package(PackageId("", name))
            files = {package.build_file} | {_path_of(text) for text in package.loads}
            if files & wanted:
                result[package.build_label] = None
        return result

    def siblings(self, nodes: Iterable[Label]) -> Result:
        result: Result = {}
        for package_id in dict.fromkeys(n.package_id for n in nodes):
            package = self.graph_loader.package(package_id)
            result.update(dict.fromkeys(t.label for t in package.targets.values()))
        return result

    def visible(self, node: Label, viewer: Label) -> bool:
        return self.graph_loader.is_visible(self.target(node), viewer.package_id)

    def config(self, nodes: Result, configuration: str, call: Call) -> Result:
        raise QueryError("config() is only available in bp cquery", location=call.location,
                         hint="run the same expression with bp cquery")


def _path_of(text: str) -> str:
    return source_path(parse_label(text))


def tags_match(test: Target, wanted: list[str]) -> bool:
    """Bazel's test_suite filter: all positive tags present, no negative tag present."""
    tags = set(test.attrs.get("tags", ()))
    size = test.attrs.get("size")
    if size in _SIZES:
        tags.add(size)
    for tag in wanted:
        if tag.startswith("-"):
            if tag[1:] in tags:
                return False
        elif tag.lstrip("+") not in tags:
            return False
    return True


def possible_values(value: Any) -> list[Any]:
    """Every value a configurable attribute may take (each select branch combination)."""
    if isinstance(value, Select):
        return [branch for _, branch in value.conditions]
    if not isinstance(value, SelectorList):
        return [value]
    choices = [possible_values(part) for part in value.parts]
    return [concat(list(combination)) for combination in
            itertools.islice(itertools.product(*choices), _MAX_COMBINATIONS)]


def format_attr(value: Any) -> str:
    """An attribute value as text, the way Bazel's attr() sees it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_attr(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{format_attr(k)}={format_attr(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    return str(value)


def workspace_path(loader: Loader, location: Location) -> str:
    """A location's file as an absolute path (for --output=location)."""
    if location.path.startswith("@"):
        label = parse_label(location.path)
        return str(loader.repos[label.repo] / label.package / label.name)
    path = Path(location.path)
    return str(path if path.is_absolute() else loader.workspace.root / path)
