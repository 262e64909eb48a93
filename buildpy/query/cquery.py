"""The query environment of `bp cquery`: the configured target graph.

Nodes are ConfiguredKeys (label, configuration). Patterns name targets in the target
configuration; wildcards skip targets incompatible with the target platform.
"""

from __future__ import annotations

from typing import Iterable

from buildpy.config.configuration import BuildOptions
from buildpy.config.configured import (
    TOOLCHAIN_EDGE, ConfiguredGraph, ConfiguredKey, ConfiguredTarget,
)
from buildpy.core.errors import BpError, ErrorGroup, UserError
from buildpy.core.label import PackageId, label_sort_key
from buildpy.core.pattern import parse_pattern
from buildpy.loading.graph import GraphLoader
from buildpy.loading.loader import Loader, WorkspaceSettings
from buildpy.loading.patterns import about_the_pattern, expand_patterns
from buildpy.loading.target import IMPLICIT_TESTS
from buildpy.query.engine import QueryError, Result
from buildpy.query.syntax import Call, Word
from buildpy.query.uquery import format_attr, possible_values, tags_match, workspace_path


class ConfiguredQueryEnvironment:
    def __init__(self, loader: Loader, offset: str, options: BuildOptions,
                 settings: WorkspaceSettings, *, keep_going: bool = False,
                 implicit_deps: bool = True):
        self.loader = loader
        self.offset = offset
        self.keep_going = keep_going
        self.implicit_deps = implicit_deps
        self.graph_loader = GraphLoader(loader)
        self.configured = ConfiguredGraph(self.graph_loader, options, settings)
        self.errors: list[BpError] = []

    def node(self, key: ConfiguredKey) -> ConfiguredTarget:
        return self.configured.nodes[key]

    # ---- resolution -----------------------------------------------------------------

    def _record(self, errors: list[BpError]) -> None:
        if not errors:
            return
        if not self.keep_going:
            raise ErrorGroup.of(errors)
        self.errors.extend(e for e in errors if not any(e is seen for seen in self.errors))

    def resolve(self, word: Word) -> Result:
        is_package = lambda path: self.loader.is_package(PackageId("", path))  # noqa: E731
        try:
            pattern = parse_pattern(word.text, self.offset, is_package)
        except UserError as error:   # the word itself: shown in the query
            raise QueryError(error.message, location=word.location, hint=error.hint) from None
        try:   # loading errors keep their own place (a BUILD file's line), as in bp build
            labels, errors = expand_patterns(self.loader, [pattern], self.keep_going)
        except UserError as error:
            if not about_the_pattern(error):
                raise
            raise QueryError(error.message, location=word.location, hint=error.hint) from None
        self.errors.extend(errors)
        self._record(self.graph_loader.add(labels))
        keys = [self.configured.key(label, self.configured.top) for label in labels
                if label in self.graph_loader]
        self._record(self.configured.add(keys))
        result: Result = {}
        for key in keys:
            if self.configured.incompatibility(key) is None:
                result[key] = None
            elif not pattern.is_wildcard:
                raise self.configured.incompatible_error(key)
        return result

    def ensure(self, nodes: Iterable[ConfiguredKey]) -> None:
        self._record(self.configured.add(nodes))

    def _edges(self, pairs) -> Iterable[ConfiguredKey]:
        for other, data in pairs:
            attr = data.get("attr", "")
            if self.implicit_deps or not (attr.startswith("_") or attr == TOOLCHAIN_EDGE):
                yield other

    def successors(self, node: ConfiguredKey) -> Iterable[ConfiguredKey]:
        return self._edges(self.configured.graph.succ[node].items())

    def predecessors(self, node: ConfiguredKey) -> Iterable[ConfiguredKey]:
        return self._edges(self.configured.graph.pred[node].items())

    def universe(self) -> Iterable[ConfiguredKey]:
        return list(self.configured.graph.nodes)

    # ---- naming ------------------------------------------------------------------------

    def label(self, node: ConfiguredKey) -> str:
        return str(node.label)

    def display(self, node: ConfiguredKey) -> str:
        return str(node)

    def sort_key(self, node: ConfiguredKey) -> tuple:
        return (label_sort_key(node.label), node.config or "")

    def kind(self, node: ConfiguredKey) -> str:
        return self.node(node).target.kind_text

    def package(self, node: ConfiguredKey) -> str:
        label = node.label
        return label.package if not label.repo else f"@{label.repo}//{label.package}"

    def target(self, node: ConfiguredKey):
        return self.node(node).target

    def record(self, node: ConfiguredKey) -> dict:
        return configured_record(self, node)

    def absolute_location(self, node: ConfiguredKey) -> str:
        location = self.node(node).target.location
        return f"{workspace_path(self.loader, location)}:{location.line}:{location.column}"

    # ---- attributes -------------------------------------------------------------------

    def attr_strings(self, node: ConfiguredKey, name: str) -> list[str] | None:
        configured = self.node(node)
        if name not in configured.attrs or configured.attrs[name] is None:
            return None
        value = configured.attrs[name]
        if name == "tags":
            value = tuple(sorted(value))
        return [format_attr(v) for v in possible_values(value)]

    def attr_nodes(self, node: ConfiguredKey, name: str) -> list[ConfiguredKey] | None:
        return [dep for attr, dep in self.node(node).deps if attr == name]

    def tests(self, nodes: Iterable[ConfiguredKey]) -> Result:
        result: Result = {}
        stack, seen = list(nodes), set()
        while stack:
            key = stack.pop()
            if key in seen:
                continue
            seen.add(key)
            configured = self.node(key)
            if configured.target.is_test:
                result[key] = None
            elif configured.target.kind == "test_suite":
                wanted = [t for t in configured.target.attrs.get("tags", ()) if t != "manual"]
                stack += [dep for attr, dep in configured.deps
                          if attr in ("tests", IMPLICIT_TESTS)
                          and (self.node(dep).target.kind == "test_suite"
                               or tags_match(self.node(dep).target, wanted))]
        return dict.fromkeys(sorted(result, key=self.sort_key))

    def _unavailable(self, function: str):
        raise QueryError(f"{function}() is not available in bp cquery",
                         hint="ask it of the unconfigured graph with bp query")

    def buildfiles(self, nodes, with_build_files: bool) -> Result:
        self._unavailable("buildfiles" if with_build_files else "loadfiles")

    def rbuildfiles(self, paths) -> Result:
        self._unavailable("rbuildfiles")

    def siblings(self, nodes) -> Result:
        self._unavailable("siblings")

    def visible(self, node, viewer) -> bool:
        self._unavailable("visible")

    def config(self, nodes: Result, configuration: str, call: Call) -> Result:
        if configuration == "null":
            config = None
        elif configuration == "target":
            config = self.configured.top
        elif configuration in ("exec", "host"):
            config = self.configured.exec_configuration(self.configured.host)
        else:
            try:
                config = self.configured.configuration(configuration)
            except UserError as error:
                raise QueryError(error.message, location=call.location,
                                 hint=error.hint) from None
        keys = [self.configured.key(node.label, config) for node in nodes]
        self.ensure(keys)
        return dict.fromkeys(keys)


def configured_record(env: ConfiguredQueryEnvironment, node: ConfiguredKey) -> dict:
    """A configured target as plain data (--output=json, and `target` in --output=starlark)."""
    from buildpy.query.output import json_value

    configured = env.node(node)
    data = {"label": str(node.label), "configuration": node.config,
            "kind": configured.target.kind_text,
            "location": str(configured.target.location),
            "attributes": {k: json_value(v) for k, v in sorted(configured.attrs.items())
                           if not k.startswith("$")},
            "deps": [str(dep) for _, dep in configured.deps],
            "toolchains": {str(t): str(k) for t, k in configured.toolchains}}
    if configured.exec_platform is not None:
        data["execution_platform"] = str(configured.exec_platform)
    return data


def build_options(env: ConfiguredQueryEnvironment, node: ConfiguredKey) -> dict:
    configuration = env.node(node).configuration
    return configuration.settings() if configuration is not None else {}
