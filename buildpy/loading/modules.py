"""Bzlmod's side of loading: MODULE.bazel files evaluated into modules, the module graph
resolved (buildpy/external/modules.py), one repository per selected module, module
extensions run, and the repositories each use_repo() imports.

Repositories keep one flat namespace, as WORKSPACE's do: a module's repository is named
after the module (a bazel_dep's repo_name is another name for it), an extension's after
what the extension calls it. Knows the natives of MODULE.bazel files; not downloads nor
where repositories are kept.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from buildpy.core.errors import BpError, UserError, did_you_mean
from buildpy.core.label import LabelError, PackageId, parse_label
from buildpy.external.modules import Dep, ExtensionUsage, Module, Registry, select_versions
from buildpy.external.repository import STAND_IN, RepoDef
from buildpy.lang.env import SourceFile, to_starlark
from buildpy.lang.values import Frame

if TYPE_CHECKING:
    from buildpy.loading.loader import Loader

MODULE_FILE = "MODULE.bazel"
_HTTP = ("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
# Extensions that configure Bazel's own C++ toolchain: bp has its own, so it does not run
# them; the repositories they would make are empty, and toolchains registered from those
# repositories are left out.
REPLACED_EXTENSIONS = {
    ("@rules_cc//cc:extensions.bzl", "cc_configure"):
        ("local_config_cc", "local_config_cc_toolchains", "local_config_xcode"),
}
_GIT = ("@bazel_tools//tools/build_defs/repo:git.bzl", "git_repository")


class ModuleNatives:
    """The natives of MODULE.bazel files, and the module graph they make."""

    def __init__(self, loader: "Loader", registries: tuple[str, ...],
                 say: Callable[[str], None]):
        self.loader = loader
        self.registry = Registry(registries)
        self.say = say
        self.current: Module | None = None          # the module being evaluated
        self.current_repo = ""                      # its repository ("" for the root)
        self.root: Module | None = None
        self.selected: dict[str, Module] = {}
        self._sources: dict[tuple[str, str], str] = {}   # (name, version) -> its registry
        self._usages: dict[int, ExtensionUsage] = {}
        self.replaced: set[str] = set()   # repositories of REPLACED_EXTENSIONS
        self._tags: dict[int, list[str]] = {}        # line of a use_extension -> its tags
        self._ids = itertools.count(1)

    @property
    def env(self):
        return self.loader.env

    @functools.cached_property
    def natives(self) -> dict[str, Callable[..., Any]]:
        return {
            "_bp_module": self._module,
            "_bp_bazel_dep": self._bazel_dep,
            "_bp_override": self._override,
            "_bp_use_extension": self._use_extension,
            "_bp_extension_tag": self._extension_tag,
            "_bp_use_repo": self._use_repo,
            "_bp_use_repo_rule": self._use_repo_rule,
        }

    def _in_module(self, what: str, frames) -> Module:
        if self.current is None:
            raise self.env.error_at(self.env.caller(frames), f"{what}() can only be used "
                                    "in a MODULE.bazel file")
        return self.current

    def _where(self, frames):
        return self.env.location(self.env.caller(frames))

    # ---- evaluation -------------------------------------------------------------------

    def evaluate(self, path: Path, display: str, repo: str, text: str | None = None
                 ) -> Module:
        """Evaluate one MODULE.bazel (its text, or read from `path`)."""
        if text is None:
            text = self.loader.read_workspace_file(path) if repo == "" else \
                path.read_text(encoding="utf-8")
        module = Module()
        self.current, self.current_repo = module, repo
        self._tags = _extension_tags(text)
        try:
            self.env.eval_module_file(SourceFile(PackageId(repo, ""), path, display), text)
        finally:
            self.current, self.current_repo = None, ""
        return module

    def resolve(self, root_path: Path) -> Module:
        """Evaluate the root MODULE.bazel, resolve the graph, define a repository per
        selected module; the root module."""
        root = self.evaluate(root_path, MODULE_FILE, "")
        self.root = root
        repos = self.loader.repos
        provided = frozenset(n for n in repos.fixed if n not in root.overrides)
        self.selected = select_versions(root, self._module_of, provided)
        if root.name and root.name not in repos:
            repos.aliases[root.name] = ""
        for name, module in self.selected.items():
            self._define_module_repo(name, module)
        for module in [root, *self.selected.values()]:   # for labels that no mapping
            for repo_name, name in self._renamed(module):   # reaches (command lines)
                repos.aliases.setdefault(repo_name, name)
        return root

    def _renamed(self, module: Module) -> list[tuple[str, str]]:
        """(repo_name, module) for the module's bazel_deps seen by another name."""
        return [(d.repo_name, d.name) for d in module.deps
                if d.repo_name != d.name and d.name in self.selected]

    def registered(self) -> tuple[list[str], list[str]]:
        """The toolchains and execution platforms the modules register, the root
        module's first; none from a replaced extension's repositories."""
        modules = [self.root, *self.selected.values()]
        toolchains = [t for m in modules for t in m.toolchains
                      if not any(t.startswith(f"@{r}//") for r in self.replaced)]
        return toolchains, [p for m in modules for p in m.platforms]

    def mapping(self) -> dict[str, dict[str, str]]:
        """Each module's repository mapping: its bazel_deps' repo_names and its
        use_repo() aliases (the names that differ from the repositories'), and for the
        root module its own name."""
        mapping: dict[str, dict[str, str]] = {}
        for repo, module in [("", self.root), *self.selected.items()]:
            names = mapping.setdefault(repo, {})
            names.update(self._renamed(module))
            for usage in module.extensions:
                names.update((local, made) for local, made in usage.imports.items()
                             if local != made)
        if self.root.name:
            mapping[""].setdefault(self.root.repo_name or self.root.name, "")
        return {repo: names for repo, names in mapping.items() if names}

    def _module_of(self, name: str, version: str, asked) -> Module:
        override = self.root.overrides.get(name, {})
        kind = override.get("kind")
        if kind in ("local_path", "archive", "git"):
            if kind == "local_path":
                directory = self.loader.workspace.root / override["path"]
                if not directory.is_dir():
                    raise UserError(f"local_path_override of '{name}': '{directory}' is not "
                                    "a directory", location=self.root.location)
            else:
                self._define_module_repo(name, Module(name=name), override)
                directory = self.loader.repos[name]
            path = directory / MODULE_FILE   # none: a module with no dependencies
            module = self.evaluate(path, f"@{name}//:{MODULE_FILE}", name) \
                if path.is_file() else Module(name=name)
            module.version = ""   # an overridden module has no version (`name@_`)
        else:
            if not version:
                raise UserError(f"bazel_dep() of '{name}' has no version", location=asked,
                                hint="give it version = \"...\", or override it in the root "
                                     "MODULE.bazel (local_path_override, archive_override)")
            text, base = self.registry.module_file(name, version, asked)
            self._sources[(name, version)] = base
            module = self.evaluate(Path(f"<registry>/{name}/{version}/{MODULE_FILE}"),
                                   f"@{name}//:{MODULE_FILE}", name, text)
        module.name = module.name or name
        module.version = module.version or version
        return module

    def _define_module_repo(self, name: str, module: Module,
                            override: dict | None = None) -> None:
        repos = self.loader.repos
        if name in repos.definitions:
            return
        override = override or self.root.overrides.get(name, {})
        location = self.root.location
        kind = override.get("kind")
        if kind == "local_path":
            repos.define(RepoDef(name, "local_repository", {"path": override["path"]},
                                 location))
            return
        if kind == "archive":
            attrs = {"urls": override["urls"], "integrity": override["integrity"],
                     "strip_prefix": override["strip_prefix"],
                     "patches": override["patches"], "patch_cmds": override["patch_cmds"],
                     "patch_args": [f"-p{override['patch_strip']}"]}
            self._define_with(_HTTP, name, attrs, location)
            return
        if kind == "git":
            attrs = {k: override[k] for k in ("remote", "commit", "tag", "branch",
                                              "init_submodules", "strip_prefix",
                                              "patches", "patch_cmds")}
            attrs["patch_args"] = [f"-p{override['patch_strip']}"]
            self._define_with(_GIT, name, attrs, location)
            return
        base = self._sources.get((name, module.version))
        source = self.registry.source(base, name, module.version)
        if source.get("type") == "local_path":
            repos.define(RepoDef(name, "local_repository", {"path": source["resolved_path"]},
                                 location))
            return
        attrs = {"urls": [source["url"], *source.get("mirror_urls", [])],
                 "integrity": source.get("integrity", ""),
                 "strip_prefix": source.get("strip_prefix", ""),
                 "remote_patches": source["patch_urls"],
                 "remote_patch_strip": int(source.get("patch_strip", 0))}
        if source.get("archive_type"):
            attrs["type"] = source["archive_type"]
        self._define_with(_HTTP, name, attrs, location)

    def _define_with(self, rule: tuple[str, str], name: str, attrs: dict, location) -> None:
        natives = self.loader.workspace_natives
        natives.define_with(natives.rules[natives.exported_rule(*rule)], name, attrs,
                            location)

    # ---- natives ------------------------------------------------------------------------

    def _module(self, name: Any, version: Any, level: Any, repo_name: Any, *, frames) -> None:
        module = self._in_module("module", frames)
        module.name, module.version = str(name), str(version)
        module.compatibility_level, module.repo_name = int(level), str(repo_name)
        module.location = self._where(frames)

    def _bazel_dep(self, name: Any, version: Any, repo_name: Any, dev: Any, *,
                   frames) -> None:
        module = self._in_module("bazel_dep", frames)
        if any(d.name == name for d in module.deps):
            raise self.env.error_at(self.env.caller(frames), f"bazel_dep() of '{name}' "
                                    "twice", hint="keep one")
        module.deps.append(Dep(str(name), str(version), str(repo_name), bool(dev),
                               self._where(frames)))

    def _override(self, kind: str, name: Any, attrs: Any, *, frames) -> None:
        module = self._in_module(f"{kind}_override", frames)
        if self.current_repo != "":
            return   # only the root module's overrides count, as in Bazel
        if name in module.overrides:
            raise self.env.error_at(self.env.caller(frames), f"module '{name}' is "
                                    "overridden twice", hint="keep one override")
        module.overrides[str(name)] = {"kind": kind, **dict(attrs)}

    def _use_extension(self, bzl: Any, name: Any, dev: Any, *, frames) -> dict:
        module = self._in_module("use_extension", frames)
        caller = self.env.caller(frames)
        usage = ExtensionUsage(self._absolute(str(bzl), caller), str(name), bool(dev))
        usage_id = next(self._ids)
        self._usages[usage_id] = usage
        module.extensions.append(usage)
        return {"id": usage_id, "tags": self._tags.get(caller.line, [])}

    def _extension_tag(self, usage_id: int, tag: str, attrs: Any, *, frames) -> None:
        self._usages[usage_id].tags.append((tag, dict(attrs), self._where(frames)))

    def _use_repo(self, usage_id: int, names: Any, aliases: Any, *, frames) -> None:
        usage = self._usages[usage_id]
        for name in names:
            usage.imports[str(name)] = str(name)
        for local, name in dict(aliases).items():
            usage.imports[str(local)] = str(name)

    def _use_repo_rule(self, bzl: Any, name: Any, *, frames) -> int:
        self._in_module("use_repo_rule", frames)
        caller = self.env.caller(frames)
        label = self._absolute(str(bzl), caller)
        try:
            return self.loader.workspace_natives.exported_rule(label, str(name))
        except UserError as error:
            raise self.env.error_at(caller, error.message, error.hint) from None

    def _absolute(self, text: str, caller: Frame) -> str:
        """A label a module wrote, as the whole build names it."""
        try:
            label = parse_label(text, PackageId(self.current_repo, ""))
        except LabelError as error:
            raise self.env.error_at(caller, error.message, error.hint) from None
        return str(label) if label.repo else "@" + str(label)

    # ---- extensions ----------------------------------------------------------------------

    def run_extensions(self) -> None:
        """Run each extension the modules use (once, for all of them), then check that
        every repository a use_repo() imports was made."""
        modules = [("", self.root), *((n, m) for n, m in self.selected.items())]
        extensions: dict[tuple[str, str], list] = {}
        for repo, module in modules:
            for usage in module.extensions:
                if usage.dev and module is not self.root:
                    continue
                extensions.setdefault((usage.bzl, usage.name), []).append((repo, module, usage))
        repos = self.loader.repos
        for (bzl, name), users in extensions.items():
            if (bzl, name) in REPLACED_EXTENSIONS:
                for made in REPLACED_EXTENSIONS[(bzl, name)]:
                    repos.define(RepoDef(made, STAND_IN, {"files": {
                        "WORKSPACE": "", "BUILD.bazel": "# bp's own C++ toolchain stands "
                        "in for this repository\n"}}, self.root.location))
                    self.replaced.add(made)
                continue
            self._run_extension(bzl, name, users)
        for (bzl, name), users in extensions.items():
            for _, module, usage in users:
                for local, made in usage.imports.items():
                    if made not in repos:
                        raise UserError(
                            f"module extension '{name}' of {bzl} does not make repository "
                            f"'{made}'{did_you_mean(made, repos.definitions)}",
                            location=module.location,
                            hint="use_repo() only what the extension defines")
                    if local != made:
                        repos.aliases.setdefault(local, made)

    def _run_extension(self, bzl: str, name: str, users: list) -> None:
        from buildpy.external.context import RepoContext

        natives = self.loader.workspace_natives
        scratch = self.loader.repos.external / f".extension-{_safe(bzl)}-{name}"
        scratch.mkdir(parents=True, exist_ok=True)
        fetch_id = natives.open_context(RepoContext(f"extension {name}", scratch,
                                                     natives.downloader, self.say))
        payload = [{"name": m.name, "version": m.version, "is_root": m is self.root,
                    "repo": repo,
                    "tags": [[tag, attrs, u.dev] for tag, attrs, _ in u.tags]}
                   for repo, m, u in users]
        module_key = bzl[1:] if bzl.startswith("@//") else bzl
        try:
            self.env.load(parse_label(bzl, PackageId("", "")))
            self.env.run_module_extension(
                module_key, name, to_starlark(payload), fetch_id,
                str(self.loader.workspace.root),
                f"error running module extension '{name}' of {bzl}")
        except BpError as error:
            if bzl not in error.message:
                error.message += f"\n(while running module extension '{name}' of {bzl})"
            raise
        finally:
            natives.close_context(fetch_id)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)


def _extension_tags(text: str) -> dict[int, list[str]]:
    """For each line with `x = use_extension(...)`, the tags MODULE.bazel calls on `x`
    (`x.tag(...)`): what the proxy that use_extension() returns must offer."""
    import ast

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    lines: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                isinstance(node.value.func, ast.Name) and \
                node.value.func.id == "use_extension":
            for target in node.targets:
                if isinstance(target, ast.Name):
                    lines[target.id] = node.value.lineno
    tags: dict[int, set[str]] = {line: set() for line in lines.values()}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                isinstance(node.func.value, ast.Name) and node.func.value.id in lines:
            tags[lines[node.func.value.id]].add(node.func.attr)
    return {line: sorted(names) for line, names in tags.items()}

