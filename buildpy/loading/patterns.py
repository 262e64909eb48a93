"""Expands target patterns into labels, loading the packages they cover.

Positive patterns add, negative ones (`-//pkg/...`) subtract, in order, as Bazel does.
"""

from __future__ import annotations

import os
import sys
from typing import Iterable

from buildpy.core.errors import BpError, ErrorGroup, UserError
from buildpy.core.label import Label, PackageId
from buildpy.core.pattern import PatternKind, TargetPattern
from buildpy.core.workspace import BUILD_FILES
from buildpy.loading.loader import Loader


def packages_below(loader: Loader, repo: str, package: str) -> list[str]:
    if repo == "":
        known = loader.reads.recursive.get(package)
        if known is not None:   # seen by this session (a long-lived bp checks it again
            return list(known)  # before each build, and forgets it if it moved: warm.py)
        packages = _utf8_only(loader.workspace.packages_below(package))
        loader.reads.found_below(package, packages)   # what a saved analysis relies on
        return packages
    root = loader.repos[repo]
    found = set()
    for path in (root / package).rglob("BUILD*"):
        if path.name in BUILD_FILES and path.is_file():
            relative = path.parent.relative_to(root).as_posix()
            found.add("" if relative == "." else relative)
    return sorted(found)


class MatchesNothing(UserError):
    """A recursive pattern with no package beneath its directory."""


def about_the_pattern(error: BpError) -> bool:
    """Whether `error` (from `expand_patterns`) is about the pattern itself (no such
    target, nothing beneath a directory), which a query shows at the pattern's place in
    the query, rather than an error of loading a BUILD file (which keeps its own place,
    whatever command loaded it)."""
    from buildpy.loading.graph import NoSuchTarget   # networkx: lazily

    return error.location is None and isinstance(error, (NoSuchTarget, MatchesNothing))


def expand_patterns(loader: Loader, patterns: Iterable[TargetPattern],
                    keep_going: bool = False) -> tuple[list[Label], list[BpError]]:
    """Labels matched by `patterns` in order of first match, and errors kept going past."""
    result: dict[Label, None] = {}
    errors: list[BpError] = []
    for pattern in patterns:
        try:
            labels = _expand_one(loader, pattern, keep_going, errors)
        except BpError as error:
            if not keep_going:
                raise
            errors.append(error)
            continue
        if pattern.negative:
            for label in labels:
                result.pop(label, None)
        else:
            result.update(dict.fromkeys(labels))
    return list(result), errors


def _expand_one(loader: Loader, pattern: TargetPattern, keep_going: bool,
                errors: list[BpError]) -> list[Label]:
    if pattern.kind is PatternKind.TARGET:
        package = loader.load_package(pattern.package_id)
        if pattern.name not in package.targets:
            from buildpy.loading.graph import missing_target_error   # networkx: lazily

            raise missing_target_error(package, pattern.name)
        return [pattern.label]
    rules_only = pattern.kind in (PatternKind.PACKAGE_RULES, PatternKind.RECURSIVE_RULES)
    if pattern.kind in (PatternKind.PACKAGE_RULES, PatternKind.PACKAGE_TARGETS):
        names = [pattern.package]
    else:
        names = packages_below(loader, pattern.repo, pattern.package)
        if not names and not pattern.negative:
            raise MatchesNothing(f"no targets found beneath '{pattern.package or '//'}' "
                                 f"(pattern '{pattern.text}')",
                                 hint="check the path; directories listed in .bazelignore "
                                      "or .bpignore are skipped")
    labels: list[Label] = []
    for name in names:
        try:
            package = loader.load_package(PackageId(pattern.repo, name))
        except BpError as error:
            if not keep_going or pattern.negative:
                raise
            errors.extend(error.errors if isinstance(error, ErrorGroup) else [error])
            continue
        labels.extend(package.rule_labels if rules_only else package.labels)
    return labels


def _utf8_only(packages: Iterable[str]) -> list[str]:
    """Packages whose directory names are UTF-8; no label can name the others (their
    names hold surrogates), so they are skipped with a warning, as Bazel cannot have them."""
    kept = []
    for name in packages:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            shown = os.fsencode(name).decode("utf-8", errors="backslashreplace")
            print(f"WARNING: skipping directory '{shown}': its name is not valid UTF-8, so "
                  "it cannot be a package", file=sys.stderr)
            continue
        kept.append(name)
    return kept
