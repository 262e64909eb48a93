"""Configuration transitions: what a transition() on a rule (`cfg = t`) or on an
attribute (`attr.label(cfg = t)`) makes of a configuration.

Reads the transition's input settings from the configuration, runs its Starlark
implementation (or takes analysis_test_transition's fixed values) and checks what it
returns; the configured graph makes the new configuration from those values.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from buildpy.core.errors import Location, UserError
from buildpy.core.label import Label, LabelError, PackageId, parse_label
from buildpy.config.configuration import (
    COMPILATION_MODES, OPTION_DEFAULTS, OPTION_PREFIX, Configuration,
)
from buildpy.config.settings import BuildSettings
from buildpy.lang.values import Select, SelectorList
from buildpy.loading.loader import Loader, TransitionDecl
from buildpy.loading.target import Target

OPTION = OPTION_PREFIX
# the native options a transition can read and set: these, and OPTION_DEFAULTS's
OPTIONS = ("compilation_mode", "platforms", "cpu", *OPTION_DEFAULTS)
PREFIX = "transition:"

# What a transition returns: one (None, settings), or a split's (key, settings) pairs.
Branches = tuple[tuple[str | None, dict[str, Any]], ...]


class Transitions:
    """Runs transitions; each (transition, configuration, attributes) once."""

    def __init__(self, loader: Loader, build_settings: BuildSettings):
        self.loader = loader
        self.build_settings = build_settings
        self._outputs: dict[tuple, Branches] = {}

    def outputs(self, ref: str, config: Configuration, target: Target) -> Branches:
        """The settings transition `ref` ("transition:<id>") sets, by name, for `target`
        in `config`: native options by their short name, build settings by label. One
        branch, keyed None, or a split transition's branches by key (sorted; a returned
        list's are "0", "1", ...)."""
        decl = self.loader.transitions[int(ref[len(PREFIX):])]
        attr = {name: _plain(value) for name, value in target.attrs.items()
                if not name.startswith("$")}
        key = (ref, config.hash, json.dumps(attr, sort_keys=True, default=str))
        if key not in self._outputs:
            self._outputs[key] = self._run(decl, config, target, attr)
        return self._outputs[key]

    def describe(self, ref: str) -> tuple[str, Location]:
        """How errors name transition `ref`, and where it was declared."""
        decl = self.loader.transitions[int(ref[len(PREFIX):])]
        return (f"transition '{decl.name}'" if decl.name else "a transition"), decl.location

    def _run(self, decl: TransitionDecl, config: Configuration, target: Target,
             attr: dict) -> Branches:
        what = (f"transition '{decl.name}'" if decl.name else "a transition") + \
            f" (applied to '{target.label}')"
        if decl.fixed is not None:
            returned = dict(decl.fixed)
        else:
            if decl.module is None:
                raise UserError(f"the transition declared at {decl.location} has no name",
                                location=decl.location,
                                hint="assign it to a global of its .bzl file")
            settings = {name: self._read(name, config, decl) for name in decl.inputs}
            returned = self.loader.env.transition_outputs(
                decl.module, decl.name, settings, attr,
                context=f"error in transition '{decl.name}' applied to '{target.label}'")
        if isinstance(returned, list):   # a split transition, its branches numbered
            if not returned:
                raise UserError(f"{what} returned an empty list", location=decl.location,
                                hint="a split transition returns at least one dict of "
                                     "settings")
            return tuple((str(i), self._settings(what, branch, decl))
                         for i, branch in enumerate(returned))
        if isinstance(returned, dict) and returned and all(
                isinstance(v, dict) for v in returned.values()):   # split, by key
            return tuple((str(key), self._settings(f"{what}, branch '{key}'", branch, decl))
                         for key, branch in sorted(returned.items(), key=lambda i: str(i[0])))
        return ((None, self._settings(what, returned, decl)),)

    def _settings(self, what: str, returned: Any, decl: TransitionDecl) -> dict[str, Any]:
        """The settings of one configuration a transition returned, checked."""
        if not isinstance(returned, dict):
            raise UserError(f"{what} must return a dict of settings, not {returned!r}",
                            location=decl.location)
        if set(returned) != set(decl.outputs):
            missing = sorted(set(decl.outputs) - set(returned))
            extra = sorted(set(returned) - set(decl.outputs))
            raise UserError(
                f"{what} returned " + (f"no value for {', '.join(missing)}" if missing else
                                       f"undeclared outputs {', '.join(extra)}"),
                location=decl.location,
                hint="a transition returns exactly the settings listed in its 'outputs'")
        return {self._name(name, decl): value for name, value in returned.items()}

    def _name(self, name: str, decl: TransitionDecl) -> str:
        if name.startswith(OPTION):
            option = name[len(OPTION):]
            if option not in OPTIONS:
                raise UserError(f"a transition cannot set '{name}' in bp",
                                location=decl.location,
                                hint="bp's transitions set " + ", ".join(
                                    OPTION + o for o in OPTIONS) + " and build settings")
            return option
        return str(self._setting_label(name, decl))

    def _read(self, name: str, config: Configuration, decl: TransitionDecl) -> Any:
        if name.startswith(OPTION):
            option = name[len(OPTION):]
            if option == "compilation_mode":
                return config.compilation_mode
            if option == "platforms":
                return [str(config.platform)]
            if option == "cpu":
                return config.bazel_cpu
            if option in OPTION_DEFAULTS:
                return config.option(option)
            raise UserError(f"a transition cannot read '{name}' in bp",
                            location=decl.location,
                            hint="bp's transitions read " + ", ".join(
                                OPTION + o for o in OPTIONS) + " and build settings")
        return self.build_settings.value(self._setting_label(name, decl), config)

    def _setting_label(self, name: str, decl: TransitionDecl) -> Label:
        try:
            return parse_label(name, PackageId("", ""))
        except LabelError as e:
            raise UserError(f"transition setting '{name}': {e.message}",
                            location=decl.location, hint=e.hint) from None


