"""External repositories: their definitions (from WORKSPACE) and where each one's files
are, fetched the first time a build needs them and again only when their definition
changes.

A fetched repository lives in `bp-out/external/<name>`; its marker file
(`bp-out/external/@<name>.marker`) holds the digest of the definition it was fetched
for, and is written last: a fetch that failed or was killed leaves no marker, so the
next build fetches again rather than trusting half a repository. Knows definitions,
directories, markers and locks; not Starlark (a repository rule runs through the
`run_rule` callback) nor downloads.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from buildpy.core.errors import Location, UserError

NATIVE_KINDS = ("local_repository", "new_local_repository")
STAND_IN = "bp_stand_in_repository"   # bp's own: the files its `files` attribute holds


@dataclass(frozen=True)
class RepoRule:
    """A repository_rule(): its attributes' specs and how it is re-fetched; where it
    is exported (module label and global name), which the fetch loads it by."""

    attrs: Mapping[str, Mapping[str, Any]]
    environ: tuple[str, ...]
    configure: bool
    location: Location
    module: str = ""
    name: str = ""


@dataclass(frozen=True)
class RepoDef:
    """One repository a WORKSPACE defines: its name, its rule (`kind`: a native one, or
    the exported name of a repository_rule), its attributes as given, and where."""

    name: str
    kind: str
    attrs: Mapping[str, Any]
    location: Location
    rule: RepoRule | None = None


@dataclass(frozen=True)
class RepoOptions:
    """The command's repository flags."""

    repository_cache: Path | None = None   # --repository_cache ("" turns it off)
    cache_off: bool = False
    distdirs: tuple[Path, ...] = ()        # --distdir
    overrides: tuple[tuple[str, Path], ...] = ()   # --override_repository=name=path
    registries: tuple[str, ...] = ()       # --registry (Bzlmod)


