"""Builds one Package while its BUILD file runs: the natives' side of target creation.

Receives rule calls, glob(), package(), exports_files() and package_group() for the
package being evaluated; collects every error of the file before giving up on it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Callable

from buildpy.core.errors import BpError, ErrorGroup, Location, UserError, did_you_mean
from buildpy.core.label import Label, LabelError, PackageId, parse_label, validate_target_name
from buildpy.lang.values import Frame
from buildpy.loading.coerce import CoercionError, coerce_value
from buildpy.loading.rule_class import RuleClass
from buildpy.loading.target import (
    GENERATED_FILE, IMPLICIT_TESTS, PACKAGE_GROUP, PRIVATE, PUBLIC, SOURCE_FILE, Generator,
    Package, Target, labels_in,
)

_PACKAGE_ARGS = ("default_visibility", "default_testonly", "default_deprecation",
                 "features", "default_applicable_licenses", "licenses",
                 "default_compatible_with", "default_restricted_to")


# the reserved keyword of a rule call that carries its computed defaults (private
# attributes whose default is a function of other attributes)
COMPUTED_DEFAULTS = "__bp_computed_defaults__"


@dataclass
class FrameInfo:
    """What the builder needs from the Starlark side to place messages."""

    location: Callable[[Frame], Location]
    source_line: Callable[[Frame], str]


class PackageBuilder:
    def __init__(self, package: PackageId, build_file: str, text: str, where: FrameInfo):
        self.id = package
        self.build_file = build_file
        self._text = text
        self._where = where
        self.targets: dict[str, Target] = {}
        self.raw: dict[str, dict[str, Any]] = {}
        # name -> (kind, location) of every target declared, with errors or not
        self._declared: dict[str, tuple[str, Location]] = {}
        self.errors: list[BpError] = []
        self.default_visibility: tuple[Label, ...] = (PRIVATE,)
        self.default_testonly = False
        self.default_deprecation = ""
        self._package_called = False
        self._calls: dict[int, ast.Call] | None = None

    # ---- errors and locations --------------------------------------------------------

    def _build_frame(self, frames: tuple[Frame, ...]) -> Frame:
        for frame in frames:
            if frame.path == self.build_file:
                return frame
        return frames[0]

    def error(self, frame: Frame, message: str, hint: str | None = None,
              keyword: str | None = None) -> UserError:
        location = self._where.location(frame)
        line = self._where.source_line(frame)
        if keyword is not None and frame.path == self.build_file:
            found = keyword_position(self._text, self.build_file, frame.line, keyword)
            if found is not None:
                location, line = found
        return UserError(message, location=location, source_line=line or None, hint=hint)

    # ---- natives ---------------------------------------------------------------------

    def add_rule(self, rule: RuleClass, kwargs: dict[str, Any], frames: tuple[Frame, ...]):
        call = self._build_frame(frames)
        what = f"{rule.kind} rule"
        name = kwargs.get("name")
        if not isinstance(name, str):
            self.errors.append(self.error(
                call, f"{what}: missing value for mandatory attribute 'name'"
                if name is None else f"{what}: 'name' must be a string, got {name!r}",
                keyword="name"))
            return
        try:
            validate_target_name(name, name)
        except LabelError as e:
            self.errors.append(self.error(call, f"{what}: invalid name: {e.message}", e.hint,
                                          keyword="name"))
            return
        label = self.id.label(name)
        what = f"{rule.kind} rule '{label}'"
        location = self._where.location(call)
        if not self._unique(name, call, f"{rule.kind} rule", location):
            return
        attrs: dict[str, Any] = {}
        errors_before = len(self.errors)
        computed = kwargs.pop(COMPUTED_DEFAULTS, None) or {}
        schema = rule.attrs
        for key, value in [*kwargs.items(), *computed.items()]:
            spec = schema.get(key)
            if spec is None:
                public = [a for a in schema if not a.startswith("_")]
                self.errors.append(self.error(
                    call, f"{what}: no such attribute '{key}' in '{rule.kind}' rule"
                    f"{did_you_mean(key, public)}", keyword=key))
                continue
            if spec.is_private and key not in computed:
                self.errors.append(self.error(
                    call, f"{what}: attribute '{key}' is private and cannot be set",
                    keyword=key))
                continue
            if value is None and not spec.mandatory:
                continue  # None means "use the default", as in Bazel
            try:
                attrs[key] = coerce_value(spec, value, self.id)
            except CoercionError as e:
                self.errors.append(self.error(call, f"{what}: {e.message}", e.hint,
                                              keyword=key))
        for attr_name in rule.mandatory_attrs:
            if kwargs.get(attr_name) is None:
                self.errors.append(self.error(
                    call, f"{what}: missing value for mandatory attribute '{attr_name}'",
                    hint=f"add {attr_name} = ... to the call"))
        if len(self.errors) > errors_before:
            return
        explicit = frozenset(attrs)
        values = rule.defaults.copy()   # then the package's defaults, then the call's
        values["testonly"] = self.default_testonly or rule.test or values["testonly"]
        values["deprecation"] = self.default_deprecation
        values.update(attrs)
        visibility = tuple(map(_pseudo, values["visibility"])) if "visibility" in explicit \
            else self.default_visibility
        values["visibility"] = visibility
        self.raw[name] = dict(kwargs, kind=rule.kind)
        self.targets[name] = Target(
            label=label, kind=rule.kind, location=location,
            attrs=MappingProxyType(values), explicit=explicit, rule_class=rule,
            generator=self._generator(frames, call, name, location),
            visibility=tuple(visibility))

    def _unique(self, name: str, call: Frame, kind: str, location: Location) -> bool:
        existing = self._declared.get(name)
        if existing is None:
            self._declared[name] = (kind, location)
            return True
        self.errors.append(self.error(
            call, f"target '{name}' is already defined as a {existing[0]} at {existing[1]}",
            hint="give one of them another name", keyword="name"))
        return False

    def _generator(self, frames: tuple[Frame, ...], call: Frame, name: str,
                   location: Location) -> Generator | None:
        index = frames.index(call)
        if len(frames) - index <= 2:  # BUILD frame, then the rule itself: no macro
            return None
        function = frames[index + 1].function
        macro_name = self._macro_name(call.line) or name
        return Generator(function, macro_name, location)

    def _macro_name(self, line: int) -> str | None:
        if self._calls is None:
            self._calls = {}
            try:
                tree = ast.parse(self._text)
            except SyntaxError:
                return None
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and node.lineno not in self._calls:
                    self._calls[node.lineno] = node
        node = self._calls.get(line)
        for kw in getattr(node, "keywords", ()):
            if kw.arg == "name" and isinstance(kw.value, ast.Constant):
                return str(kw.value.value)
        return None

    def package(self, kwargs: dict[str, Any], frames: tuple[Frame, ...]) -> None:
        call = self._build_frame(frames)
        if self._package_called:
            raise self.error(call, "package() can only be called once per BUILD file")
        if self.targets:
            raise self.error(call, "package() must be called before any target is declared",
                             hint="move package(...) to the top of the BUILD file")
        self._package_called = True
        for key in kwargs:
            if key not in _PACKAGE_ARGS:
                raise self.error(call, f"package() got an unexpected keyword argument "
                                       f"'{key}'{did_you_mean(key, _PACKAGE_ARGS)}",
                                 keyword=key)
        if "default_visibility" in kwargs:
            self.default_visibility = tuple(self._labels(kwargs["default_visibility"], call,
                                                         "default_visibility"))
        if "default_testonly" in kwargs:
            self.default_testonly = bool(kwargs["default_testonly"])
        if "default_deprecation" in kwargs:
            self.default_deprecation = str(kwargs["default_deprecation"])

    def _labels(self, values: Any, call: Frame, what: str) -> list[Label]:
        if not isinstance(values, list):
            raise self.error(call, f"{what} must be a list of labels, got {values!r}",
                             keyword=what)
        out = []
        for value in values:
            try:
                out.append(_pseudo(parse_label(value, self.id)))
            except LabelError as e:
                raise self.error(call, f"{e.message} in {what}", e.hint, keyword=what) from None
        return out

    def exports_files(self, srcs: Any, visibility: Any, frames: tuple[Frame, ...]) -> None:
        call = self._build_frame(frames)
        labels = self._labels(srcs, call, "exports_files")
        shown = tuple(self._labels(visibility, call, "visibility")) \
            if visibility is not None else (PUBLIC,)
        for label in labels:
            if label.package_id != self.id:
                raise self.error(call, f"exports_files: '{label}' is not in package "
                                       f"'{self.id}'", hint="export files of this package only")
            existing = self.targets.get(label.name)
            if existing is not None and existing.kind != SOURCE_FILE:
                self.errors.append(self.error(
                    call, f"exports_files: '{label.name}' is already defined at "
                          f"{existing.location} as a {existing.kind_text}"))
                continue
            self.targets[label.name] = self._source_file(label, shown)

    def package_group(self, name: Any, packages: Any, includes: Any,
                      frames: tuple[Frame, ...]) -> None:
        call = self._build_frame(frames)
        if not isinstance(name, str):
            raise self.error(call, "package_group: 'name' must be a string")
        location = self._where.location(call)
        if not self._unique(name, call, "package group", location):
            return
        specs = []
        for spec in packages if isinstance(packages, list) else [packages]:
            if not isinstance(spec, str) or not _valid_package_spec(spec):
                raise self.error(call, f"package_group '{name}': invalid package "
                                       f"specification {spec!r}",
                                 hint="use '//pkg', '//pkg/...', '//...', 'public' or "
                                      "'private', optionally negated with '-'",
                                 keyword="packages")
            specs.append(spec)
        included = tuple(self._labels(includes, call, "includes"))
        self.targets[name] = Target(
            label=self.id.label(name), kind=PACKAGE_GROUP,
            location=location,
            attrs=MappingProxyType({"packages": tuple(specs), "includes": included}),
            visibility=(PUBLIC,))

    def existing_rule(self, name: str) -> dict[str, Any] | None:
        raw = self.raw.get(name)
        return dict(raw) if raw is not None else None

    def existing_rules(self) -> dict[str, dict[str, Any]]:
        return {name: dict(raw) for name, raw in self.raw.items()}

    # ---- the finished package -------------------------------------------------------

    def finish(self, loads: tuple[str, ...]) -> Package:
        rules = [t for t in self.targets.values() if t.is_rule]
        for rule in rules:
            self._add_outputs(rule)
        for rule in rules:
            for _, label in rule.dependencies():
                if label.package == self.id.name and label.repo == self.id.repo and \
                        label.name not in self.targets:
                    self.targets[label.name] = self._source_file(
                        label, self.default_visibility, implicit=True)
        build_name = self.build_file.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        self.targets.setdefault(build_name, self._source_file(
            self.id.label(build_name), self.default_visibility, implicit=True))
        self._add_implicit_tests(rules)
        if self.errors:
            raise ErrorGroup.of(self.errors)
        return Package(self.id, self.build_file, MappingProxyType(dict(self.targets)), loads,
                       self.default_visibility)

    def _add_outputs(self, rule: Target) -> None:
        for name in rule.rule_class.output_attrs:
            for label in labels_in(rule.attrs.get(name)):
                existing = self.targets.get(label.name)
                if existing is not None:
                    self.errors.append(UserError(
                        f"generated file '{label.name}' in rule '{rule.label.name}' conflicts "
                        f"with existing {existing.kind_text} defined at {existing.location}",
                        location=rule.location, hint="rename the output or the other target"))
                    continue
                self.targets[label.name] = Target(
                    label=label, kind=GENERATED_FILE, location=rule.location,
                    generating_rule=rule.label, visibility=rule.visibility)

    def _add_implicit_tests(self, rules: list[Target]) -> None:
        """A test_suite without `tests` stands for every non-manual test of its package."""
        tests = tuple(t.label for t in rules
                      if t.is_test and "manual" not in t.attrs.get("tags", ()))
        for rule in rules:
            if rule.kind == "test_suite" and not rule.attrs.get("tests"):
                attrs = MappingProxyType({**rule.attrs, IMPLICIT_TESTS: tests})
                self.targets[rule.label.name] = replace(rule, attrs=attrs)

    def _source_file(self, label: Label, visibility: tuple[Label, ...],
                     implicit: bool = False) -> Target:
        path = source_path(label)
        return Target(label=label, kind=SOURCE_FILE, location=Location(path, 1, 1),
                      visibility=visibility, implicitly_exported=implicit)


def _pseudo(label: Label) -> Label:
    """//visibility:public and :private name no package: the same in every repository."""
    if label.package == "visibility" and label.name in ("public", "private"):
        return PUBLIC if label.name == "public" else PRIVATE
    return label