def apply(outputs: Mapping[str, Any], config: Configuration, settings: BuildSettings
          ) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """(compilation mode, platform label, build settings) of `config` after a transition
    set `outputs` (from Transitions.outputs)."""
    mode, platform = config.compilation_mode, str(config.platform)
    values = dict(config.build_settings)
    for name, value in outputs.items():
        if name == "compilation_mode":
            if value not in COMPILATION_MODES:
                raise UserError(f"a transition set //command_line_option:compilation_mode to "
                                f"{value!r}; it must be one of {', '.join(COMPILATION_MODES)}")
            mode = value
        elif name == "platforms":
            chosen = value[0] if isinstance(value, list) and value else value
            platform = str(chosen)
        elif name in OPTION_DEFAULTS or name == "cpu":
            default = OPTION_DEFAULTS.get(name)
            if isinstance(default, bool):
                value = value in (True, "True", "true", "1", 1)
            elif isinstance(default, list) and isinstance(value, str):
                value = [value]
            values[OPTION_PREFIX + name] = json.dumps(value)
        else:
            values[name] = json.dumps(_typed(name, value, settings))
    return mode, platform, tuple(sorted(values.items()))


def _typed(label: str, value: Any, settings: BuildSettings) -> Any:
    target, setting = settings.setting(parse_label(label), "a transition's output")
    expected = {"string": str, "bool": bool, "int": int, "string_list": list,
                "label": str}[setting.type]
    if isinstance(value, str) and setting.type != "string":
        try:
            return setting.parse(value)
        except ValueError as e:
            raise UserError(f"a transition set '{target.label}' to {value!r}: {e}") from None
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise UserError(f"a transition set '{target.label}' to {value!r}, but it is a "
                        f"{setting.type} setting")
    return value


def _plain(value: Any) -> Any:
    """An attribute value as a transition sees it: labels as strings; a value that is
    still a select() as None."""
    if isinstance(value, (Select, SelectorList)):
        return None
    if isinstance(value, Label):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
