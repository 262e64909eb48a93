"""Rule kinds and their attribute schemas, as declared by `rule()` in .bzl files.

Validates declarations and adds the attributes every rule has. Does not coerce values
given in BUILD files (see coerce.py) and does not run implementations.
"""

from __future__ import annotations

import functools
import keyword
import re
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Mapping

from buildpy.core.errors import Location
from buildpy.core.label import Label, LabelError, PackageId, parse_label

ATTR_TYPES = frozenset({
    "string", "string_list", "int", "int_list", "bool", "label", "label_list", "output",
    "output_list", "string_dict", "string_list_dict", "label_keyed_string_dict",
    "string_keyed_label_dict",
})
LABEL_TYPES = frozenset({"label", "label_list", "label_keyed_string_dict",
                         "string_keyed_label_dict"})
OUTPUT_TYPES = frozenset({"output", "output_list"})
_EMPTY = {
    "string": "", "string_list": (), "int": 0, "int_list": (), "bool": False,
    "label": None, "label_list": (), "output": None, "output_list": (),
    "string_dict": MappingProxyType({}), "string_list_dict": MappingProxyType({}),
    "label_keyed_string_dict": MappingProxyType({}),
    "string_keyed_label_dict": MappingProxyType({}),
}
# Parameters each attr.<type>() accepts beyond default/mandatory/doc.
_PARAMS = {
    "string": {"values"},
    "string_list": {"allow_empty"},
    "int": {"values"},
    "int_list": {"allow_empty"},
    "bool": set(),
    "label": {"allow_files", "allow_single_file", "executable", "cfg", "providers",
              "aspects", "allow_rules", "flags", "single_file"},
    "label_list": {"allow_files", "allow_empty", "cfg", "providers", "aspects",
                   "allow_rules", "flags"},
    "output": set(),
    "output_list": {"allow_empty"},
    "string_dict": {"allow_empty"},
    "string_list_dict": {"allow_empty"},
    "label_keyed_string_dict": {"allow_files", "allow_empty", "cfg", "providers",
                                "aspects", "allow_rules", "flags"},
    "string_keyed_label_dict": {"allow_files", "allow_empty", "cfg", "providers",
                                "aspects", "allow_rules", "flags"},
}
# `configurable = False`: no select() (Bazel allows it only for symbolic macros; the
# prelude needs it for the attributes Bazel's native rules make nonconfigurable)
_COMMON_PARAMS = {"default", "mandatory", "doc", "configurable"}
# rule() parameters that bp accepts for compatibility and ignores for now.
ACCEPTED_RULE_PARAMS = frozenset({
    "cfg", "exec_compatible_with", "fragments", "host_fragments", "outputs",
    "output_to_genfiles", "exec_groups", "incompatible_use_toolchain_transition",
    "build_setting", "analysis_test", "initializer", "name", "subrules",
    "dependency_resolution_rule", "_skylark_testable",
})


@dataclass(frozen=True)
class AttrSpec:
    """One attribute of a rule kind: its type, default and constraints."""

    name: str
    type: str
    default: Any = None          # None: the type's empty value (or mandatory)
    mandatory: bool = False
    values: tuple = ()
    allow_empty: bool = True
    allow_files: Any = None      # None, bool, or a tuple of extensions
    allow_single_file: Any = None
    executable: bool = False
    cfg: str | None = None
    aspects: tuple[str, ...] = ()   # the ids of the aspects it applies to its dependencies
    providers: tuple = ()
    doc: str = ""
    configurable: bool = True    # may the value be a select()?
    nodep: bool = False          # labels that are not dependencies (visibility)

    @property
    def is_label(self) -> bool:
        return self.type in LABEL_TYPES

    @property
    def is_output(self) -> bool:
        return self.type in OUTPUT_TYPES

    @property
    def is_private(self) -> bool:
        return self.name.startswith("_")

    @property
    def empty(self) -> Any:
        return _EMPTY[self.type]


@dataclass(frozen=True)
class BuildSetting:
    """What `build_setting = config.<type>(flag = ...)` declares: the type of the
    setting's value, and whether the command line may set it (`--//pkg:name=value`)."""

    type: str    # string, bool, int, string_list; label (label_flag, label_setting)
    flag: bool

    def parse(self, text: str) -> Any:
        """A command-line (or flag_values) text as a value of this type; ValueError if it
        is not one."""
        if self.type == "bool":
            lowered = text.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError(f"'{text}' is not a boolean (true or false)")
        if self.type == "int":
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"'{text}' is not an integer") from None
        if self.type == "string_list":
            return [part for part in text.split(",") if part]
        if self.type == "label":   # canonical, so that equal labels compare equal
            try:
                return str(parse_label(text, PackageId("", "")))
            except LabelError as error:
                raise ValueError(error.message) from None
        return text


