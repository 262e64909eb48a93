"""Targets and packages: the values loading produces (frozen, shared by later phases).

Knows their shape and the dependency edges their attributes imply; not how they are made.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Iterator, Mapping

from buildpy.core.errors import Location
from buildpy.core.label import Label, PackageId
from buildpy.lang.values import Select, SelectorList
from buildpy.loading.rule_class import RuleClass

SOURCE_FILE = "source file"
GENERATED_FILE = "generated file"
PACKAGE_GROUP = "package group"
_EMPTY: Mapping[str, Any] = MappingProxyType({})

# The tests a test_suite with no `tests` stands for: its package's non-manual tests.
IMPLICIT_TESTS = "$implicit_tests"
# The edge from a target to the conditions of its select()s.
CONDITION_EDGE = "$config_setting"
DEFAULT_CONDITION = Label("", "conditions", "default")
_VISIBILITY_NAMES = ("__pkg__", "__subpackages__")

PUBLIC = Label("", "visibility", "public")
PRIVATE = Label("", "visibility", "private")


@dataclass(frozen=True)
class Generator:
    """The macro that created a target: its function, its `name`, its call in BUILD."""

    function: str
    name: str
    location: Location


@dataclass(frozen=True)
class Target:
    """A rule, a source file, a generated file or a package group."""

    label: Label
    kind: str                      # rule kind (`genrule`) or one of the file/group kinds
    location: Location
    attrs: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)  # rules: all, defaults too
    explicit: frozenset[str] = frozenset()  # attributes set in the BUILD file
    rule_class: RuleClass | None = None
    generator: Generator | None = None
    generating_rule: Label | None = None   # generated files only
    visibility: tuple[Label, ...] = (PRIVATE,)
    # A source file that no exports_files() names: other packages may still use it
    # (Bazel 4.2's legacy behaviour), although `visibility` says otherwise.
    implicitly_exported: bool = False

    @property
    def is_rule(self) -> bool:
        return self.rule_class is not None

    @property
    def kind_text(self) -> str:
        """The kind as Bazel's query prints it: `genrule rule`, `source file`, ..."""
        return f"{self.kind} rule" if self.is_rule else self.kind

    @property
    def is_test(self) -> bool:
        return self.rule_class is not None and self.rule_class.test

    def dependencies(self) -> Iterator[tuple[str, Label]]:
        """(attribute, label) for every dependency edge, select() branches included."""
        if self.generating_rule is not None:
            yield ("", self.generating_rule)
            return
        if self.kind == PACKAGE_GROUP:
            for label in self.attrs.get("includes", ()):
                yield ("includes", label)
            return
        if self.rule_class is None:  # a source file depends on its package groups
            for label in self.visibility:
                if label.package != "visibility" and label.name not in _VISIBILITY_NAMES:
                    yield ("visibility", label)
            return
        attrs = self.attrs
        for name in self.rule_class.dependency_attrs:
            value = attrs.get(name)
            if value:   # (most label attributes of most targets are empty)
                for label in labels_in(value, conditions=False):
                    yield (name, label)
        for label in attrs.get(IMPLICIT_TESTS, ()):
            yield (IMPLICIT_TESTS, label)
        configurable = [value for value in map(attrs.__getitem__, self.explicit)
                        if isinstance(value, (Select, SelectorList))]
        if configurable:   # (most targets have none)
            for label in dict.fromkeys(select_conditions(configurable)):
                yield (CONDITION_EDGE, label)


def select_conditions(values: Iterable[Any]) -> Iterator[Label]:
    """The config_setting (or constraint_value) keys of every select() in `values`."""
    for value in values:
        parts = value.parts if isinstance(value, SelectorList) else (value,)
        for part in parts:
            if isinstance(part, Select):
                yield from (key for key, _ in part.conditions if key != DEFAULT_CONDITION)


def labels_in(value: Any, conditions: bool = True) -> Iterator[Label]:
    """Every Label inside an attribute value: select() branches, and keys if `conditions`."""
    if value is None:
        return
    if isinstance(value, Label):
        yield value
    elif isinstance(value, tuple) and all(type(item) is Label for item in value):
        yield from value   # the common case: a plain label list
    elif isinstance(value, SelectorList):
        for part in value.parts:
            yield from labels_in(part, conditions)
    elif isinstance(value, Select):
        for condition, branch in value.conditions:
            if conditions and not (condition.package == "conditions"
                                   and condition.name == "default"):
                yield condition
            yield from labels_in(branch, conditions)
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from labels_in(item, conditions)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from labels_in(key, conditions)
            yield from labels_in(item, conditions)


@dataclass(frozen=True)
class Package:
    """A loaded package: its targets in declaration order and what its BUILD file loaded."""

    id: PackageId
    build_file: str                      # as shown in messages (workspace-relative)
    targets: Mapping[str, Target]
    loads: tuple[str, ...] = ()          # labels of the .bzl files loaded, transitively
    default_visibility: tuple[Label, ...] = (PRIVATE,)

    @functools.cached_property
    def labels(self) -> tuple[Label, ...]:
        """Its targets' labels, in declaration order (computed once: a long-lived bp
        expands the same package's patterns at every build)."""
        return tuple(t.label for t in self.targets.values())

    @functools.cached_property
    def rule_labels(self) -> tuple[Label, ...]:
        return tuple(t.label for t in self.targets.values() if t.is_rule)

    @property
    def build_label(self) -> Label:
        """The label of the BUILD file itself (a source file target of the package)."""
        return self.id.label(self.build_file.rsplit("/", 1)[-1].rsplit(":", 1)[-1])
