"""Runs rule implementations over the configured graph and collects the action graph.

Plans the targets (dependencies first), hands the plan to Starlark (analysis.bzl) as
generated programs (one per part of the plan, each in a module of its own over the last
one's frozen, so that Starlark's collector walks one part's values at a time), and
records through natives what it declares: files, actions, results. Executes nothing.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import posixpath
import weakref
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping


import networkx as nx

from buildpy.actions.graph import (RUNFILES_MANIFEST, Action, ActionGraph, ActionKind,
                                   Artifact, runfiles_tree)
from buildpy.config.configuration import OPTION_DEFAULTS, Configuration
from buildpy.config.configured import (ASPECT_EDGE, ConfiguredGraph, ConfiguredKey,
                                       ConfiguredTarget)
from buildpy.core.errors import BpError, ErrorGroup, UserError
from buildpy.core.label import Label, LabelError, parse_label
from buildpy.analysis.results import TargetResult
from buildpy.lang.env import ANALYSIS_ID, RULES_GLOBAL, StarlarkEvalError
from buildpy.lang.values import Frame
from buildpy.loading.rule_class import RuleClass
from buildpy.loading.target import GENERATED_FILE, Target

OUTPUT_ROOT = "bp-out"
# Tags that become execution requirements of a target's actions, as in Bazel.
_PART = 1000   # plan entries per top-level statement of the analysis driver
_BASE = "<first analysis>"   # the frozen module of an Analyzer's first analysis
_PART_BASE = "<analysis part>"   # the frozen module of the part before
EXECUTION_TAGS = frozenset({"local", "no-sandbox", "no-cache", "no-remote",
                            "requires-network", "block-network", "exclusive"})


# Told of each part of the plan once it is analyzed: its actions, and its targets'
# results (in the order analyzed).
PartListener = Callable[[list[Action], list[tuple[ConfiguredKey, TargetResult]]], None]


@dataclass(frozen=True)
class AnalysisResult:
    actions: ActionGraph
    targets: Mapping[ConfiguredKey, TargetResult]
    errors: tuple[BpError, ...] = ()   # with keep_going: the targets whose analysis failed


def output_dir(config: Configuration) -> str:
    """`bp-out/linux_x86_64-fastbuild`, plus the hash when --define or build settings
    (from flags or transitions: Bazel's `-ST-<hash>`) make it differ."""
    name = config.mnemonic + (f"-{config.hash}" if config.defines or config.build_settings
                              else "")
    return f"{OUTPUT_ROOT}/{name}"


def package_path(label: Label) -> str:
    """Where a package's files sit below an output (or exec) root."""
    base = f"external/{label.repo}/{label.package}" if label.repo else label.package
    return base.rstrip("/")


def source_exec_path(label: Label) -> str:
    return posixpath.join(package_path(label), label.name)


def short_path(label: Label) -> str:
    if label.repo:
        return posixpath.join("..", label.repo, label.package, label.name)
    return posixpath.join(label.package, label.name)


def _label_data(label: Label) -> dict:
    return {"name": label.name, "package": label.package, "workspace_name": label.repo,
            "workspace_root": f"external/{label.repo}" if label.repo else "",
            "__bp_label__": str(label)}


def _file_data(path: str, owner: Label, is_source: bool, root: str,
               is_directory: bool = False, is_symlink: bool = False) -> dict:
    relative = path[len(root) + 1:] if root and path.startswith(root + "/") else path
    if relative.startswith("external/"):
        relative = "../" + relative[len("external/"):]
    basename = posixpath.basename(path)
    return {"path": path, "short_path": relative, "basename": basename,
            "dirname": posixpath.dirname(path),
            "extension": basename.rsplit(".", 1)[1] if "." in basename else "",
            "is_source": is_source, "is_directory": is_directory, "is_symlink": is_symlink,
            "root": root,
            "owner": _label_data(owner)}


class _Recorder:
    """The natives' side of analysis: files declared, actions, results, errors."""

    def __init__(self, analyzer: "Analyzer"):
        # (weak: the Analyzer holds its recorder, and a cycle between them would keep an
        # analysis no longer used in memory, bp running without the cyclic collector)
        self.analyzer = weakref.proxy(analyzer)
        self.declared: dict[str, Artifact] = {}
        self._directories: set[str] = set()   # every parent directory of a declared path
        self.actions: list[Action] = []
        self.results: dict[ConfiguredKey, TargetResult] = {}
        self.current: int | None = None
        # executables by path, with their targets; MANIFESTs of the tools' runfiles trees
        self._executables: dict[str, tuple[ConfiguredKey, TargetResult]] = {}
        self._trees: set[str] = set()
        self._first_action = 0   # the first action of the target being analyzed
        # a later analysis (analyze_again): the outputs the plan's entries declared for
        # it, and the tools' trees dropped with a tool that runs again (made again with it)
        self.predeclared: set[str] = set()
        self._lost_trees: set[str] = set()
        self.moved: set[int] = set()   # targets analyzed again whose providers changed
        self._strings: dict[str, str] = {}   # (see `_interned`)

    def key(self, tid: int) -> ConfiguredKey:
        return self.analyzer.plan_keys[tid]

    def error(self, tid: int, message: str, frames: tuple[Frame, ...]) -> UserError:
        key = self.key(tid)
        target = self.analyzer.configured.nodes[key].target
        stack = [f"  {f.path}:{f.line}, in {f.function}" for f in frames
                 if not f.path.startswith("<")]
        text = f"in {target.kind_text} '{key}': {message}"
        if stack:
            text += "\nStarlark stack (most recent call last):\n" + "\n".join(stack)
        return UserError(text, location=target.location)

    def declare(self, tid: int, path: str, kind: str, *, frames) -> dict:
        """A file that target `tid` declares: `kind` is "file", "directory" or
        "symlink" (an unresolved symbolic link)."""
        key = self.key(tid)
        node = self.analyzer.configured.nodes[key]
        out_dir = self.analyzer.out_dir(node)
        normal = posixpath.normpath(path)
        if normal != path or not path.startswith(out_dir + "/"):
            raise self.error(tid, f"cannot declare '{path}': it is outside the output "
                                  f"directory of package '{node.target.label.package}' "
                                  f"({out_dir})", frames)
        existing = self.declared.get(path)
        if existing is not None:
            raise self.error(tid, f"'{path}' is declared twice: by '{existing.owner}' and by "
                                  f"'{key}'", frames)
        clash = self._clash(path)
        if clash is not None:
            raise self.error(tid, f"'{path}' clashes with '{clash.path}', declared by "
                                  f"'{clash.owner}': a file cannot also be a directory",
                             frames)
        is_directory, is_symlink = kind == "directory", kind == "symlink"
        self.declared[path] = Artifact(path, False, str(key), is_directory, is_symlink)
        parent = posixpath.dirname(path)
        while parent and parent not in self._directories:
            self._directories.add(parent)
            parent = posixpath.dirname(parent)
        root = self.analyzer.bin_dir(node.configuration)
        return _file_data(path, node.target.label, False, root, is_directory, is_symlink)

    def _clash(self, path: str) -> Artifact | None:
        """A declared file that is a parent directory of `path`, or lies below it."""
        parent = posixpath.dirname(path)
        while parent:
            if parent in self.declared and not self.declared[parent].is_directory:
                return self.declared[parent]
            parent = posixpath.dirname(parent)
        if path not in self._directories:
            return None
        prefix = path + "/"
        return next((a for p, a in self.declared.items() if p.startswith(prefix)), None)

    def _interned(self, values: Iterable[str]) -> tuple[str, ...]:
        """`values`, each as the one string of its value that this analysis keeps: a
        path is an output of one action, an input of others and a file of targets, and
        one object for all of them makes each process's copy of the actions smaller, and
        the saved analysis too (pickle writes an object once)."""
        strings = self._strings
        return tuple([strings.setdefault(value, value) for value in values])

    def _intern(self, value: str) -> str:
        """One value, as `_interned`."""
        return self._strings.setdefault(value, value)

    def action(self, tid: int, text: str, *, frames) -> None:
        """An action of target `tid`, its fields as a JSON object."""
        data = json.loads(text)
        key = self.key(tid)
        for output in data["outputs"]:
            artifact = self.declared.get(output)
            if artifact is None or artifact.owner != str(key):
                raise self.error(tid, f"output '{output}' of {data['mnemonic']} was not "
                                      "declared by this target", frames)
        node = self.analyzer.configured.nodes[key]
        platform = self.analyzer.exec_properties(node)
        requirements = dict(data.get("execution_requirements", {}))
        for tag in node.attrs.get("tags", ()):   # Bazel passes these tags on to actions
            if tag in EXECUTION_TAGS:
                requirements.setdefault(tag, "")
        self._tool_trees(itertools.chain(data.get("tools", ()), data.get("inputs", ())))
        interned = self._interned
        self.actions.append(Action(
            owner=str(key), owner_label=str(key.label), configuration=key.config or "",
            mnemonic=self._intern(data["mnemonic"]), kind=ActionKind(data["kind"]),
            outputs=interned(data["outputs"]),
            inputs=interned(dict.fromkeys(data.get("inputs", ()))),
            tools=interned(dict.fromkeys(data.get("tools", ()))),
            argv=interned(data.get("argv", ())),
            env=tuple(sorted(data.get("env", {}).items())),
            progress_message=data.get("progress_message", ""),
            execution_requirements=tuple(sorted(requirements.items())),
            platform=platform, content=data.get("content"),
            substitutions=tuple(data.get("substitutions", {}).items()),
            target=data.get("target"), is_executable=bool(data.get("is_executable")),
            use_default_shell_env=bool(data.get("use_default_shell_env")),
            output_directories=tuple(o for o in data["outputs"]
                                     if self.declared[o].is_directory),
            output_symlinks=tuple(o for o in data["outputs"] if self.declared[o].is_symlink)))

    def result(self, tid: int, text: str) -> None:
        """What target `tid` gives later phases: JSON [files, executable, runfiles, env,
        a test's [args, env (expanded), ExecutionInfo requirements] or null, runfile
        links]."""
        files, executable, runfiles, environment, test, links = json.loads(text)
        args, env, requirements = test or ((), {}, {})
        key = self.key(tid)
        if executable is not None:
            executable = self._intern(executable)
        result = self.results[key] = TargetResult(
            self._interned(files), executable, self._interned(runfiles),
            MappingProxyType(dict(environment)),
            tuple(args), tuple(sorted(env.items())), tuple(map(tuple, links)),
            tuple(sorted(requirements.items())))
        if executable is not None:
            self._executables.setdefault(executable, (key, result))
            self._make_executable(executable)
            manifest = f"{executable}{RUNFILES_MANIFEST}"
            if manifest in self._lost_trees:
                self._lost_trees.discard(manifest)
                self._tool_trees([manifest])

    def _make_executable(self, path: str) -> None:
        """A target's executable that this target makes itself is executable, as every
        output is in Bazel, even when the rule's write() did not ask for it or its
        command (a genrule's `echo ... > $@`) did not make it so."""
        for index in range(self._first_action, len(self.actions)):
            action = self.actions[index]
            if path in action.outputs and not action.is_executable:
                self.actions[index] = dataclasses.replace(action, is_executable=True)

    def _tool_trees(self, paths: Iterable[str]) -> None:
        """The runfiles tree of each tool whose MANIFEST is among an action's `paths`,
        made by the first action that needs it (as in Bazel, the tool's target owns it)."""
        for path in paths:
            if not path.endswith(RUNFILES_MANIFEST) or path in self._trees:
                continue
            known = self._executables.get(path[:-len(RUNFILES_MANIFEST)])
            if known is None:   # a file of that name, not a tree
                continue
            key, result = known
            self._trees.add(path)
            self.actions.append(runfiles_tree(
                str(key), str(key.label), key.config or "", result.executable, result.runfiles,
                self.analyzer.workspace_name, result.runfile_links))

    def requested(self, tid: int, text: str) -> None:
        """The files of requested target `tid` that --output_groups asks for."""
        key = self.key(tid)
        self.results[key] = dataclasses.replace(self.results[key],
                                                files=tuple(json.loads(text)))

    def canonical(self, tid: int, text: str, *, frames) -> str:
        label = self.key(tid).label
        try:
            return str(parse_label(text, label.package_id))
        except LabelError as error:
            raise self.error(tid, error.message, frames) from None

    def discard(self, key: ConfiguredKey, keep: set[str] | frozenset = frozenset()) -> None:
        """Forget what a target declared (but the paths in `keep`) and did: its analysis
        failed, or it runs again, or it is no longer in the graph."""
        owner = str(key)
        actions = []
        for action in self.actions:
            if action.owner != owner:
                actions.append(action)
            elif action.kind is ActionKind.RUNFILES:   # a tool's tree: made again with it
                self._trees.discard(action.outputs[0])
                self._lost_trees.add(action.outputs[0])
        self.actions = actions
        for path in [p for p, a in self.declared.items() if a.owner == owner and p not in keep]:
            del self.declared[path]
        for path in [p for p, (k, _) in self._executables.items() if k == key]:
            del self._executables[path]

    def again(self, tid: int) -> None:
        """Target `tid` runs again in a later analysis."""
        self.discard(self.key(tid), keep=self.predeclared)
        self.start(tid)

    def start(self, tid: int) -> None:
        self.current = tid
        self._first_action = len(self.actions)

    def fail(self, tid: int, message: str, *, frames) -> None:
        raise self.error(tid, message, frames)


@dataclass
class _Feed:
    """What the analysis driver's natives hand Starlark: the plan's shared part, and
    each part of it (`part(i)`)."""

    shared: str | None
    part: Callable[[int], str] | None


class Analyzer:
    """Analyzes configured targets of one ConfiguredGraph."""

    def __init__(self, configured: ConfiguredGraph, workspace_name: str = "",
                 again: bool = False):
        """With `again`, the Analyzer keeps what it needs to analyze a graph configured
        anew after BUILD files changed (`analyze_again`): each entry of its plan as
        it was, its Starlark state."""
        self.configured = configured
        self.loader = configured.loader
        self.workspace_name = workspace_name or configured.settings.name or "__main__"
        self.plan_keys: list[ConfiguredKey] = []
        self._texts: dict[ConfiguredKey, str] | None = {} if again else None
        self.prepared_again = False   # analyze_again's module is its own (prepare_again)

    # ---- paths ----------------------------------------------------------------------

    def bin_dir(self, config: Configuration | None) -> str:
        return f"{output_dir(config)}/bin" if config is not None else ""

    def out_dir(self, node: ConfiguredTarget) -> str:
        return posixpath.join(self.bin_dir(node.configuration),
                              package_path(node.target.label)).rstrip("/")

    def exec_properties(self, node: ConfiguredTarget) -> tuple[tuple[str, str], ...]:
        """The platform properties of the target's actions: its execution platform's
        `exec_properties`, overridden key by key by the target's own (as in Bazel)."""
        properties = {}
        if node.exec_platform is not None:
            platform = self.configured.platforms.platform(node.exec_platform)
            properties.update(platform.exec_properties)
        properties.update(node.target.attrs.get("exec_properties") or {})
        return tuple(sorted(properties.items()))

    # ---- the run --------------------------------------------------------------------

    def analyze(self, keys: Iterable[ConfiguredKey],
                on_part: PartListener | None = None,
                keep_going: bool = False) -> AnalysisResult:
        """Analyze `keys` and their dependencies; `on_part` hears of the actions and
        results of each part of the plan as soon as it is analyzed (dependencies come
        first), before the whole graph is checked.

        A target whose analysis fails stops the analysis, unless `keep_going` (then it
        and what depends on it are left out, and the errors returned), or its
        configuration allows analysis failures (an analysis test's target under test:
        it then gives its dependents AnalysisFailureInfo)."""
        keys = list(keys)
        self._cli_tools = self._cli_aspect_tools()
        errors = self.configured.add(keys + [k for _, k in self._cli_tools])
        if errors:
            raise ErrorGroup.of(errors)
        order = self._order(list(dict.fromkeys([k for _, k in self._cli_tools] + keys)))
        self.plan_keys = order
        self.ids = {key: i for i, key in enumerate(order)}
        self.recorder = recorder = _Recorder(self)
        self._rules: dict[tuple[str, str], int] = {}
        rules = self._rules
        self._rule_infos: list[dict] = []
        self._attr_specs: list[dict] = []
        self._configs: dict[Configuration | None, int] = {}
        self._config_infos: list[dict] = []
        plan = [self._entry(i, key, rules) for i, key in enumerate(order)]
        options = self.configured.options
        # aspects and the command line's output groups read any target's analysis, at any
        # time: then every part runs in one module, whose state keeps all of it
        across = bool(self._cli_tools or options.aspects or options.output_groups or any(
            info["aspects"] for info in self._rule_infos))
        if self._texts is not None:
            if across:
                self._texts = None   # analyze afresh
            else:
                self._texts = {key: self._text(key, entry) for key, entry in zip(order, plan)}
                self._nodes = {key: self.configured.nodes[key] for key in order}
                # what the keys need (what analyze_again looks at)
                self._needed, self._needed_keys = set(order), keys
        self.loader.analysis = recorder
        # (the natives hold the feed, never the Analyzer: Starlark's module holds them,
        # and a cycle through it is never collected)
        feed = self._feed = _Feed(None, None)
        try:
            # JSON crosses into Starlark far faster than the values themselves
            feed.shared = json.dumps({
                "rules": self._rule_infos, "configs": self._config_infos,
                "workspace_name": self.workspace_name,
                "aspects": bool(self.configured.options.aspects)})
            parts = [json.dumps(plan[i:i + _PART]) for i in range(0, len(plan), _PART)]
            del plan   # (as JSON it takes a fraction of the memory)
            self._failed: set[int] = set()   # ids left out (keep_going)
            told = [0, 0]   # actions and results already told to on_part

            def tell() -> None:
                actions, results = recorder.actions, recorder.results
                on_part(actions[told[0]:], list(itertools.islice(results.items(), told[1],
                                                                 None)))
                told[:] = len(actions), len(results)

            def part(i: int) -> str:
                if on_part is not None and i > 0:
                    tell()
                if not self._failed:
                    return parts[i]
                return json.dumps([e for e in json.loads(parts[i])
                                   if e["id"] not in self._failed])

            feed.part = part
            natives = {"_bp_plan_shared": lambda: feed.shared,
                       "_bp_plan_part": lambda i: feed.part(i)}
            module = self.loader.env.run_generated(
                "<analysis driver>", self._driver(rules), natives,
                context="error during analysis")
            errors: list[BpError] = []
            for i in range(len(parts)):
                if i > 0 and not across:
                    module = self._next_part(module, natives, i)
                while self._run_part(module, i, keep_going, errors) is not None:
                    pass   # again, from the target after the one that failed
            self._top_level(module, keys)
            if on_part is not None:
                tell()
            if self._texts is not None:
                self._module = module   # analyze_again runs in it
                # the rule kinds and configurations its state holds (an analysis again
                # that runs no target leaves the ones it added for the next to send)
                self._sent = len(self._rule_infos), len(self._config_infos)
        finally:
            self.loader.analysis = None
            feed.shared = feed.part = None
        return AnalysisResult(ActionGraph.build(recorder.actions, recorder.declared),
                              MappingProxyType(recorder.results), tuple(errors))

    def _next_part(self, module: Any, natives: dict[str, Callable[..., Any]],
                   i: int) -> Any:
        """The module part `i` of the plan runs in: the last one's frozen, and a new one
        whose state holds what this part's targets read of the targets analyzed before
        (analysis.bzl's `part_state`). Starlark's collector walks every value not
        frozen after each program, so that each part's walk stays the size of a part,
        where in one module it grew with all the parts before it."""
        first = i * _PART   # (ids are places in the plan)
        ids, nodes, failed = self.ids, self.configured.nodes, self._failed
        needed = set()
        for tid, key in enumerate(self.plan_keys[first:first + _PART], first):
            if tid in failed:
                continue
            node = nodes[key]
            needed.update(ids[dep] for _, dep in node.deps)
            needed.update(ids[dep] for _, dep in node.toolchains)
        needed = sorted(tid for tid in needed if tid < first)
        return self.loader.env.run_generated(
            "<analysis driver>",
            f'load("{ANALYSIS_ID}", "analyze", "fail_target", "part_state")\n'
            f'load("{_PART_BASE}", _BASE_RULES = "RULES", _BASE_STATE = "STATE")\n'
            "RULES = _BASE_RULES\n"
            f"STATE = part_state(_BASE_STATE, {json.dumps(needed)}, {_PART})\n",
            natives, "error during analysis", given={_PART_BASE: module.freeze()})

    @property
    def can_analyze_again(self) -> bool:
        return self._texts is not None and hasattr(self, "_module")

    def analyze_again(self, configured: ConfiguredGraph,
                      keys: Iterable[ConfiguredKey]) -> AnalysisResult | None:
        """A later analysis by the same Analyzer, in the same Starlark state, of a graph
        configured anew after BUILD files changed (the .bzl files and the flags are the
        same, or the caller makes a new Analyzer): targets keep their ids, and only the
        ones whose plan entry changed, or that depend on a target whose providers
        changed, run again (analysis.bzl's `analyze_again`). None when the graph now
        has a rule that applies aspects (which read across targets): analyze afresh.
        After an error, or None, the Analyzer cannot be used again."""
        assert self.can_analyze_again
        texts = self._texts
        self._texts = None   # (until this analysis succeeds)
        self.configured = configured
        keys = list(keys)
        errors = configured.add(keys)
        if errors:
            raise ErrorGroup.of(errors)
        nodes = configured.nodes
        for key in nodes:
            if key not in self.ids:
                self.ids[key] = len(self.plan_keys)
                self.plan_keys.append(key)
        fresh = {key: node for key, node in nodes.items() if self._nodes.get(key) is not node}
        # what the keys need: a target configured but not needed (a manual one that
        # //... names) is not analyzed, as the first analysis did not analyze it
        needed = self._needed_now(keys, fresh)
        recorder = self.recorder
        # gone from the graph, or no longer needed (analyzed afresh if needed again: its
        # dependencies may have changed meanwhile)
        for key in [k for k in texts if k not in needed]:
            recorder.discard(key)
            recorder.results.pop(key, None)
            del texts[key]
            self._nodes.pop(key, None)
        rules_before, configs_before = self._sent
        recorder.predeclared = set()
        entries = {}
        for key, node in fresh.items():
            if key not in needed:
                continue
            self._nodes[key] = node
            entry = self._entry(self.ids[key], key, self._rules)
            text = self._text(key, entry)
            if texts.get(key) != text:
                entries[key] = entry
            texts[key] = text
        new_rules = [(rule, i) for rule, i in self._rules.items() if i >= rules_before]
        if any(info["aspects"] for info in self._rule_infos[rules_before:]):
            return None
        self._feed.shared = json.dumps({"rules": self._rule_infos[rules_before:],
                                        "configs": self._config_infos[configs_before:]})
        self.prepare_again()
        lines = self._rule_loads(new_rules)
        lines.append("again(STATE, json.decode(_bp_plan_shared()))")
        lines += [f"RULES[{i}] = _rule_{i}" for _, i in new_rules]
        self.loader.analysis = recorder
        try:
            if self._run_again(self._order_again(keys, entries, needed), entries,
                               "\n".join(lines) + "\n"):
                self._sent = len(self._rule_infos), len(self._config_infos)
        finally:
            self.loader.analysis = None
            self._feed.shared = self._feed.part = None
        self._texts = texts
        return AnalysisResult(ActionGraph.build(recorder.actions, recorder.declared),
                              MappingProxyType(dict(recorder.results)))

    def prepare_again(self) -> None:
        """Before the first analysis again (done by it, if not ahead of it, between
        builds): freeze the first analysis's module and go on in one of its own, whose
        state copies the frozen one at its top level (analysis.bzl's `state_again`).
        Each program run in a module costs a pass of Starlark's collector over its
        values not frozen, about 60 ms at 10,000 targets for the first analysis's,
        and every analysis again runs one or more. Freezing them costs about four such
        passes, once."""
        if self.prepared_again:
            return
        feed = self._feed
        base = self._module.freeze()
        del self._module   # (until the new one is made)
        self._module = self.loader.env.run_generated(
            "<analysis driver>",
            f'load("{ANALYSIS_ID}", "analyze_again", "again", "fail_target", '
            '"state_again")\n'
            f'load("{_BASE}", _BASE_RULES = "RULES", _BASE_STATE = "STATE")\n'
            "RULES = dict(_BASE_RULES)\n"
            "STATE = state_again(_BASE_STATE)\n",
            {"_bp_plan_shared": lambda: feed.shared, "_bp_plan_part": lambda i: feed.part(i)},
            "error during analysis", given={_BASE: base})
        self.prepared_again = True

    def _needed_now(self, keys: list[ConfiguredKey],
                    fresh: Mapping[ConfiguredKey, ConfiguredTarget]) -> set[ConfiguredKey]:
        """What `keys` need now: what they needed in the last analysis, unless the keys
        differ or a target needed then was configured anew (`fresh`) with other
        dependencies; then walked again. (A target that no target needed depended on
        cannot be reached but through one of those; one gone from the graph was a key,
        or one that depended on it has other dependencies now.)"""
        last = self._needed
        if keys != self._needed_keys or any(
                key in last and node.deps != self._nodes[key].deps
                for key, node in fresh.items()):
            last = self._closure(keys)
        self._needed, self._needed_keys = last, keys
        return last

    def _closure(self, keys: list[ConfiguredKey]) -> set[ConfiguredKey]:
        """The keys and everything they depend on."""
        nodes = self.configured.nodes
        seen = set(keys)
        stack = list(seen)
        while stack:
            for _, dep in nodes[stack.pop()].deps:
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        return seen

    def _order_again(self, keys: list[ConfiguredKey], changed: Iterable[ConfiguredKey],
                     needed: set[ConfiguredKey]) -> list[ConfiguredKey]:
        """The changed targets and what depends on them among the `needed`, dependencies
        first (a cycle, which goes through a changed target, reported as `_order`
        does)."""
        graph = self.configured.graph
        maybe = set(changed).union(*(nx.ancestors(graph, key) for key in changed)) & needed
        try:
            return list(reversed(list(nx.topological_sort(graph.subgraph(maybe)))))
        except nx.NetworkXUnfeasible:
            self._order(keys)   # raises, naming the cycle
            raise

    def _run_again(self, order: list[ConfiguredKey], changed: dict[ConfiguredKey, dict],
                   driver: str) -> bool:
        """Analyze again, dependencies first, the targets whose entry `changed` and the
        ones that depend on a target whose providers changed (which analysis tells as it
        goes: `recorder.moved`). Entries go in batches; a target whose only reason to
        run would be a dependency in the batch not yet run waits for that batch's answer.
        The `driver` (the rules and configurations new to the state) runs in the first
        batch's program: each program run in the kept module costs a pass over its heap.
        With no batch it need not run (the next analysis sends them); True if it ran."""
        configured, recorder = self.configured, self.recorder
        nodes = configured.nodes
        moved: set[ConfiguredKey] = set()
        batch: list[dict] = []
        in_batch: set[ConfiguredKey] = set()

        def run() -> None:
            nonlocal driver
            recorder.moved = set()
            pending = batch
            while pending:
                self._feed.part = lambda i: json.dumps(pending)
                failed = self._run_part(self._module, 0, False, [], "analyze_again", driver)
                driver = ""
                if failed is None:
                    break
                # (a failure its configuration allows: the target now gives its
                # dependents AnalysisFailureInfo; the entries after it run next)
                pending = pending[[e["id"] for e in pending].index(failed) + 1:]
            moved.update(self.plan_keys[tid] for tid in recorder.moved)
            batch.clear()
            in_batch.clear()

        for key in order:
            deps = [dep for _, dep in nodes[key].deps]
            if key not in changed and in_batch and not any(d in moved for d in deps) and \
                    any(d in in_batch for d in deps):
                run()   # whether it runs depends on what that batch gives
            if key in changed or any(d in moved for d in deps):
                node = configured.nodes[key]
                entry = changed.get(key) or self._entry(self.ids[key], key, self._rules)
                entry["changed"] = key in changed
                entry["inputs"] = sorted({self.ids[dep] for _, dep in node.deps} |
                                         {self.ids[dep] for _, dep in node.toolchains})
                batch.append(entry)
                in_batch.add(key)
        if batch:
            run()
        return not driver

    def _text(self, key: ConfiguredKey, entry: dict) -> str:
        """A plan entry as analysis reads it, with what its actions get from the
        configured target beyond it (the execution platform's properties)."""
        node = self.configured.nodes[key]
        platform = self.exec_properties(node) if node.target.is_rule else ()
        return json.dumps([entry, platform])

    def _cli_aspect_tools(self) -> list[tuple[str, ConfiguredKey]]:
        """The tools and data of the --aspects aspects (their private label
        attributes), for the requested targets' configuration."""
        configured = self.configured
        if not configured.options.aspects:
            return []
        return configured.aspect_tools(configured.cli_aspects(configured.options.aspects),
                                       configured.top,
                                       configured.exec_configuration(configured.host))

    def _aspect_tools(self, edges: Iterable[tuple[str, ConfiguredKey]]) -> dict:
        """Aspect tool edges as the analysis reads them: {aspect id: {attribute: [ids]}}."""
        tools: dict[str, dict[str, list[int]]] = {}
        for name, key in edges:
            aspect_id, _, attr = name[len(ASPECT_EDGE):].partition("\t")
            tools.setdefault(aspect_id, {}).setdefault(attr, []).append(self.ids[key])
        return tools

    def _top_level(self, module: Any, keys: list[ConfiguredKey]) -> None:
        """What the command line asks of the requested targets: the aspects applied to
        them (--aspects) and the output groups built (--output_groups)."""
        options = self.configured.options
        if not options.aspects and not options.output_groups:
            return
        lines, aspects = [], []
        for i, text in enumerate(options.aspects):
            file, percent, name = text.partition("%")
            try:
                label = parse_label(file)
            except LabelError as e:
                raise UserError(f"--aspects={text}: {e.message}", hint=e.hint) from None
            if not percent or not name or not label.name.endswith(".bzl"):
                raise UserError(f"--aspects={text}: expected a .bzl file and the aspect it "
                                "exports, as //tools:lint.bzl%lint_aspect")
            absolute = "@" + str(label) if str(label).startswith("//") else str(label)
            lines.append(f'load("{absolute}", _top_level_{i} = "{RULES_GLOBAL}")')
            aspects.append(f"cli_aspect(_top_level_{i}, {json.dumps(name)}, "
                           f"{json.dumps(text)})")
        ids = [self.ids[k] for k in keys if k in self.ids]
        lines.append(f"top_level(STATE, [{', '.join(aspects)}], {json.dumps(ids)}, "
                     f"{json.dumps(list(options.output_groups))}, "
                     f"{json.dumps(self._aspect_tools(self._cli_tools))})")
        try:
            self.loader.env.run_generated("<analysis driver>", "\n".join(lines) + "\n",
                                          {}, "error applying --aspects", module)
        except StarlarkEvalError as error:
            raise StarlarkEvalError(error.context, _user_frames(error.starlark_text),
                                    error.hint) from None

    def _run_part(self, module: Any, i: int, keep_going: bool, errors: list[BpError],
                  function: str = "analyze", before: str = "") -> int | None:
        """Analyze part `i` of the plan (the targets not analyzed yet), after the
        statements `before`. None when the part ran to its end; else the id of a target
        that failed and was set aside (left out, or recorded as failed where its
        configuration allows it), the part to run again after it."""
        recorder = self.recorder
        try:
            self.loader.env.run_generated(
                "<analysis driver>",
                f"{before}{function}(RULES, STATE, json.decode(_bp_plan_part({i})))\n",
                {}, "error during analysis", module)
            return None
        except BpError as error:
            if recorder.current is None:
                raise
            tid = recorder.current
            key = self.plan_keys[tid]
            recorder.current = None
            if isinstance(error, StarlarkEvalError):
                target = self.configured.nodes[key].target
                error = StarlarkEvalError(
                    f"{target.location}: error analyzing {target.kind_text} '{key}'",
                    _user_frames(error.starlark_text), error.hint)
            config = self.configured.nodes[key].configuration
            allowed = bool(config and config.option("allow_analysis_failures"))
            if not (keep_going or allowed):
                raise error from None
            if not allowed:   # it and what depends on it are left out (part() skips them)
                failed = [key, *(k for k in nx.ancestors(self.configured.graph, key)
                                 if k in self.ids)]
                for k in failed:
                    recorder.discard(k)
                self._failed.update(self.ids[k] for k in failed)
                errors.append(error)
                return tid
            recorder.discard(key)
            message = error.render() if isinstance(error, StarlarkEvalError) else \
                error.message
            self.loader.env.run_generated(
                "<analysis driver>",
                f"fail_target(STATE, {tid}, {json.dumps(_label_data(key.label))}, "
                f"{json.dumps(message)}, {function == 'analyze_again'})\n", {},
                "error during analysis", module)
            return tid

    def _order(self, keys: list[ConfiguredKey]) -> list[ConfiguredKey]:
        """The keys and everything they depend on, dependencies first: a depth-first
        post-order from the keys in their order, each node's dependencies in graph order
        (so the same graph always gives the same order)."""
        nodes = self.configured.nodes
        successors = lambda key: dict.fromkeys(dep for _, dep in nodes[key].deps)  # noqa: E731
        order: list[ConfiguredKey] = []
        done: set[ConfiguredKey] = set()
        for root in keys:
            if root in done:
                continue
            path = [root]             # the chain being walked, to name a cycle
            on_path = {root}
            stack = [iter(successors(root))]
            while stack:
                for dep in stack[-1]:
                    if dep in on_path:
                        cycle = path[path.index(dep):] + [dep]
                        raise UserError(
                            "cycle in the configured graph: " +
                            " -> ".join(str(k) for k in cycle),
                            location=self.configured.nodes[dep].target.location,
                            hint="a target cannot depend on itself, directly or through "
                                 "the toolchains it resolves (a toolchain's target that "
                                 "needs that same toolchain type)")
                    if dep not in done:
                        path.append(dep)
                        on_path.add(dep)
                        stack.append(iter(successors(dep)))
                        break
                else:
                    stack.pop()
                    node = path.pop()
                    on_path.discard(node)
                    done.add(node)
                    order.append(node)
        return order

    def _driver(self, rules: dict[tuple[str, str], int]) -> str:
        """The program that prepares the analysis: the rules and the state; each part of
        the plan then runs as a program of its own, so that Starlark can collect each
        part's garbage before the next (in the next part's module, `_next_part`, unless
        the targets' analyses are read across parts)."""
        lines = ['load("%s", "analysis_state", "analyze", "fail_target", "cli_aspect", '
                 '"top_level", "analyze_again", "again")' % ANALYSIS_ID]
        lines += self._rule_loads(list(rules.items()))
        lines.append("RULES = {" + ", ".join(f"{i}: _rule_{i}" for i in rules.values()) + "}")
        lines.append("_SHARED = json.decode(_bp_plan_shared())")
        lines.append('STATE = analysis_state(_SHARED["rules"], _SHARED["configs"], '
                     '_SHARED["workspace_name"], _SHARED["aspects"])')
        return "\n".join(lines) + "\n"

    @staticmethod
    def _rule_loads(rules: list[tuple[tuple[str, str], int]]) -> list[str]:
        """Statements that bind each rule to `_rule_<index>`."""
        lines = []
        modules: dict[str, int] = {}   # files with rules of private names
        private = []
        for (module, kind), index in rules:
            absolute = "@" + module if module.startswith("//") else module
            if not kind.startswith("_"):
                lines.append(f'load("{absolute}", _rule_{index} = "{kind}")')
                continue
            if absolute not in modules:   # load() cannot name it: the file's rules can
                modules[absolute] = index   # (a name no later analysis binds again)
                lines.append(f'load("{absolute}", _rules_{modules[absolute]} = '
                             f'"{RULES_GLOBAL}")')
            private.append(f'_rule_{index} = _rules_{modules[absolute]}["{kind}"]')
        return lines + private

    # ---- plan entries ----------------------------------------------------------------------

    def _entry(self, index: int, key: ConfiguredKey, rules: dict) -> dict:
        """One target of the plan. What all targets of a rule kind or a configuration
        share is sent once (`_rule_info`, `_config_info`); attributes at their rule's
        default and label attributes without dependencies are left out."""
        node = self.configured.nodes[key]
        target = node.target
        if not target.is_rule:   # a file's result is itself: `bp build //p:out.txt`
            file = self._file_of(node)
            self.recorder.results[key] = TargetResult((file["path"],))
            return {"id": index, "kind": "file", "file": file}
        rule = target.rule_class
        if rule.defined_in == "WORKSPACE":   # //external:<name>, for query only
            raise UserError(f"'{target.label}' is a repository that WORKSPACE defines "
                            f"({rule.kind}), not a target to build",
                            location=target.location,
                            hint=f"build the repository's targets: @{target.label.name}//...")
        rule_index = rules.get((rule.defined_in, rule.kind))
        if rule_index is None:
            rule_index = rules[(rule.defined_in, rule.kind)] = len(rules)
            self._rule_infos.append(_rule_info(rule))
            self._attr_specs.append({name: spec for name, spec in rule.attrs.items()
                                     if spec.is_label or spec.is_output})
        defaults = self._rule_infos[rule_index]["defaults"]
        specs = self._attr_specs[rule_index]   # the label and output attributes
        ids = self.ids
        by_attr: dict[str, list[int]] = {}
        aspect_edges = []
        for attr, dep in node.deps:
            if attr.startswith(ASPECT_EDGE):
                aspect_edges.append((attr, dep))
            else:
                by_attr.setdefault(attr, []).append(ids[dep])
        attrs, deps, outputs, splits = {}, {}, {}, {}
        for name, value in node.attrs.items():
            if name[0] == "$":
                continue
            spec = specs.get(name)
            if spec is None:
                plain = _plain(value)
                if name not in defaults or defaults[name] != plain:
                    attrs[name] = plain
            elif spec.is_label:
                dep_ids = by_attr.get(name)
                if not dep_ids:
                    continue
                if name in node.splits:   # every branch's, and each branch's by its key
                    keys = node.splits[name]
                    deps[name] = dep_ids
                    splits[name] = [[k, dep_ids[i::len(keys)]] for i, k in enumerate(keys)]
                elif spec.type == "label":
                    deps[name] = dep_ids[0]
                elif spec.type == "label_list":
                    deps[name] = dep_ids
                else:
                    pairs = zip(dep_ids, value.values(), strict=True)
                    deps[name] = [[i, _plain(v)] for i, v in pairs]   # JSON keys are strings
            else:   # an output attribute
                labels = [value] if spec.type == "output" else list(value)
                files = [self._declared_output(key, label) for label in labels if label]
                if files:
                    outputs[name] = files
        entry = {
            "id": index, "kind": target.kind, "rule": rule_index,
            "cfg": self._config_index(node.configuration),
            "label": _label_data(target.label), "attrs": attrs, "deps": deps,
            "outputs": outputs,
            "toolchains": {str(t): ids[k] for t, k in node.toolchains},
            "out_dir": self.out_dir(node),
            "build_file_path": posixpath.join(package_path(target.label), "BUILD"),
        }
        if splits:
            entry["splits"] = splits
        if aspect_edges:
            entry["aspect_tools"] = self._aspect_tools(aspect_edges)
        if rule.build_setting is not None:
            entry["build_setting_value"] = self.configured.build_settings.value(
                target.label, node.configuration)
        return entry

    def _config_index(self, config: Configuration | None) -> int:
        index = self._configs.get(config)
        if index is None:
            index = self._configs[config] = len(self._config_infos)
            self._config_infos.append({
                "var": self._make_variables(config), "bin_dir": self.bin_dir(config),
                "config": {"hash": config.hash, "platform": str(config.platform),
                           "compilation_mode": config.compilation_mode, "cpu": config.cpu,
                           "os": config.os, "is_exec": config.is_exec},
                "options": {name: config.option(name) for name in OPTION_DEFAULTS},
                "constraints": sorted(map(str, config.constraints))})
        return index

    def _make_variables(self, config: Configuration) -> dict[str, str]:
        bin_dir = self.bin_dir(config)
        return {"COMPILATION_MODE": config.compilation_mode, "TARGET_CPU": config.bazel_cpu,
                "BINDIR": bin_dir, "GENDIR": bin_dir, **dict(config.defines)}

    def _declared_output(self, key: ConfiguredKey, label: Label) -> dict:
        node = self.configured.nodes[key]
        path = posixpath.join(self.out_dir(node), label.name)
        self.recorder.declared[path] = Artifact(path, False, str(key))
        self.recorder.predeclared.add(path)
        return _file_data(path, label, False, self.bin_dir(node.configuration))

    def _file_of(self, node: ConfiguredTarget) -> dict:
        target: Target = node.target
        if target.kind == GENERATED_FILE:
            rule_node = self.configured.nodes[ConfiguredKey(target.generating_rule,
                                                            node.key.config)]
            path = posixpath.join(self.out_dir(rule_node), target.label.name)
            return _file_data(path, target.label, False, self.bin_dir(node.configuration))
        return _file_data(source_exec_path(target.label), target.label, True, "")


def _user_frames(traceback: str) -> str:
    """A Starlark traceback without bp's own frames (<analysis>, <builtins>, ...)."""
    out, skip = [], False
    for line in traceback.splitlines():
        stripped = line.strip()
        if stripped.startswith("* <") or stripped.startswith("File <builtin>"):
            skip = stripped.startswith("* <")
            continue
        if skip and line.startswith("      "):
            continue
        skip = False
        out.append(line)
    if len(out) >= 1 and out[0].startswith("Traceback") and (
            len(out) == 1 or not out[1].strip().startswith("*")):
        out = out[1:]
    return "\n".join(out)


def _rule_info(rule: RuleClass) -> dict:
    """What every target of a rule kind shares: its label attributes, output attributes
    and the defaults of the others."""
    label_attrs, outputs, defaults = {}, {}, {}
    for name, spec in rule.attrs.items():
        if name.startswith("$"):
            continue
        if spec.is_label:
            label_attrs[name] = {
                "type": spec.type, "single": bool(spec.allow_single_file),
                "executable": spec.executable, "providers": _alternatives(spec.providers)}
        elif spec.is_output:
            outputs[name] = spec.type == "output"
        else:
            defaults[name] = _plain(spec.empty if spec.default is None else spec.default)
    return {"kind": rule.kind, "executable": rule.executable, "test": rule.test,
            "label_attrs": label_attrs, "outputs": outputs, "defaults": defaults,
            "aspects": any(spec.aspects for spec in rule.attrs.values())}


def _alternatives(providers: Any) -> list[list[int]]:
    """`providers = [A, B]` (all needed) or `[[A], [B, C]]` (any one list)."""
    if not providers:
        return []
    if all(isinstance(p, int) for p in providers):
        return [list(providers)]
    return [list(p) if isinstance(p, (tuple, list)) else [p] for p in providers]


_SCALARS = frozenset({str, int, bool, float, type(None)})


def _plain(value: Any) -> Any:
    """An attribute value as Starlark data."""
    if type(value) in _SCALARS:   # most values; an isinstance(Mapping) test is slow
        return value
    if isinstance(value, Label):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value
