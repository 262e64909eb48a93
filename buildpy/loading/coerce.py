"""Type-checks and converts attribute values given in BUILD files to their schema types.

Labels become `Label`s relative to the package, lists become tuples, dicts read-only
mappings, and `select()`s keep every branch (each coerced). Knows nothing of targets.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Callable

from buildpy.core.label import Label, LabelError, PackageId, parse_label
from buildpy.lang.values import Select, SelectorList
from buildpy.loading.rule_class import AttrSpec

TYPE_NAMES = {
    "string": "string", "string_list": "list(string)", "int": "int",
    "int_list": "list(int)", "bool": "boolean", "label": "Label",
    "label_list": "list(Label)", "output": "output", "output_list": "list(output)",
    "string_dict": "dict(string, string)", "string_list_dict": "dict(string, list(string))",
    "label_keyed_string_dict": "dict(Label, string)",
    "string_keyed_label_dict": "dict(string, Label)",
}


class CoercionError(Exception):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def starlark_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict) and "__bp_label__" in value:
        return "Label"
    return {str: "string", int: "int", float: "float", list: "list", dict: "dict",
            type(None): "NoneType"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    return repr(value)


def coerce_value(spec: AttrSpec, value: Any, package: PackageId) -> Any:
    """The coerced value of attribute `spec`; raises CoercionError on a type mismatch."""
    if isinstance(value, list) and Select in map(type, value):   # (no subclass of Select)
        if not spec.configurable:
            raise CoercionError(f"attribute '{spec.name}' is not configurable",
                                hint="use a plain value instead of select()")
        return SelectorList(tuple(_selector_parts(spec, value, package)))
    return _coerce(spec, value, package)


def _selector_parts(spec: AttrSpec, value: list, package: PackageId):
    """The parts of `a + select(...) + b`: for a list attribute, the plain items between
    the select()s as lists; for a string attribute, each plain string is a part."""
    literal: list = []
    for item in value:
        if isinstance(item, Select):
            if literal:
                yield _coerce(spec, literal, package)
                literal = []
            yield _coerce_select(spec, item, package)
        elif isinstance(item, str) and spec.type == "string":
            yield _coerce(spec, item, package)
        else:
            literal.append(item)
    if literal:
        yield _coerce(spec, literal, package)


def _coerce_select(spec: AttrSpec, select: Select, package: PackageId) -> Select:
    branches = []
    for key, branch in select.conditions:
        try:
            condition = parse_label(key, package)
        except LabelError as e:
            raise CoercionError(f"invalid select() condition in attribute '{spec.name}': "
                                f"{e.message}", e.hint) from None
        try:
            branches.append((condition, _coerce(spec, branch, package)))
        except CoercionError as e:
            raise CoercionError(f"{e.message} (in the select() branch for '{key}')",
                                e.hint) from None
    return Select(tuple(branches), select.no_match_error, select.location)


def _mismatch(spec: AttrSpec, value: Any, hint: str | None = None) -> CoercionError:
    return CoercionError(
        f"expected value of type '{TYPE_NAMES[spec.type]}' for attribute '{spec.name}', "
        f"but got {_show(value)} ({starlark_type(value)})", hint)


def _label(spec: AttrSpec, value: Any, package: PackageId) -> Label:
    if isinstance(value, dict) and "__bp_label__" in value:
        value = value["__bp_label__"]
    if not isinstance(value, str):
        raise _mismatch(spec, value)
    try:
        return parse_label(value, package)
    except LabelError as e:
        raise CoercionError(f"{e.message} in attribute '{spec.name}'", e.hint) from None


def _output(spec: AttrSpec, value: Any, package: PackageId) -> Label:
    if not isinstance(value, str):
        raise _mismatch(spec, value)
    label = _label(spec, value, package)
    if label.package != package.name or label.repo != package.repo:
        raise CoercionError(f"output '{value}' of attribute '{spec.name}' is not in this "
                            f"package '{package}'",
                            hint="outputs are named relative to their own package")
    return label


def _list(spec: AttrSpec, value: Any, item) -> tuple:
    if not isinstance(value, list):
        hint = (f"wrap it in a list: [{_show(value)}]"
                if isinstance(value, (str, int)) and not isinstance(value, bool) else None)
        raise _mismatch(spec, value, hint)
    items = tuple(item(v) for v in value)
    if not items and not spec.allow_empty:
        raise CoercionError(f"attribute '{spec.name}' must not be empty")
    return items


def _dict(spec: AttrSpec, value: Any, key, item) -> MappingProxyType:
    if not isinstance(value, dict) or "__bp_label__" in value:
        raise _mismatch(spec, value)
    out = {key(k): item(v) for k, v in value.items()}
    if not out and not spec.allow_empty:
        raise CoercionError(f"attribute '{spec.name}' must not be empty")
    return MappingProxyType(out)


# One function per attribute type: (spec, value, package) -> the coerced value. A string
# or int that does not fit is reported with the whole value it is part of, a label
# with the item itself.

def _checked_string(spec: AttrSpec, item: Any, whole: Any) -> str:
    if not isinstance(item, str):
        raise _mismatch(spec, whole)
    return item


def _checked_int(spec: AttrSpec, item: Any, whole: Any) -> int:
    if isinstance(item, bool):  # Bazel's tristate ints accept True/False
        return int(item)
    if not isinstance(item, int):
        raise _mismatch(spec, whole)
    return item


def _string(spec: AttrSpec, value: Any, package: PackageId) -> str:
    return _checked_string(spec, value, value)


def _int(spec: AttrSpec, value: Any, package: PackageId) -> int:
    return _checked_int(spec, value, value)


def _bool(spec: AttrSpec, value: Any, package: PackageId) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):  # legacy 0/1 booleans
        return bool(value)
    raise _mismatch(spec, value)


def _string_list(spec: AttrSpec, value: Any, package: PackageId) -> tuple:
    return _list(spec, value, lambda v: _checked_string(spec, v, value))


def _int_list(spec: AttrSpec, value: Any, package: PackageId) -> tuple:
    return _list(spec, value, lambda v: _checked_int(spec, v, value))


def _or_none(one: Callable[[AttrSpec, Any, PackageId], Label]):
    """A single label attribute (`_label` or `_output`), None allowed."""
    def coerce(spec: AttrSpec, value: Any, package: PackageId) -> Label | None:
        return None if value is None else one(spec, value, package)
    return coerce


def _unique_list(one: Callable[[AttrSpec, Any, PackageId], Label]):
    """A list of labels (`_label` or `_output`), none twice."""
    def coerce(spec: AttrSpec, value: Any, package: PackageId) -> tuple:
        result = _label_strings(spec, value, package, outputs=one is _output)
        if result is None:
            result = _list(spec, value, lambda v: one(spec, v, package))
        _no_duplicates(spec, result)
        return result
    return coerce


def _label_strings(spec: AttrSpec, value: Any, package: PackageId,
                   outputs: bool) -> tuple | None:
    """The common label list, label strings only (of this package, for `outputs`), parsed
    as they are (the item-by-item path costs several calls a label); None for anything
    else (a Label() value, a label that does not parse, an output elsewhere, not a list,
    an empty list that must not be), which that path then converts or reports
    (tests/test_coerce.py: both paths agree)."""
    if type(value) is not list or not (value or spec.allow_empty):
        return None
    try:
        labels = tuple([parse_label(item, package) for item in value])
    except LabelError:
        return None
    if outputs and any(label.package != package.name or label.repo != package.repo
                       for label in labels):
        return None
    return labels


def _string_dict(spec: AttrSpec, value: Any, package: PackageId) -> MappingProxyType:
    string = lambda v: _checked_string(spec, v, value)  # noqa: E731
    return _dict(spec, value, string, string)


def _string_list_dict(spec: AttrSpec, value: Any, package: PackageId) -> MappingProxyType:
    string = lambda v: _checked_string(spec, v, value)  # noqa: E731
    return _dict(spec, value, string, lambda v: _list(spec, v, string))


def _label_keyed_string_dict(spec: AttrSpec, value: Any,
                             package: PackageId) -> MappingProxyType:
    return _dict(spec, value, lambda k: _label(spec, k, package),
                 lambda v: _checked_string(spec, v, value))


def _string_keyed_label_dict(spec: AttrSpec, value: Any,
                             package: PackageId) -> MappingProxyType:
    return _dict(spec, value, lambda k: _checked_string(spec, k, value),
                 lambda v: _label(spec, v, package))


_COERCE = {
    "string": _string, "int": _int, "bool": _bool, "string_list": _string_list,
    "int_list": _int_list, "label": _or_none(_label),
    "label_list": _unique_list(_label), "output": _or_none(_output),
    "output_list": _unique_list(_output), "string_dict": _string_dict,
    "string_list_dict": _string_list_dict,
    "label_keyed_string_dict": _label_keyed_string_dict,
    "string_keyed_label_dict": _string_keyed_label_dict,
}


def _coerce(spec: AttrSpec, value: Any, package: PackageId) -> Any:
    result = _COERCE[spec.type](spec, value, package)
    if spec.values and result not in spec.values:
        choices = ", ".join(_show(v) for v in spec.values)
        raise CoercionError(f"attribute '{spec.name}' has value {_show(result)}, which is "
                            f"not one of the allowed values: {choices}")
    return result


def _no_duplicates(spec: AttrSpec, labels: tuple) -> None:
    if len(set(labels)) == len(labels):
        return
    seen = set()
    for label in labels:
        if label in seen:
            raise CoercionError(f"label '{label}' is duplicated in the '{spec.name}' "
                                "attribute", hint="remove the repeated entry")
        seen.add(label)
