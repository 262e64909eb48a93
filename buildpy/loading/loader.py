"""Loads packages: binds the Starlark natives, evaluates BUILD files, caches packages.

The single entry point of the loading phase for one package (`load_package`) and for
the WORKSPACE file. Builds no graph (see graph.py) and resolves no select().
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

from buildpy.core.errors import (BpError, EnvError, Location, UserError, did_you_mean,
                                  invalid_utf8)
from buildpy.core.host import bp_cache_home, host_cpu, host_os
from buildpy.core.label import (
    Label, LabelError, PackageId, parse_label, set_main_repository_name,
    set_repository_mapping,
)
from buildpy.core.reads import ReadLog
from buildpy.core.workspace import BUILD_FILES, OUTPUT_DIR, WORKSPACE_FILES, Workspace
from buildpy.external.repository import RepoOptions, Repositories
from buildpy.lang.env import IGNORED, SourceFile, StarlarkEnv, to_starlark
from buildpy.lang.values import Frame
from buildpy.loading import glob as globbing
from buildpy.loading.builder import FrameInfo, PackageBuilder
from buildpy.loading.coerce import CoercionError, coerce_value
from buildpy.loading.repositories import (
    EXTERNAL_PACKAGE, RepositoryNatives, WorkspaceRecord, external_package,
)
from buildpy.loading.rule_class import (
    ACCEPTED_RULE_PARAMS, AttrSpec, BuildSetting, DeclarationError, RuleClass, attr_spec,
    build_schema,
)
from buildpy.loading.target import Package

PRELUDE_REPO = "prelude"
PLATFORMS_REPO = "platforms"   # Bazel's constraints (os, cpu) and bp's platforms
TOOLCHAINS_REPO = "toolchains"  # bp's default toolchains (the toolchains/ directory)
PRELUDE_ENTRY = Label(PRELUDE_REPO, "", "prelude.bzl")
# Bazel rule repositories that BUILD files load standard rules from (prelude/compat).
COMPAT_REPOS = ("rules_cc", "rules_python", "rules_shell", "bazel_tools")
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(rule|provider)\s*\(")


def default_data_root(name: str) -> Path:
    """A directory shipped with bp (prelude/, toolchains/): inside the package when
    installed from a wheel, beside it in a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_data" / name, here.parent / name):
        if candidate.is_dir():
            return candidate
    raise EnvError(f"bp's {name}/ directory is missing (looked in {here.parent} and "
                   f"{here / '_data'})", hint="reinstall bp")


def default_prelude_root() -> Path:
    return default_data_root("prelude")


def default_repository_cache() -> Path:
    """Downloads by SHA-256, shared by every workspace: beside bp's disk cache."""
    return bp_cache_home() / "repository_cache"


def _downloader(options: RepoOptions, say: Callable[[str], None]):
    from buildpy.external.download import Downloader

    cache = None if options.cache_off else (options.repository_cache or
                                            default_repository_cache())
    return Downloader(cache, options.distdirs, say)


# the natives of MODULE.bazel files (buildpy/loading/modules.py)
MODULE_NATIVES = ("_bp_module", "_bp_bazel_dep", "_bp_override", "_bp_use_extension",
                  "_bp_extension_tag", "_bp_use_repo", "_bp_use_repo_rule")


def _quiet(line: str) -> None:
    pass


def _define_hint(repo: str) -> str:
    return (f"define it in the WORKSPACE file, before its first use: for example "
            f"local_repository(name = \"{repo}\", path = \"...\"), or http_archive(name = "
            f"\"{repo}\", urls = [...], sha256 = \"...\") loaded from "
            "@bazel_tools//tools/build_defs/repo:http.bzl")


class NoSuchPackage(UserError):
    pass


@dataclass(frozen=True)
class WorkspaceSettings:
    """What the WORKSPACE file declares."""

    name: str = ""
    toolchains: tuple[str, ...] = ()
    execution_platforms: tuple[str, ...] = ()