def source_path(label: Label) -> str:
    """How messages show a source file: workspace-relative, or a label in other repos."""
    if label.repo:
        return str(label)
    return f"{label.package}/{label.name}" if label.package else label.name


def keyword_position(text: str, path: str, first_line: int,
                     keyword: str) -> tuple[Location, str] | None:
    """Where `keyword = ...` is given in the call starting at `first_line`, if it is."""
    lines = text.splitlines()
    for index in range(first_line - 1, min(len(lines), first_line + 400)):
        line = lines[index]
        if index >= first_line and line[:1] not in ("", " ", "\t", ")", "]", "#"):
            return None  # the next top-level statement
        column = _find_keyword(line, keyword)
        if column >= 0:
            return Location(path, index + 1, column + 1), line
    return None


def _find_keyword(line: str, keyword: str) -> int:
    start = 0
    while True:
        index = line.find(keyword, start)
        if index < 0:
            return -1
        before = line[index - 1] if index > 0 else " "
        after = line[index + len(keyword):].lstrip()
        if not (before.isalnum() or before == "_") and after.startswith("=") \
                and not after.startswith("=="):
            return index
        start = index + 1


def _valid_package_spec(spec: str) -> bool:
    if spec in ("public", "private", "//..."):
        return True
    body = spec[1:] if spec.startswith("-") else spec
    if not body.startswith("//"):
        return False
    path = body[2:]
    if path.endswith("/..."):
        path = path[:-4]
    try:
        parse_label(f"//{path}:x")
    except LabelError:
        return False
    return True