@dataclass(frozen=True)
class RuleClass:
    """A rule kind (`genrule`, `my_rule`): its schema and where it was declared."""

    id: int
    kind: str | None             # None until the rule is assigned to a global name
    attrs: Mapping[str, AttrSpec]
    executable: bool
    test: bool
    doc: str
    toolchains: tuple[Label, ...]   # toolchain types
    location: Location
    defined_in: str              # label of the .bzl file
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    build_setting: BuildSetting | None = None   # rule(build_setting = config.*(...))
    transition: str | None = None   # rule(cfg = ...): "transition:<id>" or "exec"

    @cached_property
    def dependency_attrs(self) -> tuple[str, ...]:
        """Names of the attributes whose labels are dependency edges."""
        return tuple(name for name, spec in self.attrs.items()
                     if spec.is_label and not spec.nodep)

    @cached_property
    def mandatory_attrs(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self.attrs.items() if spec.mandatory)

    @cached_property
    def output_attrs(self) -> tuple[str, ...]:
        return tuple(name for name, spec in self.attrs.items() if spec.is_output)

    @cached_property
    def defaults(self) -> Mapping[str, Any]:
        """The value of each attribute a target does not set."""
        return MappingProxyType({name: spec.empty if spec.default is None else spec.default
                                 for name, spec in self.attrs.items()})


def _common_attrs(executable: bool, test: bool) -> list[AttrSpec]:
    """The attributes the core gives every rule (and every test or executable rule)."""
    attrs = [
        AttrSpec("name", "string", mandatory=True, configurable=False,
                 doc="The target's name, unique in its package."),
        AttrSpec("visibility", "label_list", configurable=False, nodep=True,
                 doc="Who may depend on this target."),
        AttrSpec("tags", "string_list", configurable=False,
                 doc="Free-form tags; some (manual, local, exclusive) change behaviour."),
        AttrSpec("testonly", "bool", configurable=False,
                 doc="Only test targets and other testonly targets may depend on it."),
        AttrSpec("deprecation", "string", doc="A warning shown to targets depending on it."),
        AttrSpec("target_compatible_with", "label_list",
                 doc="Constraint values the target platform must have."),
        AttrSpec("exec_compatible_with", "label_list", configurable=False,
                 doc="Constraint values the execution platform must have."),
        AttrSpec("exec_properties", "string_dict",
                 doc="Properties passed to the execution platform for this target's actions."),
        AttrSpec("features", "string_list", doc="Toolchain features to enable or disable."),
        AttrSpec("compatible_with", "label_list", configurable=False,
                 doc="Accepted for Bazel compatibility."),
        AttrSpec("restricted_to", "label_list", configurable=False,
                 doc="Accepted for Bazel compatibility."),
        AttrSpec("licenses", "string_list", configurable=False,
                 doc="Accepted for Bazel compatibility."),
        AttrSpec("applicable_licenses", "label_list", configurable=False,
                 doc="Accepted for Bazel compatibility."),
        AttrSpec("distribs", "string_list", configurable=False,
                 doc="Accepted for Bazel compatibility."),
    ]
    if test:
        attrs += [
            AttrSpec("size", "string", default="medium", configurable=False,
                     values=("small", "medium", "large", "enormous"),
                     doc="How heavy the test is; sets its default timeout."),
            AttrSpec("timeout", "string", configurable=False,
                     values=("", "short", "moderate", "long", "eternal"),
                     doc="How long the test may run (default from its size)."),
            AttrSpec("flaky", "bool", configurable=False,
                     doc="Retry the test up to three times when it fails."),
            AttrSpec("shard_count", "int", default=-1, configurable=False,
                     doc="Run the test in this many parallel shards."),
            AttrSpec("local", "bool", doc="Run the test without sandbox or remote execution."),
            AttrSpec("env_inherit", "string_list",
                     doc="Names of variables passed from the user's environment."),
        ]
    if test or executable:
        attrs += [
            AttrSpec("args", "string_list",
                     doc="Command-line arguments given to the program when bp runs it."),
            AttrSpec("env", "string_dict", doc="Environment variables for the program."),
            AttrSpec("data", "label_list", allow_files=True,
                     doc="Files the program needs at run time."),
            AttrSpec("output_licenses", "string_list", configurable=False,
                     doc="Accepted for Bazel compatibility."),
        ]
    return attrs


