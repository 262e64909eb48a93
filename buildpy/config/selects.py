"""select() resolution: which config_setting (or constraint_value) keys match a configuration.

Applies Bazel's rules: `//conditions:default` when nothing matches, specialization when
several match, errors for no match and for ambiguity. Knows nothing of toolchains.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping

from buildpy.core.errors import UserError
from buildpy.core.label import Label
from buildpy.config.configuration import Configuration
from buildpy.config.platforms import Platform, Platforms
from buildpy.lang.values import Select, SelectorList

DEFAULT = Label("", "conditions", "default")
VALUE_KEYS = ("compilation_mode", "cpu", "define")


class Conditions:
    """Matches select() keys against configurations; caches each answer."""

    def __init__(self, platforms: Platforms):
        self.platforms = platforms
        self._settings: dict[Label, frozenset] = {}
        self._matches: dict[tuple[Label, str], bool] = {}

    def settings(self, key: Label) -> frozenset:
        """What a key requires, as a set: a key that requires more specializes one that
        requires less."""
        if key not in self._settings:
            target = self.platforms.actual(key)
            if target.kind == "constraint_value":
                self._settings[key] = frozenset({("constraint", target.label)})
            elif target.kind == "config_setting":
                self._settings[key] = frozenset(self._config_setting(target))
            else:
                raise UserError(f"'{key}' is a {target.kind_text}, so it cannot be a select() "
                                "key", location=target.location,
                                hint="select() keys are config_setting or constraint_value "
                                     "targets, or //conditions:default")
        return self._settings[key]

    def _config_setting(self, target) -> set:
        required = set()
        for name, value in target.attrs.get("values", {}).items():
            if name not in VALUE_KEYS:
                raise UserError(f"config_setting '{target.label}': bp does not know the "
                                f"option '{name}' in 'values'",
                                location=target.location,
                                hint="bp understands: " + ", ".join(VALUE_KEYS))
            if name == "define":
                define, equals, text = value.partition("=")
                if not equals:
                    raise UserError(f"config_setting '{target.label}': 'define' needs "
                                    f"NAME=VALUE, got '{value}'", location=target.location)
                required.add(("define", define, text))
            else:
                required.add(("value", name, value))
        for name, value in target.attrs.get("define_values", {}).items():
            required.add(("define", name, value))
        if target.attrs.get("flag_values"):
            raise UserError(f"config_setting '{target.label}': flag_values needs build "
                            "settings, which bp does not support yet",
                            location=target.location)
        for value in target.attrs.get("constraint_values", ()):
            _, canonical = self.platforms.constraint(value, f"config_setting '{target.label}'")
            required.add(("constraint", canonical))
        return required

    def matches(self, key: Label, config: Configuration, platform: Platform) -> bool:
        cache_key = (key, config.hash)
        if cache_key not in self._matches:
            self._matches[cache_key] = all(
                self._holds(requirement, config, platform) for requirement in self.settings(key))
        return self._matches[cache_key]

    def _holds(self, requirement: tuple, config: Configuration, platform: Platform) -> bool:
        kind = requirement[0]
        if kind == "constraint":
            return self.platforms.has(platform, requirement[1], "select()")
        if kind == "define":
            return config.define_map.get(requirement[1]) == requirement[2]
        name, value = requirement[1], requirement[2]
        if name == "cpu":   # Bazel's name (`k8`), not the constraint's (`x86_64`)
            return config.bazel_cpu == value
        return getattr(config, name) == value

    # ---- resolving attribute values -----------------------------------------------------

    def resolve(self, value: Any, attr: str, owner: Label, config: Configuration,
                platform: Platform) -> Any:
        """The value of a (possibly configurable) attribute in `config`."""
        if isinstance(value, SelectorList):
            parts = [self.resolve(p, attr, owner, config, platform) for p in value.parts]
            return concat(parts)
        if isinstance(value, Select):
            return self._choose(value, attr, owner, config, platform)
        return value

    def _choose(self, select: Select, attr: str, owner: Label, config: Configuration,
                platform: Platform) -> Any:
        matching = [(key, branch) for key, branch in select.conditions
                    if key != DEFAULT and self.matches(key, config, platform)]
        if not matching:
            for key, branch in select.conditions:
                if key == DEFAULT:
                    return branch
            raise self._no_match(select, attr, owner, config)
        if len(matching) == 1:
            return matching[0][1]
        winners = [(key, branch) for key, branch in matching
                   if all(self.settings(key) >= self.settings(other) for other, _ in matching)]
        if len(winners) == 1 or (winners and all(b == winners[0][1] for _, b in winners)):
            return winners[0][1]
        if all(branch == matching[0][1] for _, branch in matching):
            return matching[0][1]
        keys = "\n".join(f"  {key}" for key, _ in matching)
        raise UserError(
            f"ambiguous match on configurable attribute '{attr}' in '{owner}' "
            f"(configuration {config.hash}): these conditions all match:\n{keys}\n"
            "multiple matches are allowed only when one condition is more specialized "
            "than all the others (it requires everything they require, and more)",
            location=select.location,
            hint="make the conditions exclusive, or add a condition that combines them")

    def _no_match(self, select: Select, attr: str, owner: Label,
                  config: Configuration) -> UserError:
        tried = "\n".join(f"  {key}" for key, _ in select.conditions)
        where = (f"configurable attribute '{attr}' in '{owner}' doesn't match this "
                 f"configuration (platform '{config.platform}', {config.compilation_mode}, "
                 f"{config.hash})")
        if select.no_match_error:
            return UserError(f"{where}: {select.no_match_error}\nconditions checked:\n{tried}",
                             location=select.location)
        return UserError(f"{where}\nconditions checked:\n{tried}", location=select.location,
                         hint="add a '//conditions:default' branch, or build for a "
                              "configuration that one of the conditions matches")


def concat(parts: list) -> Any:
    """Join the resolved parts of `a + select(...) + ...`."""
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, str):
        return "".join(parts)
    if isinstance(first, Mapping):
        merged: dict = {}
        for part in parts:
            merged.update(part)
        return merged
    return tuple(itertools.chain.from_iterable(parts))
