"""The WORKSPACE file's side of loading: workspace(), register_*(), the repositories it
defines (local_repository, new_local_repository, repository rules, in macros too), and
running a repository rule's implementation when a build first needs its repository.

Knows the natives that WORKSPACE files and repository rules call; not packages, nor
where repositories are kept (buildpy/external/repository.py), nor downloads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from buildpy.core.errors import BpError, UserError, did_you_mean
from buildpy.core.label import LabelError, PackageId, parse_label
from buildpy.core.pattern import parse_pattern
from buildpy.external.repository import NATIVE_KINDS, RepoDef, Repositories, RepoRule
from buildpy.lang.env import StarlarkEnv, to_starlark
from buildpy.lang.values import Frame
from buildpy.loading.target import Package

if TYPE_CHECKING:   # (a build with no repository to fetch does without them)
    from buildpy.external.context import RepoContext
    from buildpy.external.download import Downloader
    from buildpy.loading.loader import Loader

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
_ARCH = {"x86_64": "amd64", "aarch64": "aarch64", "arm64": "aarch64"}


@dataclass
class WorkspaceRecord:
    """What the WORKSPACE file said, as it is evaluated."""

    name: str = ""
    registered: dict[str, list[str]] = field(default_factory=dict)


class RepositoryNatives:
    """The natives of WORKSPACE files and repository rules, for one loader."""

    def __init__(self, loader: "Loader", downloader: Downloader,
                 say: Callable[[str], None]):
        self.loader = loader
        self.downloader = downloader
        self.say = say
        self.record: WorkspaceRecord | None = None   # while WORKSPACE is evaluated
        self.binds: dict[str, Any] = {}   # bind(): //external:<name>, for query
        self.rules: dict[int, RepoRule] = {}
        self._module_digests: dict[str, str] = {}
        self._contexts: dict[int, RepoContext] = {}
        self._ids = itertools.count(1)

    @property
    def env(self) -> StarlarkEnv:
        return self.loader.env

    @property
    def repos(self) -> Repositories:
        return self.loader.repos

    def natives(self) -> dict[str, Callable[..., Any]]:
        return {
            "_bp_workspace": self._workspace,
            "_bp_register": self._register,
            "_bp_bind": self._bind,
            "_bp_declare_repository_rule": self._declare_rule,
            "_bp_export_repository_rule": self._export_rule,
            "_bp_define_repository": self._define,
            "_bp_repo": self._repo,
        }

    def _caller(self, frames: tuple[Frame, ...]) -> Frame:
        return self.env.caller(frames)

    def _top(self, frames: tuple[Frame, ...]) -> Frame:
        """The WORKSPACE line that (maybe through macros) made this call."""
        return next((f for f in frames if not f.path.startswith("<")), frames[-1])

    def _in_workspace(self, what: str, frames) -> WorkspaceRecord:
        if self.record is None:
            raise self.env.error_at(self._caller(frames), f"{what}() can only be used in "
                                    "the WORKSPACE file (or a macro it calls), MODULE.bazel "
                                    "or a module extension")
        return self.record

    # ---- workspace(), register_*(), bind() -------------------------------------------

    def _workspace(self, name: Any, *, frames) -> None:
        record = self._in_workspace("workspace", frames)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise self.env.error_at(self._caller(frames), f"invalid workspace name {name!r}",
                                    hint="use letters, digits, '_', '-' and '.', starting "
                                         "with a letter")
        record.name = name

    def _register(self, what: str, labels: Any, *, frames) -> None:
        if self.loader.in_module_file():   # in MODULE.bazel: the module's own, in order
            modules = self.loader.module_natives
            into = modules.current.toolchains if what == "toolchains" else \
                modules.current.platforms
            repo = modules.current_repo
        else:
            into = self._in_workspace(f"register_{what}", frames).registered.setdefault(
                what, [])
            repo = ""
        for text in labels:
            try:
                parse_pattern(text)
            except LabelError as e:
                raise self.env.error_at(self._caller(frames), e.message, e.hint) from None
            into.append(f"@{repo}{text}" if repo and text.startswith("//") else text)

    def _bind(self, name: Any, actual: Any, *, frames) -> None:
        self._in_workspace("bind", frames)
        self.binds[str(name)] = actual

    # ---- repository rules --------------------------------------------------------------

    def _declare_rule(self, attrs: Any, local: Any, environ: Any, configure: Any, *,
                      frames) -> int:
        caller = self._caller(frames)
        specs = {}
        for name, spec in dict(attrs).items():
            if not isinstance(spec, dict) or "__bp_attr__" not in spec:
                raise self.env.error_at(caller, f"attribute '{name}' of repository_rule() "
                                        "must be an attr.* value")
            if name.startswith("_") and "default" not in spec:
                raise self.env.error_at(caller, f"private attribute '{name}' needs a "
                                        "default")
            specs[name] = {k: v for k, v in spec.items() if not k.startswith("_bp")}
        rule_id = next(self._ids)
        self.rules[rule_id] = RepoRule(specs, tuple(environ or ()), bool(configure),
                                       self.env.location(caller))   # (`local`: accepted)
        return rule_id

    def _export_rule(self, rule_id: int, name: str, *, frames) -> None:
        rule = self.rules[rule_id]
        if not rule.name:
            module = self.env.module_key(frames[0].path)
            self.rules[rule_id] = dataclasses.replace(rule, module=module, name=name)

    def _define(self, kind: Any, name: Any, attrs: Any, *, frames) -> None:
        """A repository definition: `kind` is a native one's name or a rule's id."""
        what = kind if isinstance(kind, str) else "a repository rule"
        self._in_workspace(what, frames)
        top = self.env.location(self._top(frames))
        caller = self._caller(frames)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise self.env.error_at(caller, f"invalid repository name {name!r}",
                                    hint="give it name = \"...\": letters, digits, '_', "
                                         "'-' and '.', starting with a letter")
        attrs = dict(attrs)
        rule = None
        if kind in NATIVE_KINDS:
            if not isinstance(attrs.get("path"), str):
                raise self.env.error_at(caller, f"{kind} '{name}' needs path = \"...\"")
        else:
            rule = self.rules[kind]
            if not rule.name:
                raise self.env.error_at(caller, f"repository rule for '{name}' is not "
                                        "exported: assign it to a global of its .bzl file")
            self._check_attrs(name, rule, attrs, caller)
        try:
            if rule is None:
                self.repos.define(RepoDef(name, kind, attrs, top))
            else:
                self.define_with(rule, name, attrs, top)
        except UserError as error:
            raise self.env.error_at(caller, error.message, error.hint) from None

    def define_with(self, rule: RepoRule, name: str, attrs: dict, location) -> None:
        """Define repository `name` made by repository rule `rule`."""
        self.repos.digests[name] = self.module_digest(rule.module)
        self.repos.define(RepoDef(name, rule.name, attrs, location, rule))

    def _check_attrs(self, name: str, rule: RepoRule, attrs: dict, caller: Frame) -> None:
        unknown = sorted(k for k in attrs if k not in rule.attrs)
        if unknown:
            raise self.env.error_at(
                caller, f"{rule.name} '{name}' has no attribute '{unknown[0]}'"
                f"{did_you_mean(unknown[0], rule.attrs)}")
        for key, spec in rule.attrs.items():
            if spec.get("mandatory") and attrs.get(key) in (None, "", [], {}):
                raise self.env.error_at(caller, f"{rule.name} '{name}': missing value "
                                        f"for mandatory attribute '{key}'")
            values = spec.get("values")
            if values and key in attrs and attrs[key] not in values:
                raise self.env.error_at(caller, f"{rule.name} '{name}': {key} must be one "
                                        f"of {values}, not {attrs[key]!r}")

    def exported_rule(self, module_label: str, name: str) -> int:
        """The id of the repository rule that .bzl file `module_label` exports as `name`
        (loading the file)."""
        label = parse_label(module_label, PackageId("", ""))
        self.env.load(label)
        key = str(label)
        for rule_id, rule in self.rules.items():
            if rule.module == key and rule.name == name:
                return rule_id
        raise UserError(f"{module_label} exports no repository rule named '{name}'",
                        hint="name a repository_rule() that the file assigns to a global")

    def open_context(self, context: RepoContext) -> int:
        fetch_id = next(self._ids)
        self._contexts[fetch_id] = context
        return fetch_id

    def close_context(self, fetch_id: int) -> None:
        del self._contexts[fetch_id]

    def module_digest(self, module_key: str) -> str:
        """The digest of a .bzl file and those it loads: a repository re-fetched when
        its rule's code changes. Read once per command and module (a WORKSPACE defines
        many repositories with one rule)."""
        known = self._module_digests.get(module_key)
        if known is not None:
            return known
        digest = hashlib.sha256()
        keys = {module_key} | self.loader.transitive_loads(module_key)
        for key in sorted(keys):
            try:
                path = self.loader.bzl_path(key)
                digest.update(f"{key}\0".encode() + hashlib.sha256(
                    path.read_bytes()).digest())
            except (BpError, OSError, LabelError):
                digest.update(f"{key}\0?".encode())
        self._module_digests[module_key] = digest.hexdigest()
        return self._module_digests[module_key]

    # ---- running a repository rule ------------------------------------------------

    def run_rule(self, definition: RepoDef, directory: Path) -> None:
        """Fetch `definition`'s repository into `directory` with its rule."""
        from buildpy.external.context import RepoContext

        rule = definition.rule
        fetch_id = self.open_context(RepoContext(definition.name, directory, self.downloader,
                                                 self.say))
        where = f"repository '@{definition.name}' ({definition.kind} at {definition.location})"
        try:
            self.env.run_repository_rule(
                rule.module, rule.name, definition.name, to_starlark(dict(definition.attrs)),
                fetch_id, str(self.loader.workspace.root), f"error fetching {where}")
        except BpError as error:
            if where not in error.message:   # said where the rule failed: say which fetch
                error.message += f"\n(while fetching {where})"
            raise
        finally:
            self.close_context(fetch_id)

    def _repo(self, fetch_id: int, op: str, args: Any, *, frames) -> Any:
        context = self._contexts.get(fetch_id)
        if context is None:
            raise self.env.error_at(self._caller(frames), "this repository_ctx is no longer "
                                    "valid: its fetch has ended")
        try:
            if op == "label_path":
                return os.fspath(self.repos.label_path(str(args["label"])))
            if op == "arch":
                import platform

                return _ARCH.get(platform.machine(), platform.machine())
            return to_starlark(context.call(op, dict(args)))
        except UserError as error:
            raise self.env.error_at(self._caller(frames), error.message, error.hint) from None
        except OSError as error:
            raise self.env.error_at(self._caller(frames),
                                    f"repository_ctx.{op}(): {error}") from None


