"""Platforms and constraints: which constraint values a platform has.

Reads platform, constraint_value, constraint_setting and alias targets through a lookup
function; knows nothing of selects or toolchains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from buildpy.core.errors import BpError, UserError
from buildpy.core.label import Label, LabelError, parse_label
from buildpy.loading.target import Target

Lookup = Callable[[Label], Target]


@dataclass(frozen=True)
class Platform:
    label: Label
    constraints: Mapping[Label, Label] = field(default_factory=dict)   # setting -> value
    exec_properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def values(self) -> frozenset[Label]:
        return frozenset(self.constraints.values())


class Platforms:
    """Resolves platforms and constraint values, caching what it has read."""

    def __init__(self, lookup: Lookup):
        self._lookup = lookup
        self._platforms: dict[Label, Platform] = {}
        self._settings: dict[Label, Label] = {}

    def lookup(self, label: Label) -> Target:
        """The target `label` names (an alias itself, not what it stands for)."""
        return self._lookup(label)

    def actual(self, label: Label) -> Target:
        """The target `label` names, following aliases."""
        seen = []
        target = self._lookup(label)
        while target.kind == "alias":
            seen.append(target.label)
            target = self._lookup(target.attrs["actual"])
            if target.label in seen:
                raise UserError(f"alias cycle: {' -> '.join(map(str, seen + [target.label]))}")
        return target

    def platform(self, text_or_label: str | Label, what: str = "platform") -> Platform:
        label = _label(text_or_label, what)
        try:
            target = self.actual(label)
        except BpError as error:
            raise UserError(f"unknown {what} '{label}': {error.message}",
                            hint=error.hint or "name a platform() target, e.g. "
                                               "--platforms=//platforms:linux_x86_64") from None
        if target.kind != "platform":
            raise UserError(f"'{label}' is a {target.kind_text}, not a platform",
                            location=target.location,
                            hint="--platforms and execution platforms name platform() "
                                 "targets")
        if target.label not in self._platforms:
            self._platforms[target.label] = self._resolve(target, ())
        return self._platforms[target.label]

    def _resolve(self, target: Target, chain: tuple[Label, ...]) -> Platform:
        if target.label in chain:
            raise UserError(f"platform parents form a cycle: "
                            f"{' -> '.join(map(str, chain + (target.label,)))}")
        constraints: dict[Label, Label] = {}
        properties: dict[str, str] = {}
        for parent_label in target.attrs.get("parents", ()):
            parent = self.actual(parent_label)
            if parent.kind != "platform":
                raise UserError(f"parent '{parent_label}' of platform '{target.label}' is a "
                                f"{parent.kind_text}, not a platform",
                                location=target.location)
            inherited = self._resolve(parent, chain + (target.label,))
            constraints.update(inherited.constraints)
            properties.update(inherited.exec_properties)
        own: dict[Label, Label] = {}
        for value in target.attrs.get("constraint_values", ()):
            setting, canonical = self.constraint(value, f"platform '{target.label}'")
            if setting in own and own[setting] != canonical:
                raise UserError(f"platform '{target.label}' has two values for constraint "
                                f"setting '{setting}': '{own[setting]}' and '{canonical}'",
                                location=target.location, hint="keep one of them")
            own[setting] = canonical
        constraints.update(own)
        properties.update(target.attrs.get("exec_properties", {}))
        return Platform(target.label, constraints, properties)

    def constraint(self, label: Label, used_by: str) -> tuple[Label, Label]:
        """(setting, value) of a constraint_value label (aliases followed)."""
        target = self.actual(label)
        if target.kind != "constraint_value":
            raise UserError(f"'{label}' in {used_by} is a {target.kind_text}, not a "
                            "constraint_value", location=target.location)
        return target.attrs["constraint_setting"], target.label

    def default_value(self, setting: Label) -> Label | None:
        if setting not in self._settings:
            target = self.actual(setting)
            self._settings[setting] = target.attrs.get("default_constraint_value")
        return self._settings[setting]

    def has(self, platform: Platform, value: Label, used_by: str) -> bool:
        """Does `platform` have constraint value `value` (or its setting's default)?"""
        setting, canonical = self.constraint(value, used_by)
        actual = platform.constraints.get(setting)
        if actual is None:
            default = self.default_value(setting)
            actual = self.actual(default).label if default is not None else None
        return actual == canonical


def _label(text: str | Label, what: str) -> Label:
    if isinstance(text, Label):
        return text
    try:
        return parse_label(text)
    except LabelError as error:
        raise UserError(f"invalid {what} label: {error.message}", hint=error.hint) from None
