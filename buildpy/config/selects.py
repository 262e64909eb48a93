"""select() resolution: which config_setting (or constraint_value) keys match a configuration.

Applies Bazel's rules: `//conditions:default` when nothing matches, specialization when
several match, errors for no match and for ambiguity. Knows nothing of toolchains.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Mapping

from buildpy.core.errors import UserError
from buildpy.core.host import host_cpu, host_os
from buildpy.core.label import Label
from buildpy.config.configuration import OPTION_DEFAULTS, Configuration, bazel_cpu
from buildpy.config.platforms import Platform, Platforms
from buildpy.config.settings import BuildSettings
from buildpy.lang.values import Select, SelectorList

DEFAULT = Label("", "conditions", "default")
VALUE_KEYS = ("compilation_mode", "cpu", "host_cpu", "define", *OPTION_DEFAULTS)


class Conditions:
    """Matches select() keys against configurations; caches each answer."""

    def __init__(self, platforms: Platforms, build_settings: BuildSettings):
        self.platforms = platforms
        self.build_settings = build_settings
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
        for label, text in target.attrs.get("flag_values", {}).items():
            what = f"config_setting '{target.label}': flag_values"
            setting_target, setting = self.build_settings.setting(label, what)
            try:
                value = setting.parse(text)
            except ValueError as e:
                raise UserError(f"{what}: {e} for '{setting_target.label}'",
                                location=target.location) from None
            required.add(("flag", setting_target.label, json.dumps(value)))
        for value in target.attrs.get("constraint_values", ()):
            _, canonical = self.platforms.constraint(value, f"config_setting '{target.label}'")
            required.add(("constraint", canonical))
        return required

    def matches(self, key: Label, config: Configuration, platform: Platform) -> bool:
        cache_key = (key, config.hash)
        if cache_key not in self._matches:
            key = self._condition(key, config, platform)
            self._matches[cache_key] = all(
                self._holds(requirement, config, platform) for requirement in self.settings(key))
        return self._matches[cache_key]

    def _condition(self, key: Label, config: Configuration, platform: Platform) -> Label:
        """The condition a key names in `config`: an alias whose `actual` is a select()
        (as bazel-skylib's config_setting_group makes) is resolved there first."""
        seen = []
        target = self.platforms.lookup(key)
        while target.kind == "alias" and isinstance(target.attrs["actual"],
                                                    (Select, SelectorList)):
            seen.append(target.label)
            actual = self.resolve(target.attrs["actual"], "actual", target.label, config,
                                  platform)
            target = self.platforms.lookup(actual)
            if target.label in seen:
                raise UserError(f"alias cycle: {' -> '.join(map(str, seen + [target.label]))}")
        return target.label

    def _holds(self, requirement: tuple, config: Configuration, platform: Platform) -> bool:
        kind = requirement[0]
        if kind == "constraint":
            return self.platforms.has(platform, requirement[1], "select()")
        if kind == "define":
            return config.define_map.get(requirement[1]) == requirement[2]
        if kind == "flag":
            return self.build_settings.value(requirement[1], config) == \
                json.loads(requirement[2])
        name, value = requirement[1], requirement[2]
        if name == "cpu":   # Bazel's name (`k8`), not the constraint's (`x86_64`)
            return config.bazel_cpu == value
        if name == "host_cpu":   # the machine bp runs on, by Bazel's --host_cpu name
            return bazel_cpu(host_os(), host_cpu()) == value
        if name in OPTION_DEFAULTS:   # options only transitions set
            current = config.option(name)
            if isinstance(current, bool):
                return current == (value.lower() in ("1", "true", "yes"))
            if isinstance(current, list):   # as Bazel: each listed value is set
                return all(v in current for v in value.split(",") if v)
            return str(current) == value if current is not None else value == ""
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
        required = {key: self.settings(self._condition(key, config, platform))
                    for key, _ in matching}
        winners = [(key, branch) for key, branch in matching
                   if all(required[key] >= required[other] for other, _ in matching)]
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