# Attributes a rule may declare itself, replacing the core's version.
OVERRIDABLE = frozenset({"data", "exec_properties", "output_licenses", "licenses",
                         "testonly", "tags"})


@functools.cache
def common_attr_names(executable: bool, test: bool) -> frozenset[str]:
    return frozenset(a.name for a in _common_attrs(executable, test))


def build_schema(declared: Mapping[str, AttrSpec], executable: bool,
                 test: bool) -> Mapping[str, AttrSpec]:
    schema = {a.name: a for a in _common_attrs(executable, test)}
    schema.update(declared)
    return MappingProxyType(schema)


class DeclarationError(Exception):
    """A problem in a rule() or attr.*() declaration; loading adds the location."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def attr_spec(name: str, raw: Any, executable: bool, test: bool) -> AttrSpec:
    """Validate one `attrs` entry of rule() (a dict from attr.<type>()) into an AttrSpec."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or keyword.iskeyword(name):
        raise DeclarationError(f"attribute name {name!r} is not a valid identifier")
    if not isinstance(raw, dict) or "__bp_attr__" not in raw:
        raise DeclarationError(
            f"attribute '{name}' must be declared with attr.<type>(...), got {raw!r}",
            hint=f"write \"{name}\": attr.string() (or another attr.* function)")
    kind = raw["__bp_attr__"]
    if name in common_attr_names(executable, test) and name not in OVERRIDABLE:
        raise DeclarationError(
            f"there is already a built-in attribute '{name}' which cannot be overridden",
            hint="rename the attribute")
    allowed = _PARAMS[kind] | _COMMON_PARAMS
    for key in raw:
        if key not in ("__bp_attr__", "__bp_computed__") and key not in allowed:
            raise DeclarationError(f"attr.{kind}() got an unexpected parameter '{key}' "
                                   f"for attribute '{name}'")
    mandatory = bool(raw.get("mandatory", False))
    default = raw.get("default")
    if name.startswith("_") and "default" not in raw and kind in LABEL_TYPES and \
            not raw.get("__bp_computed__"):   # (a computed default: set per target)
        raise DeclarationError(f"private attribute '{name}' must have a default value",
                               hint="private attributes cannot be set in BUILD files, so "
                                    "give it default = \"//some:target\"")
    if mandatory and name.startswith("_"):
        raise DeclarationError(f"private attribute '{name}' cannot be mandatory")
    if kind in OUTPUT_TYPES and default is not None:
        raise DeclarationError(f"output attribute '{name}' cannot have a default")
    allow_files = _allow_files(name, raw.get("allow_files"))
    single = _allow_files(name, raw.get("allow_single_file"))
    if allow_files is not None and single is not None:
        raise DeclarationError(f"attribute '{name}' cannot set both allow_files and "
                               "allow_single_file")
    cfg = raw.get("cfg")
    if cfg not in (None, "target", "exec", "host") and not (
            isinstance(cfg, str) and cfg.startswith("transition:")):
        raise DeclarationError(f"attribute '{name}': cfg must be \"target\", \"exec\" or a "
                               f"transition(), got {cfg!r}")
    if raw.get("executable") and cfg is None:
        raise DeclarationError(f"attribute '{name}' is executable, so it must set cfg",
                               hint='add cfg = "exec" (or cfg = "target")')
    values = raw.get("values") or ()
    return AttrSpec(
        name=name, type=kind, default=default, mandatory=mandatory,
        values=tuple(values), allow_empty=bool(raw.get("allow_empty", True)),
        allow_files=allow_files, allow_single_file=single,
        executable=bool(raw.get("executable", False)),
        cfg="exec" if cfg == "host" else cfg,
        providers=_freeze(raw.get("providers") or ()), doc=str(raw.get("doc") or ""),
        configurable=bool(raw.get("configurable", True)),
        aspects=tuple(raw.get("aspects") or ()),
    )


def _allow_files(name: str, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise DeclarationError(f"attribute '{name}': allow_files must be a bool or a list of "
                           f"extensions, got {value!r}")


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value
