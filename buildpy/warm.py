"""What a long-lived bp (watch mode) keeps from one build to the next of the same
patterns and flags: the session's loader, with its packages and .bzl modules, the
Analyzer that made the last analysis (its Starlark state, ready to analyze again), and
the last plan.

Before each build it checks everything the last one read (files as they were read,
glob listings, the packages below recursive patterns) and forgets only what changed:

- nothing changed: the last plan is the plan (a source file's edit needs no loading
  or analysis);
- BUILD files or glob listings of main-repository packages changed: those packages
  are loaded again; the targets that looked at them are configured again (the whole
  graph, if platforms, select() conditions, toolchains or build settings did); and the
  Analyzer analyzes only the targets whose inputs to analysis changed, and the targets
  that depend on one whose providers changed;
- anything else (a .bzl file, WORKSPACE, MODULE.bazel, an ignore file, a package that
  appeared or vanished, an external repository's file): a new session, as a fresh bp.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from buildpy.core.label import PackageId
from buildpy.core.reads import listing_digest
from buildpy.core.workspace import BUILD_FILES


@dataclass
class Warm:
    key: str | None = None         # the words and flags the kept state was made for
    session: Any = None
    stamp_ns: int = 0              # taken before the session read its first file
    configured: Any = None         # the last configured graph (and its target graph)
    analyzer: Any = None           # the last analysis's, when it can analyze again
    plan: Any = None               # the last plan, while nothing it was made from changed

    def session_for(self, key: str, stamp_ns: int, open_session: Callable[[], Any]) -> Any:
        """The session for a build of `key`: the kept one with what changed forgotten,
        or a new one."""
        if self.key != key or self.session is None or not self._forget_changes():
            self.key, self.stamp_ns = key, stamp_ns
            self.configured = self.analyzer = self.plan = None
            self.session = None   # (if opening fails, the next build opens again)
            self.session = open_session()
        return self.session

    def _forget_changes(self) -> bool:
        """Forget the packages whose BUILD file or listing changed (and the last plan,
        if anything changed); False when the change needs a new session."""
        from buildpy.loading.patterns import packages_below

        loader = self.session.loader
        reads = loader.reads
        root = loader.workspace.root
        changed: set[PackageId] = set()
        for path, proof in list(reads.files.items()):
            if proof is None:
                if not os.path.exists(path):
                    continue
            elif proof.holds(Path(path), self.stamp_ns):
                continue
            package = _package_of(Path(path), root)
            if package is None:
                return False
            changed.add(package)
            del reads.files[path]
        for name, digest in list(reads.listings.items()):
            if name.startswith("@"):
                if listing_digest(loader.listing(name)) != digest:
                    return False
                continue
            if listing_digest(loader.listing(name)) != digest:
                changed.add(PackageId("", name))
                del reads.listings[name]
        for pattern, packages in list(reads.recursive.items()):
            del reads.recursive[pattern]
            if tuple(packages_below(loader, "", pattern)) != packages:
                return False   # a package appeared or vanished
        for package in changed:
            loader.forget_package(package)
        if changed:
            self.plan = None
            if self.configured is not None:
                self.configured.graph_loader.forget(changed)
                if not self.configured.forget(changed):
                    self.configured = None
        return True


def _package_of(path: Path, root: Path) -> PackageId | None:
    """The main-repository package whose BUILD file `path` is, if it is one."""
    if path.name not in BUILD_FILES:
        return None
    try:
        relative = path.parent.relative_to(root).as_posix()
    except ValueError:
        return None
    if relative.startswith("bp-out/") or relative == "bp-out":
        return None
    return PackageId("", "" if relative == "." else relative)
