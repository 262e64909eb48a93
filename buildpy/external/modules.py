"""Bzlmod's module graph: what each MODULE.bazel declares, registries in Bazel's layout,
and minimal version selection over the graph.

Knows modules, versions, overrides and registries; not Starlark (the loader evaluates
MODULE.bazel files into `Module` values) nor how repositories are fetched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from buildpy.core.errors import Location, UserError

DEFAULT_REGISTRY = "https://bcr.bazel.build"


@dataclass(frozen=True)
class Dep:
    """A bazel_dep(): the module, the version asked for, the name it is seen by."""

    name: str
    version: str
    repo_name: str
    dev: bool
    location: Location | None = None


@dataclass
class Module:
    """What one MODULE.bazel said."""

    name: str = ""
    version: str = ""
    compatibility_level: int = 0
    repo_name: str = ""
    deps: list[Dep] = field(default_factory=list)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)   # root's only
    toolchains: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    # use_extension(): (bzl label, name) -> [(usage id, dev, tags as (tag, attrs, loc))]
    extensions: list["ExtensionUsage"] = field(default_factory=list)
    repo_rules: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    location: Location | None = None


@dataclass
class ExtensionUsage:
    """One use_extension() in one module: its tags, and the repositories it imports."""

    bzl: str          # the .bzl file's label, absolute
    name: str
    dev: bool
    tags: list[tuple[str, dict[str, Any], Location | None]] = field(default_factory=list)
    imports: dict[str, str] = field(default_factory=dict)   # local name -> extension's


def version_key(version: str) -> tuple:
    """Bazel's order of module versions: release segments compared as numbers (or text
    after numbers), a prerelease (`-rc1`) before its release, the empty version (an
    override's) after every other."""
    if version == "":
        return (1, ())
    release, _, prerelease = version.partition("-")
    release = release.split("+", 1)[0]

    def parts(text: str) -> tuple:
        return tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                     for p in re.split(r"[.]", text) if p != "")

    return (0, parts(release), 0 if prerelease else 1, parts(prerelease))


class Registry:
    """Module registries in Bazel's layout (`modules/NAME/VERSION/MODULE.bazel` and
    `source.json`), tried in order; file:// ones are read in place."""

    def __init__(self, urls: tuple[str, ...]):
        self.urls = urls or (DEFAULT_REGISTRY,)

    def _read(self, base: str, relative: str) -> str | None:
        import urllib.error   # (only a Bzlmod workspace pays for urllib)
        import urllib.parse
        import urllib.request

        url = base.rstrip("/") + "/" + relative
        parsed = urllib.parse.urlparse(url)
        try:
            if parsed.scheme == "file":
                path = Path(urllib.parse.unquote(parsed.path))
                return path.read_text(encoding="utf-8") if path.is_file() else None
            with urllib.request.urlopen(url, timeout=60) as response:
                return response.read().decode()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise UserError(f"registry {base}: {relative}: HTTP {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            raise UserError(f"cannot reach registry {base} ({getattr(error, 'reason', error)})",
                            hint="check the network, or use a local registry with "
                                 "--registry=file:///path") from None

    def module_file(self, name: str, version: str, asked: Location | None) -> tuple[str, str]:
        """(MODULE.bazel text, the registry that has it)."""
        for base in self.urls:
            text = self._read(base, f"modules/{name}/{version}/MODULE.bazel")
            if text is not None:
                return text, base
        versions = self.versions(name)
        raise UserError(f"module '{name}' has no version '{version}' in "
                        f"{', '.join(self.urls)}"
                        + (f" (it has {', '.join(versions)})" if versions else ""),
                        location=asked,
                        hint="fix the version in bazel_dep(), or point --registry at a "
                             "registry that has it")

    def versions(self, name: str) -> list[str]:
        for base in self.urls:
            text = self._read(base, f"modules/{name}/metadata.json")
            if text:
                try:
                    return list(json.loads(text).get("versions", []))
                except ValueError:
                    return []
        return []

    def source(self, base: str, name: str, version: str) -> dict[str, Any]:
        """The module's source.json, with its patches as URLs and the registry's base path
        for local_path sources."""
        text = self._read(base, f"modules/{name}/{version}/source.json")
        if text is None:
            raise UserError(f"registry {base} has no source.json for {name}@{version}")
        source = json.loads(text)
        source["patch_urls"] = {
            f"{base.rstrip('/')}/modules/{name}/{version}/patches/{patch}": digest
            for patch, digest in (source.get("patches") or {}).items()}
        if source.get("type") == "local_path":
            import urllib.parse

            meta = json.loads(self._read(base, "bazel_registry.json") or "{}")
            root = meta.get("module_base_path", "")
            base_path = urllib.parse.urlparse(base).path
            source["resolved_path"] = str((Path(base_path) / root / source["path"]).resolve())
        return source


def select_versions(root: Module, module_of: Callable[[str, str, Location | None], Module],
                    provided: frozenset[str] = frozenset()) -> dict[str, Module]:
    """Minimal version selection: walk the graph from `root`, keeping for each module
    the highest version any module asks for (a single_version_override pins one), then
    keep the modules the selected versions still reach. `module_of(name, version,
    asked at)` gives a module's declaration; the `provided` modules (bp's own
    repositories) are not looked up, and stay out of the result."""
    pinned = {name: o["version"] for name, o in root.overrides.items()
              if o.get("version") and o["kind"] == "single_version"}
    overridden = {name for name, o in root.overrides.items() if o["kind"] != "single_version"}
    seen: dict[tuple[str, str], Module] = {}
    best: dict[str, str] = {}
    queue: list[tuple[Dep, Module]] = [(d, root) for d in root.deps]
    while queue:
        dep, parent = queue.pop(0)
        if dep.dev and parent is not root or dep.name in provided:
            continue   # a dependency's dev dependencies are not ours
        version = "" if dep.name in overridden else pinned.get(dep.name, dep.version)
        key = (dep.name, version)
        if key not in seen:
            seen[key] = module_of(dep.name, version, dep.location)
            queue += [(d, seen[key]) for d in seen[key].deps]
        if dep.name not in best or version_key(version) > version_key(best[dep.name]):
            best[dep.name] = version
    selected: dict[str, Module] = {}
    stack = [root]
    while stack:
        module = stack.pop()
        for dep in module.deps:
            if dep.dev and module is not root or dep.name in selected or \
                    dep.name == root.name or dep.name in provided:
                continue
            chosen = seen[(dep.name, best[dep.name])]
            selected[dep.name] = chosen
            stack.append(chosen)
    _check_levels(selected, seen)
    return selected


def _check_levels(selected: Mapping[str, Module], seen: Mapping[tuple[str, str], Module]
                  ) -> None:
    """Versions of one module with different compatibility levels cannot be unified."""
    for (name, version), module in seen.items():
        chosen = selected.get(name)
        if chosen is not None and module.compatibility_level != chosen.compatibility_level:
            raise UserError(
                f"module '{name}': version {chosen.version} (compatibility level "
                f"{chosen.compatibility_level}) was selected, but {version} (level "
                f"{module.compatibility_level}) is asked for too",
                hint="make both ask for versions of one compatibility level, or "
                     "single_version_override it in MODULE.bazel")
