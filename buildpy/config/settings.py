"""User-defined build settings: the values that `--//pkg:flag=value` gives them, and the
value a setting has in a configuration.

A build setting is a target of a rule declared with `build_setting = config.<type>(...)`;
its `build_setting_default` is its value unless the command line sets it (only for flags,
`flag = True`). Configurations carry the values set, by canonical label.
"""

from __future__ import annotations

import json
from typing import Any

from buildpy.core.errors import UserError
from buildpy.core.label import Label, LabelError, PackageId, parse_label
from buildpy.config.configuration import Configuration
from buildpy.config.platforms import Platforms
from buildpy.loading.rule_class import BuildSetting
from buildpy.loading.target import Target

_HINT = "a build setting is a target of a rule declared with build_setting = " \
        "config.<type>(flag = True), such as bazel-skylib's string_flag"


class BuildSettings:
    """Finds build-setting targets (through aliases) and their values."""

    def __init__(self, platforms: Platforms):
        self.platforms = platforms

    def setting(self, label: Label, what: str) -> tuple[Target, BuildSetting]:
        """The target of a build setting and what it declares; `what` names the use in
        the error for a target that is not one."""
        target = self.platforms.actual(label)
        setting = target.rule_class.build_setting if target.is_rule else None
        if setting is None:
            raise UserError(f"{what}: '{label}' is a {target.kind_text}, not a build setting",
                            location=target.location, hint=_HINT)
        return target, setting

    def command_line(self, given: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        """The settings of `--//pkg:flag=value` flags: (canonical label, value as JSON),
        sorted; a later flag for the same setting wins."""
        values: dict[str, str] = {}
        for text, raw in given:
            option = f"--{text}={raw}"
            try:
                label = parse_label(text, PackageId("", ""))
            except LabelError as e:
                raise UserError(f"{option}: {e.message}", hint=e.hint) from None
            target, setting = self.setting(label, f"Unrecognized option {option}")
            if not setting.flag:
                raise UserError(f"{option}: '{target.label}' is a build setting that is not a "
                                "flag, so only transitions may set it",
                                location=target.location,
                                hint="declare it with config.<type>(flag = True) to set it on "
                                     "the command line")
            try:
                value = setting.parse(raw)
            except ValueError as e:
                raise UserError(f"{option}: {e}", location=target.location) from None
            values[str(target.label)] = json.dumps(value)
        return tuple(sorted(values.items()))

    def value(self, label: Label, config: Configuration) -> Any:
        """The value of a build setting in `config`."""
        target, _ = self.setting(label, "flag_values")
        given = config.setting_values.get(str(target.label))
        if given is not None:
            return given
        default = target.attrs.get("build_setting_default")
        return str(default) if isinstance(default, Label) else default