@dataclass(frozen=True)
class TransitionDecl:
    """A transition() (or analysis_test_transition()): its settings, and where its
    implementation is reachable (the .bzl file and global that export it)."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    fixed: dict | None            # analysis_test_transition's settings
    location: Location
    module: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class AspectDecl:
    """What the configured graph needs of an aspect(): its private label attributes
    (their default labels, resolved where the aspect was declared), and the aspects it
    `requires`."""

    label_attrs: Mapping[str, AttrSpec]
    requires: tuple[str, ...]
    location: Location


class Loader:
    """Evaluates BUILD files of one workspace into Packages, each at most once."""

    def __init__(self, workspace: Workspace, prelude_root: Path | None = None,
                 eval_timeout: float = 60.0, toolchains_root: Path | None = None,
                 reads: ReadLog | None = None, repo_options: RepoOptions = RepoOptions(),
                 output_base: Path | None = None, say: Callable[[str], None] = _quiet):
        self.workspace = workspace
        set_main_repository_name(workspace.name)
        set_repository_mapping({})   # (a MODULE.bazel sets it again)
        self.reads = reads or ReadLog()   # the workspace's files read, as they were read
        prelude = prelude_root or default_prelude_root()
        self.workspace_natives = RepositoryNatives(self, _downloader(repo_options, say), say)
        self._modules_args = (repo_options.registries, say)
        self._module_natives: Any = None   # made when a MODULE.bazel is first evaluated
        self.repos = Repositories(
            {"": workspace.root, PRELUDE_REPO: prelude, PLATFORMS_REPO: prelude / "platforms",
             TOOLCHAINS_REPO: toolchains_root or default_data_root("toolchains"),
             **{name: prelude / "compat" / name for name in COMPAT_REPOS}},
            workspace.root, output_base or workspace.root / OUTPUT_DIR,
            self.workspace_natives.run_rule, repo_options, say,
            replaceable=tuple(r for r in COMPAT_REPOS if r != "bazel_tools"))
        self.env = StarlarkEnv(self._resolve_bzl, self._natives(), eval_timeout=eval_timeout,
                               prelude_entry=PRELUDE_ENTRY, read=self._read_source,
                               plain_natives={
                                   "_bp_provider_name": self.provider_name,
                                   "_bp_analysis_start": lambda tid: self.analysis.start(tid),
                                   "_bp_analysis_again": lambda tid: self.analysis.again(tid),
                                   "_bp_analysis_moved": lambda tid:
                                       self.analysis.moved.add(tid),
                                   "_bp_analysis_result": lambda tid, text:
                                       self.analysis.result(tid, text),
                                   "_bp_requested_files": lambda tid, text:
                                       self.analysis.requested(tid, text),
                               })
        self._where = FrameInfo(self.env.location, self.env.source_line)
        self.rule_classes: list[RuleClass] = []
        self.providers: list[str | None] = []
        self.transitions: list[TransitionDecl] = []
        self.aspects: dict[str, AspectDecl] = {}        # by id ("aspect #N")
        self.aspect_exports: dict[tuple[str, str], str] = {}   # (module, name) -> id
        self._current: PackageBuilder | None = None
        self.analysis: Any = None   # the analyzer's recorder while analysis runs
        self._packages: dict[PackageId, Package | BpError] = {}
        self._settings: WorkspaceSettings | None = None

    # ---- packages --------------------------------------------------------------------

    def build_file(self, package: PackageId) -> Path | None:
        if package.repo == "":   # as Workspace.build_file, remembering what was absent
            if self.workspace.is_ignored(package.name):
                return None
            directory = self.workspace.root / package.name
            for name in BUILD_FILES:
                if self.reads.is_file(directory / name):
                    return directory / name
            return None
        root = self.repos.get(package.repo)
        if root is None:
            return None
        tracked = package.repo in self.repos.definitions
        for name in ("BUILD.bazel", "BUILD"):
            path = root / package.name / name
            if self.reads.is_file(path) if tracked else path.is_file():
                return path
        return None

    def is_package(self, package: PackageId) -> bool:
        return self.build_file(package) is not None or self._is_external(package)

    def _is_external(self, package: PackageId) -> bool:
        """Bazel's //external, the WORKSPACE's repositories (unless a real package)."""
        return package == EXTERNAL_PACKAGE and bool(
            self.repos.definitions or self.workspace_natives.binds) and \
            self.build_file(package) is None

    def load_package(self, package: PackageId) -> Package:
        """The loaded package, or raises the error(s) of its BUILD file."""
        cached = self._packages.get(package)
        if cached is None:
            try:
                cached = self._load(package)
            except BpError as error:
                cached = error
            self._packages[package] = cached
        if isinstance(cached, BpError):
            raise cached
        return cached

    def forget_package(self, package: PackageId) -> None:
        """Load `package` again when next asked (a long-lived bp: its BUILD file or its
        listing changed). The caller forgets what `reads` had of it."""
        cached = self._packages.pop(package, None)
        if isinstance(cached, Package):
            self.env.load_edges.pop(cached.build_file, None)

    def _load(self, package: PackageId) -> Package:
        if package.repo not in self.repos:
            raise NoSuchPackage(f"no such package '{package}': repository "
                                f"'@{package.repo}' is not defined"
                                f"{did_you_mean(package.repo, self.repos)}",
                                hint=_define_hint(package.repo))
        path = self.build_file(package)
        if path is None and self._is_external(package):
            self.workspace_settings()
            return external_package(self.repos.definitions, self.workspace_natives.binds)
        if path is None:
            raise NoSuchPackage(
                f"no such package '{package}': BUILD file not found in directory "
                f"'{package.name or '.'}'",
                hint="add a BUILD file to a directory to mark it as a package")
        display = self._display(package.repo, path)
        text = self._read_source(SourceFile(package, path, display))
        builder = PackageBuilder(package, display, text, self._where)
        self._current = builder
        before = set(self.env.load_edges.get(display, ()))
        try:
            self.env.eval_build_file(SourceFile(package, path, display), text)
        finally:
            self._current = None
            self.env.forget_sources(display)
        loads = tuple(sorted(self._transitive_loads(display) | before))
        return builder.finish(loads)

    def _transitive_loads(self, key: str) -> set[str]:
        seen: set[str] = set()
        stack = [key]
        while stack:
            for child in self.env.load_edges.get(stack.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen

    def _read_source(self, source: SourceFile) -> str:
        """The text of a BUILD or .bzl file; the workspace's own are recorded as read
        (bp's prelude and toolchains are part of bp, which the saved analysis's key
        covers). A file that is not UTF-8 is an error at its first bad byte."""
        try:
            if source.package.repo == "" or source.package.repo in self.repos.definitions:
                return self.reads.read_text(source.path)
            return source.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise invalid_utf8(source.display, error, "BUILD, .bzl and WORKSPACE files must "
                               "be UTF-8 text; save it as UTF-8") from None

    def _display(self, repo: str, path: Path) -> str:
        rel = path.relative_to(self.repos[repo])
        if repo == "":
            return rel.as_posix()
        package = "" if rel.parent == Path(".") else rel.parent.as_posix()
        return f"@{repo}//{package}:{rel.name}"

    def _resolve_bzl(self, label: Label) -> SourceFile:
        root = self.repos.get(label.repo)
        if root is None:
            raise UserError(f"cannot load '{label}': repository '@{label.repo}' is not "
                            f"defined{did_you_mean(label.repo, self.repos)}",
                            hint=_define_hint(label.repo))
        if label.repo == "" and label.package and not self.is_package(label.package_id):
            head, _, tail = label.package.rpartition("/")
            hint = f"perhaps you meant '//{head}:{tail}/{label.name}'" if tail else None
            raise UserError(f"cannot load '{label}': '{label.package}' is not a package "
                            "(it has no BUILD file)", hint=hint)
        path = root / label.package / label.name
        tracked = label.repo == "" or label.repo in self.repos.definitions
        if not (self.reads.is_file(path) if tracked else path.is_file()):
            if label.repo in COMPAT_REPOS:   # bp's stand-in: say what it has
                files = sorted(f"@{label.repo}//{f.parent.relative_to(root).as_posix()}:"
                               f"{f.name}" for f in root.rglob("*.bzl"))
                hint = (f"bp stands in for @{label.repo} with its own rules, and has "
                        f"{', '.join(files)}")
            else:
                hint = f"there is no {self._display_path(path)}: create it, or load " \
                       "another file"
            raise UserError(f"cannot load '{label}': no such file", hint=hint)
        return SourceFile(label.package_id, path, self._display(label.repo, path))

    def _display_path(self, path: Path) -> str:
        try:
            return path.relative_to(self.workspace.root).as_posix()
        except ValueError:
            return str(path)

    # ---- the WORKSPACE file ----------------------------------------------------------

    def workspace_settings(self) -> WorkspaceSettings:
        if self._settings is None:
            recorder = WorkspaceRecord()
            self.workspace_natives.record = recorder
            try:
                if self.reads.is_file(self.workspace.root / "MODULE.bazel"):
                    self._resolve_modules(recorder)
                for name in WORKSPACE_FILES:
                    path = self.workspace.root / name
                    if self.reads.is_file(path):
                        source = SourceFile(PackageId("", ""), path, name)
                        self.env.eval_workspace_file(source, self._read_source(source))
                        break
            finally:
                self.workspace_natives.record = None
            self._settings = WorkspaceSettings(
                recorder.name, tuple(recorder.registered.get("toolchains", ())),
                tuple(recorder.registered.get("execution_platforms", ())))
        return self._settings

    @property
    def module_natives(self):
        """Bzlmod's natives and module graph (buildpy/loading/modules.py), loaded only for
        a workspace that has a MODULE.bazel."""
        if self._module_natives is None:
            from buildpy.loading.modules import ModuleNatives

            self._module_natives = ModuleNatives(self, *self._modules_args)
        return self._module_natives

    def in_module_file(self) -> bool:
        return self._module_natives is not None and self._module_natives.current is not None

    def _module_native(self, name: str, *args: Any, frames) -> Any:
        return self.module_natives.natives[name](*args, frames=frames)

    def _resolve_modules(self, recorder: WorkspaceRecord) -> None:
        """Bzlmod: the module graph, a repository per module, the extensions' repositories;
        the modules' toolchains and platforms are registered, the root module's first."""
        modules = self.module_natives
        modules.resolve(self.workspace.root / "MODULE.bazel")
        modules.run_extensions()
        set_repository_mapping(modules.mapping())
        toolchains, platforms = modules.registered()
        recorder.registered.setdefault("toolchains", []).extend(toolchains)
        recorder.registered.setdefault("execution_platforms", []).extend(platforms)

    def read_workspace_file(self, path: Path) -> str:
        """A file of the workspace, recorded as read."""
        return self.reads.read_text(path)

    # ---- natives ---------------------------------------------------------------------

    def _natives(self) -> dict[str, Any]:
        return {
            "_bp_declare_rule": self._declare_rule,
            "_bp_export_rule": self._export_rule,
            "_bp_declare_provider": self._declare_provider,
            "_bp_declare_transition": self._declare_transition,
            "_bp_export_transition": self._export_transition,
            "_bp_declare_aspect": self._declare_aspect,
            "_bp_export_aspect": lambda aspect_id, name, *, frames:
                self.aspect_exports.setdefault(
                    (self.env.module_key(frames[0].path), name), aspect_id),
            "_bp_instantiate": self._instantiate,
            "_bp_instantiate_json": lambda text, *, frames: self._instantiate(
                *json.loads(text), frames=frames),   # [rule id, attributes]
            "_bp_glob": self._glob,
            "_bp_package": lambda kwargs, *, frames: self._builder(frames, "package").package(
                kwargs, frames),
            "_bp_exports_files": lambda srcs, vis, *, frames: self._builder(
                frames, "exports_files").exports_files(srcs, vis, frames),
            "_bp_package_group": lambda name, packages, includes, *, frames: self._builder(
                frames, "package_group").package_group(name, packages, includes, frames),
            "_bp_package_name": lambda *, frames: self._builder(
                frames, "package_name").id.name,
            "_bp_repository_name": lambda *, frames: "@" + self._builder(
                frames, "repository_name").id.repo,
            "_bp_existing_rule": self._existing_rule,
            "_bp_existing_rules": self._existing_rules,
            "_bp_host_info": lambda *, frames: {"os": host_os(), "cpu": host_cpu()},
            **self.workspace_natives.natives(),
            **{name: functools.partial(self._module_native, name) for name in MODULE_NATIVES},
            # analysis: forwarded to the analyzer's recorder while it runs
            "_bp_declare": lambda *a, frames: self.analysis.declare(*a, frames=frames),
            "_bp_action": lambda *a, frames: self.analysis.action(*a, frames=frames),
            "_bp_analysis_error": lambda *a, frames: self.analysis.fail(*a, frames=frames),
            "_bp_canonical_label": lambda *a, frames: self.analysis.canonical(*a,
                                                                               frames=frames),
        }

    def _existing_rule(self, name: Any, *, frames) -> Any:
        if self.workspace_natives.record is not None:   # in WORKSPACE: its repositories
            if self.repos.builtin(name):
                return {"name": name, "kind": "bp_builtin_repository"}
            definition = self.repos.definitions.get(name)
            return None if definition is None else to_starlark(
                {"name": name, "kind": definition.kind, **definition.attrs})
        return to_starlark(self._builder(frames, "existing_rule").existing_rule(name))

    def _existing_rules(self, *, frames) -> Any:
        if self.workspace_natives.record is not None:
            return {name: self._existing_rule(name, frames=frames)
                    for name in self.repos.definitions}
        return to_starlark(self._builder(frames, "existing_rules").existing_rules())

    def _builder(self, frames: tuple[Frame, ...], what: str) -> PackageBuilder:
        if self._current is None or frames[0].path != self._current.build_file:
            raise self.env.error_at(
                self.env.caller(frames),
                f"{what}() can only be used while a BUILD file is evaluated, not at the top "
                "level of a .bzl file",
                hint="call it from a macro that a BUILD file calls")
        return self._current

    def _declare_rule(self, attrs: Any, executable: Any, test: Any, doc: Any,
                      toolchains: Any, provides: Any, extra: Any, options: Any, *,
                      frames) -> int:
        caller = self.env.caller(frames)
        where = self.env.package_of(caller) or PackageId("", "")

        def fail(message: str, hint: str | None = None) -> BpError:
            return self.env.error_at(caller, message, hint)

        # a top-level `name = rule(...)`: named now (its file's end would name it so);
        # others when their file ends (`_export_rule`), as Bazel names a rule on export
        kind = self._assigned_name(caller, "rule") \
            if not self.env.source_line(caller)[:1].isspace() else None
        for key in extra:
            if key not in ACCEPTED_RULE_PARAMS:
                raise fail(f"rule() got an unexpected keyword argument '{key}'"
                           f"{did_you_mean(key, ACCEPTED_RULE_PARAMS)}")
        if not isinstance(attrs, dict):
            raise fail(f"rule() 'attrs' must be a dict of attr.* values, got {attrs!r}")
        if not isinstance(executable, bool) or not isinstance(test, bool):
            raise fail("rule() 'executable' and 'test' must be True or False")
        if kind is not None:
            _check_rule_name(kind, test, fail)
        declared: dict[str, AttrSpec] = {}
        try:
            for name, raw in attrs.items():
                spec = attr_spec(name, raw, executable or test, test)
                declared[name] = self._with_default(spec, where)
        except DeclarationError as e:
            raise fail(e.message, e.hint) from None
        try:
            toolchain_types = tuple(parse_label(t, where) for t in toolchains)
        except LabelError as e:
            raise fail(f"rule() 'toolchains': {e.message}", e.hint) from None
        rule = RuleClass(
            id=len(self.rule_classes), kind=kind,
            attrs=build_schema(declared, executable, test), executable=executable,
            test=test, doc=str(doc or ""), toolchains=toolchain_types,
            location=self.env.location(caller), defined_in=self.env.module_key(caller.path),
            build_setting=BuildSetting(*options["build_setting"])
            if options["build_setting"] else None,
            transition=options["cfg"] if options["cfg"] not in (None, "target") else None)
        self.rule_classes.append(rule)
        return rule.id

    def _export_rule(self, rule_id: int, name: str, line: int, *, frames) -> None:
        """A rule assigned to the global `name` (on `line`) of the .bzl file just
        evaluated: it takes that name (and that file as its home) unless it has one."""
        rule = self.rule_classes[rule_id]
        if rule.kind is not None:
            return
        caller = Frame(frames[0].path, line, "<toplevel>")   # frames[0]: the file's end
        _check_rule_name(name, rule.test,
                         lambda message, hint: self.env.error_at(caller, message, hint))
        self.rule_classes[rule_id] = dataclasses.replace(
            rule, kind=name, defined_in=self.env.module_key(caller.path))

    def _with_default(self, spec: AttrSpec, where: PackageId) -> AttrSpec:
        if spec.default is None:
            return spec
        try:
            value = coerce_value(spec, spec.default, where)
        except CoercionError as e:
            raise DeclarationError(f"bad default for attribute '{spec.name}': {e.message}",
                                   e.hint) from None
        return AttrSpec(**{**spec.__dict__, "default": value})

    def _assigned_name(self, frame: Frame, function: str) -> str | None:
        match = _ASSIGNMENT.match(self.env.source_line(frame))
        return match[1] if match and match[2] == function else None

    def _declare_transition(self, inputs: Any, outputs: Any, fixed: Any, *, frames) -> int:
        caller = self.env.caller(frames)
        for name, values in (("inputs", inputs), ("outputs", outputs)):
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise self.env.error_at(caller, f"transition() '{name}' must be a list of "
                                                "setting labels (strings)")
        self.transitions.append(TransitionDecl(
            tuple(inputs), tuple(outputs), fixed, self.env.location(caller)))
        return len(self.transitions) - 1

    def _export_transition(self, transition_id: int, name: str, *, frames) -> None:
        declared = self.transitions[transition_id]
        if declared.module is None:
            self.transitions[transition_id] = dataclasses.replace(
                declared, module=self.env.module_key(frames[0].path), name=name)

    def _declare_aspect(self, aspect_id: str, label_attrs: dict, requires: list, *,
                        frames) -> None:
        caller = self.env.caller(frames)
        where = self.env.package_of(caller) or PackageId("", "")
        declared = {}
        try:
            for name, raw in label_attrs.items():
                declared[name] = self._with_default(attr_spec(name, raw, False, False), where)
        except DeclarationError as e:
            raise self.env.error_at(caller, f"aspect(): {e.message}", e.hint) from None
        self.aspects[aspect_id] = AspectDecl(MappingProxyType(declared), tuple(requires),
                                             self.env.location(caller))

    def _declare_provider(self, doc: Any, fields: Any, *, frames) -> int:
        self.providers.append(self._assigned_name(self.env.caller(frames), "provider"))
        return len(self.providers) - 1

    def provider_name(self, provider_id: int) -> str:
        return self.providers[provider_id] or f"provider #{provider_id}"

    def _instantiate(self, rule_id: int, kwargs: dict[str, Any], *, frames) -> Any:
        """A rule called in a BUILD file: its target, added to the package being built.
        Returns IGNORED (the rule's closure returns None to the BUILD file)."""
        rule = self.rule_classes[rule_id]
        if rule.kind is None:
            raise self.env.error_at(
                self.env.caller(frames),
                f"the rule declared at {rule.location} has no name",
                hint="assign it to a global in its .bzl file: my_rule = rule(...)")
        self._builder(frames, rule.kind).add_rule(rule, kwargs, frames)
        return IGNORED

    def _glob(self, include: Any, exclude: Any, exclude_directories: Any, allow_empty: Any,
              *, frames) -> list[str]:
        builder = self._builder(frames, "glob")
        caller = self.env.caller(frames)
        for name, value in (("include", include), ("exclude", exclude)):
            if not isinstance(value, list):
                raise builder.error(caller, f"glob() '{name}' must be a list of patterns, "
                                            f"got {value!r}")
        try:
            listing = self._listing(builder.id)
            result = globbing.glob(listing, include, exclude, bool(exclude_directories))
        except globbing.GlobError as e:
            raise builder.error(caller, e.message, e.hint) from None
        if not result and not allow_empty:
            raise builder.error(caller, f"glob({include!r}) matched no files and "
                                        "allow_empty is False",
                                hint="fix the pattern, or pass allow_empty = True")
        return result

    def _listing(self, package: PackageId) -> tuple[list[str], list[str]]:
        key = package.name if package.repo == "" else str(package)
        listing = self.listing(key, strict=True)
        if package.repo == "" or package.repo in self.repos.definitions:
            self.reads.listed(key, listing)
        return listing

    def listing(self, key: str, strict: bool = False) -> tuple[list[str], list[str]]:
        """The files and directories of a package: `pkg` in the main repository,
        `@repo//pkg` in another one."""
        if not key.startswith("@"):
            return globbing.list_package(self.workspace, key, strict=strict)
        repo, _, name = key[1:].partition("//")
        return globbing.list_package(Workspace(self.repos[repo]), name, strict=strict)

    def transitive_loads(self, module_key: str) -> set[str]:
        return self._transitive_loads(module_key)

    def bzl_path(self, module_key: str) -> Path:
        """The file of a .bzl module by its key (its label's text)."""
        text = "@" + module_key if module_key.startswith("//") else module_key
        return self._resolve_bzl(parse_label(text, PackageId("", ""))).path

    def loaded_packages(self) -> list[Package]:
        """The packages loaded so far (without the ones that failed)."""
        return [p for p in self._packages.values() if isinstance(p, Package)]


def _check_rule_name(kind: str, test: bool, fail: Callable[[str, str], BpError]) -> None:
    if test != kind.endswith("_test"):
        raise fail(f"invalid rule name '{kind}': test rule names must end with '_test' and "
                   "other rule names must not", "set test = True only on rules named *_test")
