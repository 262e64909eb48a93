"""Configurations: the settings one configured target is built with, and their hash.

Knows the settings and how to name them; not how platforms or selects are resolved.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from buildpy.core.errors import UserError
from buildpy.core.label import Label

COMPILATION_MODES = ("fastbuild", "dbg", "opt")
# What Bazel 4.2's --cpu says for a target OS and CPU (bp's constraint names): `k8` on
# Linux x86-64, `darwin` on an Intel Mac, `x64_windows` on Windows. A pair not listed
# keeps the CPU's name.
_BAZEL_CPU = {("linux", "x86_64"): "k8", ("linux", "arm64"): "aarch64",
              ("linux", "x86_32"): "piii", ("linux", "armv7"): "arm",
              ("linux", "ppc64le"): "ppc", ("macos", "x86_64"): "darwin",
              ("macos", "arm64"): "darwin_arm64", ("windows", "x86_64"): "x64_windows",
              ("windows", "arm64"): "arm64_windows", ("freebsd", "x86_64"): "freebsd",
              ("android", "arm64"): "arm64-v8a", ("android", "armv7"): "armeabi-v7a",
              ("ios", "arm64"): "ios_arm64"}


# Bazel options that bp has no flag for but that transitions may set and config_setting
# may test, with Bazel's defaults; a configuration holds those set, as
# "//command_line_option:<name>" entries of its build settings.
OPTION_PREFIX = "//command_line_option:"
OPTION_DEFAULTS: dict[str, Any] = {
    "allow_analysis_failures": False, "features": [], "stamp": False, "copt": [],
    "cxxopt": [], "conlyopt": [], "linkopt": [], "minimum_os_version": None,
    "compiler": None, "dynamic_mode": "default", "strip": "sometimes",
    "test_arg": [],   # set by a transition, it replaces the command line's --test_arg
    "experimental_allow_unresolved_symlinks": False,   # ctx.actions.declare_symlink
}
# The C++ flags of the command line (--copt, --cxxopt, --conlyopt, --linkopt): part of the
# target configuration (and its hash), but, as in Bazel, not of its output directory's
# name; the exec configuration drops them (Bazel gives tools --host_copt instead).
CC_FLAG_OPTIONS = ("copt", "cxxopt", "conlyopt", "linkopt")


def bazel_cpu(os: str, cpu: str) -> str:
    """Bazel's --cpu value for a configuration's OS and CPU constraint names."""
    return _BAZEL_CPU.get((os, cpu), cpu)


@dataclass(frozen=True)
class BuildOptions:
    """The configuration flags of one command (--platforms, -c, --define, ...)."""

    platforms: tuple[str, ...] = ()
    compilation_mode: str = "fastbuild"
    defines: tuple[tuple[str, str], ...] = ()
    host_platform: str = "@platforms//:host"
    extra_execution_platforms: tuple[str, ...] = ()
    extra_toolchains: tuple[str, ...] = ()
    build_settings: tuple[tuple[str, str], ...] = ()   # --//pkg:flag=value, as given
    aspects: tuple[str, ...] = ()         # --aspects: //pkg:file.bzl%name
    output_groups: tuple[str, ...] = ()   # --output_groups: name, +name, -name
    stamp: bool = False                   # --stamp: //command_line_option:stamp
    allow_unresolved_symlinks: bool = False   # --experimental_allow_unresolved_symlinks
    copts: tuple[str, ...] = ()       # --copt: C and C++ compiles, each value one argument
    cxxopts: tuple[str, ...] = ()     # --cxxopt: C++ compiles only
    conlyopts: tuple[str, ...] = ()   # --conlyopt: C compiles only
    linkopts: tuple[str, ...] = ()    # --linkopt: links

    def cc_flags(self) -> tuple[tuple[str, str], ...]:
        """The C++ flags given, as Configuration.cc_flags: (option name, JSON list)."""
        given = zip(CC_FLAG_OPTIONS, (self.copts, self.cxxopts, self.conlyopts,
                                      self.linkopts))
        return tuple(sorted((name, json.dumps(list(values))) for name, values in given
                            if values))

    @staticmethod
    def parse_defines(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
        defines: dict[str, str] = {}
        for value in values:
            name, equals, text = value.partition("=")
            if not equals or not name:
                raise UserError(f"invalid --define '{value}': expected NAME=VALUE",
                                hint="for example --define=debug=1")
            defines[name] = text  # a later --define of the same name wins, as in Bazel
        return tuple(sorted(defines.items()))


@dataclass(frozen=True)
class Configuration:
    """What a configured target is built for: target platform, mode, defines."""

    platform: Label
    constraints: frozenset[Label] = field(default_factory=frozenset)
    os: str = ""
    cpu: str = ""
    compilation_mode: str = "fastbuild"
    defines: tuple[tuple[str, str], ...] = ()
    is_exec: bool = False
    build_settings: tuple[tuple[str, str], ...] = ()   # (label, value as JSON), sorted
    # --copt, --cxxopt, --conlyopt, --linkopt as given: (option name, JSON list), sorted.
    # A transition that sets one of them does so in build_settings, which wins.
    cc_flags: tuple[tuple[str, str], ...] = ()

    def settings(self) -> dict:
        settings = {
            "platform": str(self.platform), "constraints": sorted(map(str, self.constraints)),
            "os": self.os, "cpu": self.cpu, "compilation_mode": self.compilation_mode,
            "defines": dict(self.defines), "is_exec": self.is_exec}
        if self.build_settings:
            settings["build_settings"] = dict(self.build_settings)
        if self.cc_flags:
            settings["cc_flags"] = {name: json.loads(v) for name, v in self.cc_flags}
        return settings

    @cached_property
    def setting_values(self) -> dict[str, Any]:
        """The user-defined build settings this configuration sets, by label."""
        return {label: json.loads(value) for label, value in self.build_settings}

    @cached_property
    def hash(self) -> str:
        """A short stable name, like Bazel's (`3f2c1e9`)."""
        text = json.dumps(self.settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:7]

    @property
    def mnemonic(self) -> str:
        """A readable directory name: `linux_x86_64-fastbuild` (`-exec` for tools)."""
        base = f"{self.os or 'any'}_{self.cpu or 'any'}-{self.compilation_mode}"
        return base + ("-exec" if self.is_exec else "")

    @property
    def define_map(self) -> dict[str, str]:
        return dict(self.defines)

    @property
    def bazel_cpu(self) -> str:
        """What Bazel's --cpu would be (`k8`): `values = {"cpu": ...}`, $(TARGET_CPU).
        A transition may have set it (the platform stays)."""
        return self.setting_values.get(OPTION_PREFIX + "cpu") or bazel_cpu(self.os, self.cpu)

    def option(self, name: str) -> Any:
        """The value of one of OPTION_DEFAULTS's options in this configuration: as a
        transition set it, else as the command line gave it, else the default."""
        if OPTION_PREFIX + name in self.setting_values:
            return self.setting_values[OPTION_PREFIX + name]
        for given, text in self.cc_flags:
            if given == name:
                return json.loads(text)
        return OPTION_DEFAULTS[name]
