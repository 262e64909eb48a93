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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from buildpy.core.label import PackageId
from buildpy.core.reads import listing_digest
from buildpy.core.workspace import BUILD_FILES
from buildpy.execution.settled import Settled


@dataclass
class Warm:
    key: str | None = None         # the words and flags the kept state was made for
    session: Any = None
    stamp_ns: int = 0              # taken before the session read its first file
    configured: Any = None         # the last configured graph (and its target graph)
    analyzer: Any = None           # the last analysis's, when it can analyze again
    plan: Any = None               # the last plan, while nothing it was made from changed
    settled: Settled = field(default_factory=Settled)   # actions known up to date
    targets: dict = field(default_factory=dict)   # the last plan's part of each target
    linked: tuple = (None, None, ())   # the last plan, with its runfiles trees
    trees: dict = field(default_factory=dict)   # the runfiles tree actions made for it
    memory: dict | None = None   # the last build's file digests and completed actions

    def session_for(self, key: str, stamp_ns: int, open_session: Callable[[], Any],
                    touched: set[str] | None = None) -> Any:
        """The session for a build of `key`: the kept one with what changed forgotten,
        or a new one. `touched`, when given, holds every path under the workspace that
        changed since the last build began (watch mode's file events): only those are
        checked again, with the files read outside the workspace."""
        self.settled.touch(touched)
        if self.key != key or self.session is None or not self._forget_changes(touched):
            self.key, self.stamp_ns = key, stamp_ns
            self.configured = self.analyzer = self.plan = None
            self.targets, self.trees = {}, {}
            self.session = None   # (if opening fails, the next build opens again)
            self.session = open_session()
        return self.session

    def prepare(self) -> None:
        """Between builds: make the next analysis again cheaper ahead of it (see
        Analyzer.prepare_again; one that cannot be made ready is forgotten), and the
        graphs that forgetting what an edit changed walks, which a build does not make
        (ConfiguredGraph.graph, GraphLoader.graph)."""
        from buildpy.core.errors import BpError

        if self.configured is not None:   # (made ahead of the edits that walk them)
            self.configured.graph   # noqa: B018
            self.configured.graph_loader.graph   # noqa: B018
        if self.analyzer is not None and not self.analyzer.prepared_again:
            try:
                self.analyzer.prepare_again()
            except BpError:
                self.analyzer = None
            _trim_malloc()   # (the copy frozen, the first analysis's heap was freed)

    def _forget_changes(self, touched: set[str] | None) -> bool:
        """Forget the packages whose BUILD file or listing changed (and the last plan,
        if anything changed); False when the change needs a new session."""
        from buildpy.loading.patterns import packages_below

        loader = self.session.loader
        reads = loader.reads
        root = loader.workspace.root
        inside = str(root) + os.sep
        if touched is not None and any(_moves_packages(path, reads, inside)
                                       for path in touched):
            touched = None   # check everything
        files = reads.files if touched is None else {
            path: proof for path, proof in reads.files.items()
            if path in touched or not path.startswith(inside)}
        under = set() if touched is None else _listings_under(touched, reads, inside)
        listings = reads.listings if touched is None else {   # (other repositories': all)
            name: digest for name, digest in reads.listings.items()
            if name.startswith("@") or name in under}
        changed: set[PackageId] = set()
        for path, proof in list(files.items()):
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
        for name, digest in list(listings.items()):
            if name.startswith("@"):
                if listing_digest(loader.listing(name)) != digest:
                    return False
                continue
            if listing_digest(loader.listing(name)) != digest:
                changed.add(PackageId("", name))
                del reads.listings[name]
        for pattern, packages in list(reads.recursive.items() if touched is None else ()):
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


def _moves_packages(path: str, reads, inside: str) -> bool:
    """Whether a change at `path` may add or remove packages: a BUILD file made or gone
    (not one read before and still there: an edit), a directory, or a path gone that
    held a package the recursive patterns found."""
    if os.path.basename(path) in BUILD_FILES:
        return reads.files.get(path) is None or not os.path.isfile(path)
    if os.path.isdir(path):
        return True
    if os.path.lexists(path) or not path.startswith(inside):
        return False
    relative = path[len(inside):]
    return any(p == relative or p.startswith(relative + "/")
               for packages in reads.recursive.values() for p in packages)


def _listings_under(touched: set[str], reads, inside: str) -> set[str]:
    """The glob listings (main-repository packages) that a touched path may be in: the
    listings of its directory's ancestors."""
    found = set()
    for path in touched:
        if not path.startswith(inside):
            continue
        parts = path[len(inside):].split("/")[:-1]
        for end in range(len(parts) + 1):
            name = "/".join(parts[:end])
            if name in reads.listings:
                found.add(name)
    return found


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


def _trim_malloc() -> None:
    """Give the C heap's free memory back to the system (glibc keeps it for reuse, and a
    long-lived bp would hold it for good: about 65 MiB after the first analysis of
    10,000 targets is frozen). Nothing where the C library is not glibc."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
