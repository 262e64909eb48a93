"""Target patterns (`//...`, `//pkg/...`, `//pkg:all`, `//pkg:*`, `-//pkg/...`): syntax only.

Expanding a pattern into targets needs the loaded packages and is loading's job.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

from buildpy.core.label import (
    MAIN_REPO, Label, LabelError, PackageId, split_repo, validate_package_name,
    validate_target_name,
)


class PatternKind(enum.Enum):
    TARGET = "target"                  # //pkg:name: one target
    PACKAGE_RULES = "package rules"    # //pkg:all: every rule in the package
    PACKAGE_TARGETS = "package all"    # //pkg:* or :all-targets: rules and files
    RECURSIVE_RULES = "recursive rules"   # //pkg/...: every rule below pkg
    RECURSIVE_TARGETS = "recursive all"   # //pkg/...:*: rules and files below pkg


_RULE_WILDCARDS = {"all"}
_TARGET_WILDCARDS = {"*", "all-targets"}


@dataclass(frozen=True)
class TargetPattern:
    """One parsed pattern; `negative` patterns subtract from those before them."""

    text: str
    kind: PatternKind
    repo: str
    package: str
    name: str = ""
    negative: bool = False

    @property
    def package_id(self) -> PackageId:
        return PackageId(self.repo, self.package)

    @property
    def is_wildcard(self) -> bool:
        return self.kind is not PatternKind.TARGET

    @property
    def label(self) -> Label:
        assert self.kind is PatternKind.TARGET
        return Label(self.repo, self.package, self.name)

    def covers_package(self, package: PackageId) -> bool:
        """True if this pattern's package part matches `package`."""
        if package.repo != self.repo:
            return False
        if self.kind in (PatternKind.RECURSIVE_RULES, PatternKind.RECURSIVE_TARGETS):
            return (self.package == "" or package.name == self.package
                    or package.name.startswith(self.package + "/"))
        return package.name == self.package


def parse_pattern(
    text: str,
    offset: str = "",
    is_package: Callable[[str], bool] | None = None,
) -> TargetPattern:
    """Parse a command-line target pattern.

    `offset` is the working directory relative to the workspace root: relative patterns
    (`foo/...`, `:x`, `foo:x`) are resolved against it as Bazel does. `is_package(path)`
    tells whether a directory is a package, to read a bare `foo/bar` as `//foo/bar:bar`
    when it is one and otherwise as a file of the nearest enclosing package (`//foo:bar`
    if `foo` is a package, else `//:foo/bar`).
    """
    negative = text.startswith("-")
    body = text[1:] if negative else text
    if body == "":
        raise LabelError(f"invalid target pattern '{text}': empty pattern")
    repo, rest = split_repo(body, what="target pattern")
    if rest.startswith("//"):
        path_part, colon, name = rest[2:].partition(":")
    else:
        if repo is not None:
            raise LabelError(f"invalid target pattern '{text}': a repository name must be "
                             "followed by '//'")
        path_part, colon, name = rest.partition(":")
        path_part = _join(offset, path_part, text)
        if not colon and not path_part.endswith("...") and is_package is not None \
                and not is_package(path_part):
            # `foo/bar` where foo/bar is no package: a target of the nearest enclosing
            # package, `//foo:bar` if foo is one, else `//:foo/bar` (as in Bazel).
            head, _, tail = path_part.rpartition("/")
            while head and not is_package(head):
                head, _, parent = head.rpartition("/")
                tail = f"{parent}/{tail}"
            path_part, colon, name = head, ":", tail
    repo = MAIN_REPO if repo is None else repo
    recursive = path_part == "..." or path_part.endswith("/...")
    package = path_part[: -len("...")].rstrip("/") if recursive else path_part
    validate_package_name(text, package, what="target pattern")
    if recursive:
        if not colon or name in _RULE_WILDCARDS:
            kind = PatternKind.RECURSIVE_RULES
        elif name in _TARGET_WILDCARDS:
            kind = PatternKind.RECURSIVE_TARGETS
        else:
            raise LabelError(f"invalid target pattern '{text}': after '...' only ':all' or "
                             "':*' may follow", hint=f"did you mean '{text.split(':')[0]}'?")
        return TargetPattern(text, kind, repo, package, "", negative)
    if not colon:
        name = package.rsplit("/", 1)[-1]
        if name == "":
            raise LabelError(f"invalid target pattern '{text}': empty target name",
                             hint="use '//...' for every target or '//:all' for the root "
                                  "package")
    if name in _RULE_WILDCARDS:
        return TargetPattern(text, PatternKind.PACKAGE_RULES, repo, package, "", negative)
    if name in _TARGET_WILDCARDS:
        return TargetPattern(text, PatternKind.PACKAGE_TARGETS, repo, package, "", negative)
    validate_target_name(text, name, what="target pattern")
    return TargetPattern(text, PatternKind.TARGET, repo, package, name, negative)


def _join(offset: str, relative: str, text: str) -> str:
    if relative.startswith("/"):
        raise LabelError(f"invalid target pattern '{text}': absolute paths are not patterns",
                         hint="start workspace-relative patterns with '//'")
    if offset == "" or relative == "":
        return offset or relative
    return f"{offset}/{relative}"