EXTERNAL_PACKAGE = PackageId("", "external")


def external_package(definitions: Mapping[str, RepoDef], binds: Mapping[str, Any]) -> Package:
    """Bazel's `//external` package (WORKSPACE mode): a rule target per repository
    definition (its kind the rule's name, its attributes as WORKSPACE gave them) and per
    bind(), for query (`bp query //external:*`, `--output=build`)."""
    from types import MappingProxyType

    from buildpy.core.errors import Location
    from buildpy.loading.rule_class import AttrSpec, RuleClass, build_schema
    from buildpy.loading.target import PUBLIC, SOURCE_FILE, Target

    targets: dict[str, Target] = {}
    entries = [(d.name, d.kind, dict(d.attrs), d.location) for d in definitions.values()]
    entries += [(name, "bind", {"actual": actual} if actual else {}, None)
                for name, actual in binds.items()]
    for name, kind, attrs, location in entries:
        where = location or Location("WORKSPACE", 1, 1)
        specs = {key: AttrSpec(key, _attr_type(value)) for key, value in attrs.items()}
        rule = RuleClass(-1, kind, build_schema(specs, False, False), False, False, "", (),
                         where, "WORKSPACE")
        values = {**rule.defaults, **attrs, "name": name, "visibility": (PUBLIC,)}
        targets[name] = Target(EXTERNAL_PACKAGE.label(name), kind, where,
                               MappingProxyType(values), frozenset(attrs) | {"name"}, rule,
                               visibility=(PUBLIC,))
    targets.setdefault("WORKSPACE", Target(EXTERNAL_PACKAGE.label("WORKSPACE"), SOURCE_FILE,
                                           Location("WORKSPACE", 1, 1)))
    return Package(EXTERNAL_PACKAGE, "WORKSPACE", MappingProxyType(targets))


def _attr_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, list):
        return "string_list"
    if isinstance(value, dict):
        return "string_dict"
    return "string"
