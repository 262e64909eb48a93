"""The configured target graph: (label, configuration) nodes with every select() resolved.

Grows on demand from requested labels: resolves attributes for the node's configuration,
checks target_compatible_with, resolves toolchains and the execution platform, and
configures dependencies (exec-configured for `cfg = "exec"` attributes). Runs no rule.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import networkx as nx

from buildpy.core.errors import BpError, UserError
from buildpy.core.label import Label, LabelError, PackageId, parse_label
from buildpy.core.pattern import parse_pattern
from buildpy.config.configuration import OPTION_PREFIX, BuildOptions, Configuration
from buildpy.config.platforms import Platform, Platforms
from buildpy.config.selects import Conditions
from buildpy.config.settings import BuildSettings
from buildpy.config.transitions import PREFIX as TRANSITION, Transitions
from buildpy.config.transitions import apply as apply_transition
from buildpy.config.toolchains import Registration, Toolchains
from buildpy.lang.values import Select, SelectorList
from buildpy.loading.graph import GraphLoader
from buildpy.loading.loader import TOOLCHAINS_REPO, WorkspaceSettings
from buildpy.loading.patterns import expand_patterns, packages_below
from buildpy.loading.target import (
    CONDITION_EDGE, IMPLICIT_TESTS, PACKAGE_GROUP, SOURCE_FILE, Target, labels_in,
    select_conditions,
)

OS_SETTING = Label("platforms", "os", "os")
CPU_SETTING = Label("platforms", "cpu", "cpu")
TOOLCHAIN_EDGE = "$toolchain"
ASPECT_EDGE = "$aspect "   # + "<aspect id>\t<attribute>": an aspect's tool or data

_CONFIGURABLE = (Select, SelectorList)   # a select(), or a `+` of values and select()s


@dataclass(frozen=True, order=True)
class ConfiguredKey:
    """A node of the configured graph: a label in a configuration (None: no configuration,
    for source files and package groups)."""

    label: Label
    config: str | None
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:   # keys are hashed millions of times: once is enough
        object.__setattr__(self, "_hash", hash((self.label, self.config)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self):   # string hashes differ between processes: hash again
        return ConfiguredKey, (self.label, self.config)

    def __str__(self) -> str:
        return f"{self.label} ({self.config or 'null'})"


@dataclass(frozen=True)
class ConfiguredTarget:
    key: ConfiguredKey
    target: Target
    configuration: Configuration | None
    attrs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    deps: tuple[tuple[str, ConfiguredKey], ...] = ()
    toolchains: tuple[tuple[Label, ConfiguredKey], ...] = ()
    exec_platform: Label | None = None
    incompatible: str | None = None   # why the target itself is incompatible, if it is
    # attributes with a split transition: their split keys. Their `deps` are label by
    # label, each in every branch (in key order), as Bazel's ctx.attr lists them.
    splits: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


class ConfiguredGraph:
    """Configures targets on demand; `graph` holds the keys and their dependency edges."""

    def __init__(self, graph_loader: GraphLoader, options: BuildOptions,
                 settings: WorkspaceSettings, graph: bool = False):
        """`graph`: grow `graph` from the start (a long-lived bp walks it after each
        edit), not when first asked for."""
        self.graph_loader = graph_loader
        self.loader = graph_loader.loader
        self.options = options
        self.settings = settings
        # the packages each node looked at while it was configured, and the ones that
        # what all nodes share (platforms, conditions, toolchains, settings) looked at
        self._looked: set[PackageId] | None = None
        self.looked_at: dict[ConfiguredKey, frozenset[PackageId]] = {}
        self._looked_sets: dict[frozenset[PackageId], frozenset[PackageId]] = {}
        self.shared_packages: set[PackageId] = set()
        self._dangling: list[tuple[ConfiguredKey, str, ConfiguredKey]] = []
        # key()'s answers, by the package of the label asked about
        self._keys: dict[tuple[str, str], dict[tuple[Label, str | None], ConfiguredKey]] = {}
        self.platforms = Platforms(self._shared_lookup)
        self.build_settings = BuildSettings(self.platforms)
        self.conditions = Conditions(self.platforms, self.build_settings)
        self._setting_values = self.build_settings.command_line(options.build_settings)
        # Bazel's options given on the command line, as a transition would set them
        given = (("stamp", options.stamp),
                 ("experimental_allow_unresolved_symlinks", options.allow_unresolved_symlinks))
        self._setting_values = tuple(sorted(self._setting_values + tuple(
            (OPTION_PREFIX + name, "true") for name, value in given if value)))
        self.transitions = Transitions(self.loader, self.build_settings)
        self.host = self.platforms.platform(options.host_platform, "host platform")
        target_platform = self.platforms.platform(options.platforms[0]) \
            if options.platforms else self.host
        self.configurations: dict[str, tuple[Configuration, Platform]] = {}
        self._exec_configurations: dict[Label, Configuration] = {}   # by platform
        self.top = self._configuration(target_platform, options.compilation_mode, False)
        self._graph: nx.DiGraph | None = nx.DiGraph() if graph else None   # (see `graph`)
        self.nodes: dict[ConfiguredKey, ConfiguredTarget] = {}
        self.failed: dict[ConfiguredKey, UserError] = {}   # could not be configured
        self._toolchains: Toolchains | None = None
        # why a key is incompatible: its own reason, the dependency that is, or None
        self._causes: dict[ConfiguredKey, str | ConfiguredKey | None] = {}

    @property
    def graph(self) -> nx.DiGraph:
        """The keys and their dependency edges (`attr`: the attribute of one), as the
        nodes' `deps` have them. Made when first asked for (cquery, a long-lived bp
        configuring again, -k leaving out what depends on a failure), and kept up to date
        from then on: a build walks `deps` alone, and at 100,000 targets this graph
        would take about half a GiB."""
        if self._graph is None:
            self._graph = nx.DiGraph()
            for key, node in self.nodes.items():
                self._add_to_graph(key, node)
        return self._graph

    def _add_to_graph(self, key: ConfiguredKey, node: ConfiguredTarget) -> None:
        self._graph.add_node(key)
        if node.deps:
            self._graph.add_edges_from((key, dep, {"attr": attr}) for attr, dep in node.deps)

    # ---- configurations ---------------------------------------------------------------

    def _configuration(self, platform: Platform, mode: str, is_exec: bool,
                       build_settings: tuple[tuple[str, str], ...] | None = None
                       ) -> Configuration:
        config = Configuration(
            platform=platform.label, constraints=platform.values,
            os=_name(platform.constraints.get(OS_SETTING)),
            cpu=_name(platform.constraints.get(CPU_SETTING)),
            compilation_mode=mode, defines=self.options.defines, is_exec=is_exec,
            build_settings=self._setting_values if build_settings is None else build_settings,
            cc_flags=() if is_exec else self.options.cc_flags())
        self.configurations.setdefault(config.hash, (config, platform))
        return config

    def exec_configuration(self, exec_platform: Platform) -> Configuration:
        """Tools are built for the execution platform, optimized, as Bazel's exec config
        (which does not stamp, nor take --copt and the other C++ flags: those are for
        the target configuration). One per platform: every target asks for it, and a
        configuration's hash is a digest to compute."""
        config = self._exec_configurations.get(exec_platform.label)
        if config is None:
            settings = tuple(s for s in self._setting_values
                             if s[0] != OPTION_PREFIX + "stamp")
            config = self._configuration(exec_platform, "opt", True, settings)
            self._exec_configurations[exec_platform.label] = config
        return config

    def configuration(self, name: str) -> Configuration:
        """A configuration by hash (or unique hash prefix)."""
        found = [c for h, (c, _) in self.configurations.items() if h.startswith(name)]
        if len(found) != 1:
            known = ", ".join(sorted(self.configurations))
            raise UserError(f"{'no' if not found else 'more than one'} configuration "
                            f"'{name}'; known: {known}",
                            hint="use 'target', 'exec', 'null' or a hash that bp config lists")
        return found[0]

    @property
    def toolchains(self) -> Toolchains:
        if self._toolchains is None:
            patterns = [*self.options.extra_toolchains, *self.settings.toolchains]
            if packages_below(self.loader, TOOLCHAINS_REPO, ""):
                patterns.append(f"@{TOOLCHAINS_REPO}//...")
            registrations = [Registration.of(t) for t in self._targets_of(patterns)
                             if t.kind == "toolchain"]
            platforms = [self.platforms.platform(t.label) for t in self._targets_of(
                [*self.options.extra_execution_platforms, *self.settings.execution_platforms])
                         if t.kind == "platform"]
            self._toolchains = Toolchains(self.platforms, self.conditions, registrations,
                                          [*platforms, self.host])
        return self._toolchains

    def _targets_of(self, patterns: list[str]) -> list[Target]:
        is_package = lambda path: self.loader.is_package(PackageId("", path))  # noqa: E731
        labels, _ = expand_patterns(self.loader, [parse_pattern(p, "", is_package)
                                                  for p in patterns])
        return [self._shared_lookup(label) for label in labels]

    def lookup(self, label: Label) -> Target:
        if self._looked is not None:
            self._looked.add(label.package_id)
        return self.graph_loader.lookup(label)

    def _shared_lookup(self, label: Label) -> Target:
        self.shared_packages.add(label.package_id)
        return self.graph_loader.lookup(label)

    def forget(self, packages: set[PackageId]) -> bool:
        """A long-lived bp: these packages were loaded again. The nodes that looked at
        them leave the graph (configured again by the next `add`); False when what all
        nodes share looked at one, or a node failed: then make a new graph."""
        if packages & self.shared_packages or self.failed:
            return False
        stale = {key for key, looked in self.looked_at.items() if looked & packages}
        self._dangling += [(pred, attr, key) for key in stale
                           for pred, _, attr in self.graph.in_edges(key, data="attr")
                           if pred not in stale]
        for key in stale.union(*(nx.ancestors(self.graph, key) for key in stale)):
            self._causes.pop(key, None)   # (its compatibility may follow a stale one's)
        for key in stale:
            del self.nodes[key], self.looked_at[key]
        self.graph.remove_nodes_from(stale)
        for package in packages:
            self._keys.pop((package.repo, package.name), None)
        return True

    # ---- nodes ----------------------------------------------------------------------

    def key(self, label: Label, config: Configuration | None) -> ConfiguredKey:
        memo = (label, config.hash if config is not None else None)
        keys = self._keys.get((label.repo, label.package))
        known = keys.get(memo) if keys is not None else None
        if known is not None:
            if self._looked is not None:   # (what it looked at, as the lookup would say)
                self._looked.add(label.package_id)
            return known
        known = self._key(label, config)
        self._keys.setdefault((label.repo, label.package), {})[memo] = known
        return known

    def _key(self, label: Label, config: Configuration | None) -> ConfiguredKey:
        target = self.lookup(label)
        if config is None or target.kind in (SOURCE_FILE, PACKAGE_GROUP):
            return ConfiguredKey(target.label, None)
        incoming = target.rule_class.transition if target.is_rule else None
        if incoming is not None and incoming.startswith(TRANSITION):   # rule(cfg = t)
            config = self._transitioned(incoming, config, target)
        return ConfiguredKey(target.label, config.hash)

    def _transitioned(self, ref: str, config: Configuration, target: Target
                      ) -> Configuration:
        """`config` after the rule transition `ref`, applied to `target` (whose attributes
        the transition reads): one configuration."""
        branches = self._branches(ref, config, target)
        if len(branches) > 1:
            what, location = self.transitions.describe(ref)
            raise UserError(f"{what} on rule '{target.label}' returned {len(branches)} "
                            "configurations (a split transition); a rule's own transition "
                            "(rule(cfg = ...)) must return one", location=location,
                            hint="split transitions go on attributes: attr.label_list(cfg = "
                                 "...)")
        return branches[0][1]

    def _branches(self, ref: str, config: Configuration, target: Target
                  ) -> list[tuple[str | None, Configuration]]:
        """`config` after transition `ref`, applied to `target`: one configuration (keyed
        None), or a split transition's, by key."""
        branches = []
        for key, outputs in self.transitions.outputs(ref, config, target):
            if outputs:
                mode, platform, settings = apply_transition(outputs, config,
                                                            self.build_settings)
                branches.append((key, self._configuration(self.platforms.platform(platform),
                                                          mode, config.is_exec, settings)))
            else:
                branches.append((key, config))
        return branches

    def add(self, keys: Iterable[ConfiguredKey]) -> list[BpError]:
        """Configure `keys` and everything they depend on; returns the user errors met."""
        errors: list[BpError] = []
        queue = deque(k for k in keys if k not in self.nodes)
        queue.extend(key for _, _, key in self._dangling)
        while queue:
            key = queue.popleft()
            if key in self.nodes:
                continue
            try:
                node = self._configure(key)
            except UserError as error:
                errors.append(error)
                self.failed[key] = error
                node = ConfiguredTarget(key, self.lookup(key.label), self._config(key))
            self.nodes[key] = node
            if self._graph is not None:
                self._add_to_graph(key, node)
            queue.extend(dep for _, dep in node.deps if dep not in self.nodes)
        for pred, attr, key in self._dangling:   # (forget() made the graph)
            self._graph.add_edge(pred, key, attr=attr)
        self._dangling = []
        return errors

    def _config(self, key: ConfiguredKey) -> Configuration | None:
        return self.configurations[key.config][0] if key.config else None

    def _configure(self, key: ConfiguredKey) -> ConfiguredTarget:
        self._looked = {key.label.package_id}
        try:
            return self._configure_looking(key)
        finally:
            looked = frozenset(self._looked)   # (most are the same few: kept once)
            self.looked_at[key] = self._looked_sets.setdefault(looked, looked)
            self._looked = None

    def _configure_looking(self, key: ConfiguredKey) -> ConfiguredTarget:
        target = self.lookup(key.label)
        config = self._config(key)
        if not target.is_rule:
            deps = ()
            if target.generating_rule is not None:
                deps = (("", self.key(target.generating_rule, config)),)
            return ConfiguredTarget(key, target, config, deps=deps)
        assert config is not None
        _, platform = self.configurations[config.hash]

        def resolve(name: str) -> Any:
            try:
                return self.conditions.resolve(target.attrs.get(name), name, target.label,
                                               config, platform)
            except UserError as error:
                error.location, error.source_line = self.graph_loader.attr_position(
                    target, name)
                raise

        unmet = [v for v in resolve("target_compatible_with") or ()
                 if not self.platforms.has(platform, v, f"'{target.label}'")]
        if unmet:
            return ConfiguredTarget(key, target, config,
                                    incompatible=f"needs '{unmet[0]}'")
        configurable = [name for name, value in target.attrs.items()
                        if isinstance(value, _CONFIGURABLE)]
        # most values are plain: nothing to resolve, and the target's own (read-only)
        # mapping serves as is
        attrs: Mapping[str, Any] = target.attrs
        if configurable:
            attrs = dict(attrs)
            for name in configurable:
                attrs[name] = resolve(name)
        setting = target.rule_class.build_setting
        if setting is not None and setting.type == "label":   # label_flag: what it names
            chosen = config.setting_values.get(str(target.label))
            if chosen is not None:
                attrs = {**attrs, "build_setting_default": self._setting_value(target, chosen)}
        if isinstance(attrs, dict):
            attrs = MappingProxyType(attrs)
        try:
            resolution = self.toolchains.resolve(
                target.label, target.rule_class.toolchains, platform, config,
                tuple(attrs.get("exec_compatible_with", ())))
        except UserError as error:
            error.location = error.location or target.location
            raise
        exec_config = self.exec_configuration(resolution.exec_platform)
        deps: list[tuple[str, ConfiguredKey]] = []
        splits: dict[str, tuple[str, ...]] = {}
        for name in target.rule_class.dependency_attrs:
            spec = target.rule_class.attrs[name]
            dep_config = exec_config if spec.cfg == "exec" else config
            if spec.cfg and spec.cfg.startswith(TRANSITION):   # attr.label(cfg = t)
                branches = self._branches(spec.cfg, config, target)
                if branches[0][0] is not None:   # a split transition
                    splits[name] = tuple(key for key, _ in branches)
                    deps += [(name, self.key(label, branch)) for label in labels_in(
                        attrs[name]) for _, branch in branches]
                    continue
                dep_config = branches[0][1]
            if attrs[name]:   # (most label attributes of most targets are empty)
                deps += [(name, self.key(label, dep_config)) for label in labels_in(attrs[name])]
        applied = [a for name in target.rule_class.dependency_attrs
                   for a in target.rule_class.attrs[name].aspects]
        if applied:
            deps += self.aspect_tools(applied, config, exec_config)
        deps += [(IMPLICIT_TESTS, self.key(label, config))
                 for label in target.attrs.get(IMPLICIT_TESTS, ())]
        deps += [(CONDITION_EDGE, self.key(label, config)) for label in dict.fromkeys(
            select_conditions(target.attrs[name] for name in configurable))]
        toolchains = tuple((t, self.key(impl, config)) for t, impl in resolution.toolchains)
        deps += [(TOOLCHAIN_EDGE, k) for _, k in toolchains]
        return ConfiguredTarget(key, target, config, attrs, tuple(deps),
                                toolchains, resolution.exec_platform.label,
                                splits=MappingProxyType(splits))

    def aspect_tools(self, aspect_ids: Iterable[str], config: Configuration,
                     exec_config: Configuration) -> list[tuple[str, ConfiguredKey]]:
        """The edges to the targets of the private label attributes of aspects
        `aspect_ids` and of those they require (`ASPECT_EDGE` + "<id>\t<attribute>"),
        for a target in `config` that applies them: their tools and data."""
        edges = []
        pending, seen = list(aspect_ids), set()
        while pending:
            aspect_id = pending.pop(0)
            if aspect_id in seen:
                continue
            seen.add(aspect_id)
            decl = self.loader.aspects[aspect_id]
            pending += decl.requires
            for name, spec in decl.label_attrs.items():
                dep_config = exec_config if spec.cfg == "exec" else config
                edges += [(f"{ASPECT_EDGE}{aspect_id}\t{name}", self.key(label, dep_config))
                          for label in labels_in(spec.default)]
        return edges

    def cli_aspects(self, texts: Iterable[str]) -> list[str]:
        """The ids of the aspects that --aspects=<file>%<name> flags name (their files
        loaded); a flag that names no aspect is left for the analysis to report."""
        ids = []
        for text in texts:
            file, _, name = text.partition("%")
            try:
                label = parse_label(file)
                self.loader.env.load(label)
            except (LabelError, BpError):
                continue
            found = self.loader.aspect_exports.get((str(label), name))
            if found is not None:
                ids.append(found)
        return ids

    def _setting_value(self, setting: Target, value: str) -> Label:
        """The target that a label setting's value names, which must exist."""
        label = parse_label(value)
        try:
            self.lookup(label)
        except UserError as error:
            raise UserError(f"{setting.kind} '{setting.label}' is set to '{value}': "
                            f"{error.message}", location=setting.location,
                            hint=error.hint) from None
        return label

    def incompatibility(self, key: ConfiguredKey) -> str | None:
        """Why `key` cannot be built for its platform (itself or through a dependency)."""
        self._find_incompatible(key)
        chain: list[ConfiguredKey] = []
        cause = self._causes[key]
        while isinstance(cause, ConfiguredKey):   # walk to the incompatible target
            chain.append(cause)
            cause = self._causes[cause]
        if cause is None:
            return None
        return "".join(f"depends on '{dep.label}', which " for dep in chain) + cause

    def _find_incompatible(self, start: ConfiguredKey) -> None:
        """Record in `_causes` why `start` and the nodes below it are incompatible: their
        own reason (a string), the first incompatible dependency (a key), or None.

        A depth-first walk with an explicit stack, so that chains of any length work; a
        node met again while on the stack (a cycle) reads as compatible."""
        if start in self._causes:
            return
        self._causes[start] = None
        stack = [(start, iter(self.nodes[start].deps))]
        while stack:
            key, deps = stack[-1]
            if self._causes[key] is None and self.nodes[key].incompatible is not None:
                self._causes[key] = self.nodes[key].incompatible
            if self._causes[key] is None:
                for _, dep in deps:
                    if dep not in self._causes:
                        self._causes[dep] = None
                        stack.append((dep, iter(self.nodes[dep].deps)))
                        break
                    if self._causes[dep] is not None:
                        self._causes[key] = dep
                        break
                else:
                    stack.pop()
                continue
            stack.pop()   # decided: its own reason or a dependency's; tell the dependent
            if stack and self._causes[stack[-1][0]] is None:
                self._causes[stack[-1][0]] = key

    def incompatible_error(self, key: ConfiguredKey) -> UserError:
        config = self._config(key)
        return UserError(
            f"target '{key.label}' is incompatible with the target platform "
            f"'{config.platform}' and was requested by name: it "
            f"{self.incompatibility(key)}",
            location=self.lookup(key.label).location,
            hint="build it for a platform that has the constraint (--platforms=...), or "
                 "use a wildcard pattern, which skips incompatible targets")


def _name(value: Label | None) -> str:
    return value.name if value is not None else ""