class Repositories(Mapping[str, Path]):
    """Repository name -> its root directory. bp's own repositories are fixed; one that
    WORKSPACE defines is fetched the first time its root is looked up (`repos[name]`,
    `repos.get(name)`); `in`, `roots()` and iteration fetch nothing."""

    def __init__(self, fixed: Mapping[str, Path], workspace_root: Path, output_base: Path,
                 run_rule: Callable[[RepoDef, Path], None], options: RepoOptions = RepoOptions(),
                 say: Callable[[str], None] = lambda line: None,
                 replaceable: tuple[str, ...] = ()):
        self.fixed = dict(fixed)
        self.replaceable = set(replaceable)   # fixed ones that a definition replaces
        self.workspace_root = workspace_root
        self.external = output_base / "external"
        self.run_rule = run_rule
        self.options = options
        self.say = say
        self.definitions: dict[str, RepoDef] = {}
        self.digests: dict[str, str] = {}   # name -> what its fetch depends on, beyond its
        #                                     definition (the rule's .bzl files)
        self.overrides = dict(options.overrides)
        self.aliases: dict[str, str] = {}   # another name of a repository (repo_name)
        self._ready: set[str] = set()
        self._fetching: list[str] = []

    # ---- the Mapping --------------------------------------------------------------

    def builtin(self, name: str) -> bool:
        """Whether `name` is one of bp's own repositories, which WORKSPACE cannot
        replace (maybe() leaves them alone)."""
        return name in self.fixed and name not in self.replaceable

    def __getitem__(self, name: str) -> Path:
        name = self.aliases.get(name, name)
        if name in self.overrides and name != "":
            return self.overrides[name]
        if name in self.fixed:
            return self.fixed[name]
        if name not in self.definitions:
            raise KeyError(name)
        if name not in self._ready:
            self.fetch(name)
        return self.root(name)

    def __contains__(self, name: object) -> bool:
        return name in self.fixed or name in self.overrides or name in self.definitions \
            or name in self.aliases

    def __iter__(self) -> Iterator[str]:
        return iter({**self.fixed, **self.overrides, **dict.fromkeys(self.definitions),
                     **self.aliases})

    def __len__(self) -> int:
        return len(set(self.fixed) | set(self.overrides) | set(self.definitions)
                   | set(self.aliases))

    def is_ready(self, name: str) -> bool:
        """Whether this command fetched (or found current) repository `name`."""
        return name in self._ready

    def roots(self) -> dict[str, Path]:
        """Every repository's root as it is or will be once fetched (for the exec root's
        `external/` links): fetches nothing."""
        return {name: self.root(name) for name in self}

    def root(self, name: str) -> Path:
        name = self.aliases.get(name, name)
        if name in self.overrides and name != "":
            return self.overrides[name]
        if name in self.fixed:
            return self.fixed[name]
        definition = self.definitions[name]
        if definition.kind == "local_repository":
            return self.workspace_root / str(definition.attrs.get("path", ""))
        return self.external / name

    # ---- definitions ----------------------------------------------------------------

    def define(self, definition: RepoDef) -> None:
        """A repository WORKSPACE defines; a later definition of the same name replaces
        an earlier one, unless something was already loaded from it. A definition of a
        repository that bp provides (@bazel_tools, @platforms) is ignored; one of the rule
        sets bp stands in for (@rules_cc, ...) replaces bp's stand-in."""
        if definition.name in self.fixed:
            if definition.name not in self.replaceable:
                return
            del self.fixed[definition.name]
        if definition.name in self._ready and definition.name in self.definitions and \
                self.definitions[definition.name] != definition:
            raise UserError(f"cannot redefine repository '@{definition.name}' after a load "
                            "from it", location=definition.location,
                            hint="define it once, before the load() that uses it, or "
                                 "wrap the second definition in maybe()")
        self.definitions[definition.name] = definition

    # ---- fetching -------------------------------------------------------------------

    def fetch(self, name: str, force: bool = False) -> Path:
        """Make repository `name` ready (fetch it unless its marker says it is current);
        `force` fetches it again in any case (bp sync)."""
        if name in self._fetching:
            cycle = " -> ".join(f"@{n}" for n in self._fetching[self._fetching.index(name):])
            raise UserError(f"repository '@{name}' needs itself to be fetched: {cycle} -> "
                            f"@{name}", location=self.definitions[name].location)
        definition = self.definitions[name]
        if definition.kind == "local_repository":
            self._check_local(definition)
            self._ready.add(name)
            return self.root(name)
        self._fetching.append(name)
        try:
            self.external.mkdir(parents=True, exist_ok=True)
            with open(self.external / f".{name}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)   # another bp fetching it: wait for it
                digest = self._digest(definition)
                marker = self.external / f"@{name}.marker"
                if force or not _marker_holds(marker, digest):
                    self._fetch(definition, marker, digest)
        finally:
            self._fetching.pop()
        self._ready.add(name)
        return self.root(name)

    def _fetch(self, definition: RepoDef, marker: Path, digest: str) -> None:
        directory = self.root(definition.name)
        marker.unlink(missing_ok=True)
        _remove(directory)
        directory.mkdir(parents=True)
        try:
            if definition.kind == "new_local_repository":
                self._new_local(definition, directory)
            elif definition.kind == STAND_IN:
                for name, content in definition.attrs["files"].items():
                    (directory / name).write_text(content)
            else:
                self.say(f"Fetching @{definition.name}")
                self.run_rule(definition, directory)
        except BaseException:
            _remove(directory)   # nothing half-done stays to be trusted
            raise
        marker.write_text(json.dumps({"digest": digest}) + "\n")

    def fingerprint(self) -> str:
        """What every repository's contents depend on, in one digest (fetching nothing):
        a saved analysis is reused only while it is the same."""
        parts = {name: self._digest(d) for name, d in sorted(self.definitions.items())}
        text = json.dumps([parts, sorted(self.aliases.items()),
                           sorted((n, str(p)) for n, p in self.overrides.items())])
        return hashlib.sha256(text.encode()).hexdigest()

    def _digest(self, definition: RepoDef) -> str:
        """What the repository's contents depend on: its definition, the source of its
        rule's .bzl files, the environment variables the rule names, and, for
        new_local_repository, the directory's top-level entries."""
        parts: dict[str, Any] = {"kind": definition.kind, "attrs": definition.attrs,
                                 "bzl": self.digests.get(definition.name, "")}
        if definition.rule is not None:
            parts["environ"] = {v: os.environ.get(v) for v in definition.rule.environ}
            parts["module"] = definition.rule.module
        if definition.kind == "new_local_repository":
            source = self._local_path(definition)
            parts["entries"] = sorted(os.listdir(source)) if source.is_dir() else None
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def _local_path(self, definition: RepoDef) -> Path:
        return self.workspace_root / str(definition.attrs.get("path", ""))

    def _check_local(self, definition: RepoDef) -> None:
        path = self._local_path(definition)
        if not path.is_dir():
            raise UserError(f"{definition.kind} '@{definition.name}': path '{path}' is not "
                            "a directory", location=definition.location,
                            hint="point 'path' at the repository's directory (relative "
                                 "paths start at the workspace root)")

    def _new_local(self, definition: RepoDef, directory: Path) -> None:
        """new_local_repository: links to the entries of `path`, with a BUILD file of
        its own (build_file or build_file_content) and a WORKSPACE file."""
        self._check_local(definition)
        source = self._local_path(definition).resolve()
        attrs = definition.attrs
        build_file, content = attrs.get("build_file"), attrs.get("build_file_content")
        if (build_file is None) == (content is None):
            raise UserError(f"new_local_repository '@{definition.name}' needs exactly one "
                            "of build_file and build_file_content",
                            location=definition.location)
        for entry in os.scandir(source):
            if entry.name not in ("BUILD", "BUILD.bazel", "WORKSPACE", "WORKSPACE.bazel"):
                os.symlink(entry.path, directory / entry.name)
        if build_file is not None:
            try:
                content = self.label_path(str(build_file)).read_text()
            except UserError as error:
                raise UserError(f"new_local_repository '@{definition.name}': "
                                f"{error.message}", location=definition.location,
                                hint=error.hint) from None
        (directory / "BUILD.bazel").write_text(str(content))
        workspace = attrs.get("workspace_file_content") or \
            f'workspace(name = "{definition.name}")\n'
        (directory / "WORKSPACE").write_text(workspace)

    def label_path(self, text: str) -> Path:
        """The file a label names (`//:BUILD.foo`, `@other//pkg:f`), fetching its
        repository if need be."""
        from buildpy.core.label import LabelError, PackageId, parse_label

        try:
            label = parse_label(text, PackageId("", ""))
        except LabelError as error:
            raise UserError(error.message, hint=error.hint) from None
        root = self.get(label.repo)
        if root is None:
            raise UserError(f"repository '@{label.repo}' of '{text}' is not defined")
        path = root / label.package / label.name
        if not path.is_file():
            raise UserError(f"'{text}' is not a file ({path})",
                            hint="name a file that exists in that repository")
        return path


def _marker_holds(marker: Path, digest: str) -> bool:
    try:
        return json.loads(marker.read_text()).get("digest") == digest
    except (OSError, ValueError, AttributeError):
        return False


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        for parent, dirs, _ in os.walk(path):   # read-only directories from archives
            for name in dirs:
                full = os.path.join(parent, name)
                if not os.path.islink(full):
                    os.chmod(full, 0o755)
        shutil.rmtree(path)
