"""Toolchain resolution: for a target's toolchain types, an execution platform and one
registered toolchain per type, chosen from the platforms' constraints as Bazel does.

Knows registrations and platforms; not how targets are configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from buildpy.core.errors import UserError
from buildpy.core.label import Label
from buildpy.config.configuration import Configuration
from buildpy.config.platforms import Platform, Platforms
from buildpy.config.selects import Conditions
from buildpy.loading.target import Target


@dataclass(frozen=True)
class Registration:
    """One toolchain() target: what it provides, for which platforms."""

    label: Label
    type: Label
    implementation: Label
    exec_compatible_with: tuple[Label, ...]
    target_compatible_with: tuple[Label, ...]
    target_settings: tuple[Label, ...]

    @staticmethod
    def of(target: Target) -> "Registration":
        return Registration(target.label, target.attrs["toolchain_type"],
                            target.attrs["toolchain"],
                            tuple(target.attrs.get("exec_compatible_with", ())),
                            tuple(target.attrs.get("target_compatible_with", ())),
                            tuple(target.attrs.get("target_settings", ())))


@dataclass(frozen=True)
class Resolution:
    exec_platform: Platform
    toolchains: tuple[tuple[Label, Label], ...]   # (toolchain type, implementation)


class Toolchains:
    def __init__(self, platforms: Platforms, conditions: Conditions,
                 registrations: Iterable[Registration], exec_platforms: Iterable[Platform]):
        self.platforms = platforms
        self.conditions = conditions
        self.registrations = tuple(registrations)
        self.exec_platforms = tuple(exec_platforms)
        self._cache: dict[tuple, Resolution] = {}
        self._types: dict[Label, Label] = {}   # toolchain types, aliases followed

    def _satisfies(self, platform: Platform, values: Iterable[Label], what: str) -> bool:
        return all(self.platforms.has(platform, v, what) for v in values)

    def resolve(self, owner: Label, types: tuple[Label, ...], target_platform: Platform,
                config: Configuration, exec_compatible_with: tuple[Label, ...]) -> Resolution:
        key = (types, config.hash, exec_compatible_with)
        if key not in self._cache:
            self._cache[key] = self._resolve(owner, types, target_platform, config,
                                             exec_compatible_with)
        return self._cache[key]

    def _type(self, label: Label) -> Label:
        """A toolchain type through the aliases that name it (`@bazel_tools//tools/cpp:
        toolchain_type` is bp's C++ type)."""
        if label not in self._types:
            self._types[label] = self.platforms.actual(label).label
        return self._types[label]

    def _resolve(self, owner: Label, types: tuple[Label, ...], target_platform: Platform,
                 config: Configuration, exec_compatible_with: tuple[Label, ...]) -> Resolution:
        candidates = [p for p in self.exec_platforms
                      if self._satisfies(p, exec_compatible_with, f"'{owner}'")]
        if not candidates:
            tried = ", ".join(f"'{p.label}'" for p in self.exec_platforms)
            raise UserError(f"no execution platform for '{owner}' satisfies its "
                            f"exec_compatible_with ({', '.join(map(str, exec_compatible_with))});"
                            f" execution platforms tried: {tried}",
                            hint="register one with register_execution_platforms() in "
                                 "WORKSPACE or --extra_execution_platforms")
        for exec_platform in candidates:
            chosen = []
            for toolchain_type in types:
                found = self._find(toolchain_type, exec_platform, target_platform, config)
                if found is None:
                    break
                chosen.append((toolchain_type, found.implementation))
            else:
                return Resolution(exec_platform, tuple(chosen))
        missing = [t for t in types
                   if all(self._find(t, p, target_platform, config) is None for p in candidates)]
        tried = ", ".join(f"'{p.label}'" for p in candidates)
        names = ", ".join(f"'{t}'" for t in missing or types)
        raise UserError(
            f"no matching toolchain for type {names}, needed by '{owner}': target platform "
            f"'{target_platform.label}', execution platforms tried: {tried}",
            hint="register a toolchain() of this type whose constraints these platforms "
                 "meet (register_toolchains() in WORKSPACE, or --extra_toolchains)")

    def _find(self, toolchain_type: Label, exec_platform: Platform, target_platform: Platform,
              config: Configuration) -> Registration | None:
        wanted = self._type(toolchain_type)
        for registration in self.registrations:
            if registration.type != wanted:
                continue
            what = f"toolchain '{registration.label}'"
            if not self._satisfies(target_platform, registration.target_compatible_with, what):
                continue
            if not self._satisfies(exec_platform, registration.exec_compatible_with, what):
                continue
            if all(self.conditions.matches(s, config, target_platform)
                   for s in registration.target_settings):
                return registration
        return None
