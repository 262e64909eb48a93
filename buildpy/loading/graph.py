"""The unconfigured target graph: every target reachable from the roots, checked.

Loads packages on demand through the Loader, resolves each dependency edge to a target
(or a "no such target" error with a suggestion), enforces visibility and testonly, and
reports dependency cycles with their path. Knows nothing of configurations.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Mapping

import networkx as nx

from buildpy.core.errors import BpError, ErrorGroup, UserError, closest
from buildpy.core.errors import Location
from buildpy.core.label import Label, PackageId
from buildpy.loading.builder import keyword_position
from buildpy.loading.loader import Loader, NoSuchPackage
from buildpy.loading.target import PACKAGE_GROUP, SOURCE_FILE, Package, Target


@dataclass(frozen=True)
class TargetGraph:
    """Nodes are Labels (with the Target as node data `target`); edges point to deps.

    Edge data `attr` names the attribute that made the edge.
    """

    graph: nx.DiGraph
    packages: Mapping[PackageId, Package]

    def target(self, label: Label) -> Target:
        return self.graph.nodes[label]["target"]

    def __contains__(self, label: Label) -> bool:
        return label in self.graph

    def targets(self) -> Iterable[Target]:
        return (data["target"] for _, data in self.graph.nodes(data=True))


class NoSuchTarget(UserError):
    """A label names a target that its (loaded) package does not declare."""


def missing_target_error(package: Package, name: str) -> NoSuchTarget:
    label = package.id.label(name)
    match = closest(name, package.targets)
    suggestion = f"; did you mean '{package.id.label(match)}'?" if match else ""
    return NoSuchTarget(
        f"no such target '{label}': target '{name}' not declared in package "
        f"'{package.id.name}' defined by {package.build_file}{suggestion}")


class _Where:
    """`in 'attr' of genrule rule '//p:t'`, for messages: built only when one is."""

    __slots__ = ("attr", "target")

    def __init__(self, attr: str, target: Target):
        self.attr, self.target = attr, target

    def __str__(self) -> str:
        return f"in '{self.attr}' of {self.target.kind_text} '{self.target.label}'"


class GraphLoader:
    """Grows a target graph on demand: `add(labels)` loads their transitive closure.

    The graph it grows is its own working copy; `snapshot()` hands out a frozen one.
    """

    def __init__(self, loader: Loader, graph: bool = False):
        """`graph`: grow `graph` from the start (a query walks it), not when asked."""
        self.loader = loader
        # the targets reached, in the order reached, and the edges checked from each:
        # what `graph` is made of, when first asked for
        self._targets: dict[Label, Target] = {}
        self._edges: dict[Label, list[tuple[Label, str]]] | None = None if graph else {}
        self._graph: nx.DiGraph | None = nx.DiGraph() if graph else None
        self.packages: dict[PackageId, Package] = {}
        # the same packages by (repository, name): a lookup of a label (the graph's most
        # frequent step) then makes no PackageId
        self._by_name: dict[tuple[str, str], Package] = {}
        self.errors: list[BpError] = []
        self._pending: set[Label] = set()   # targets whose edges to check again

    @property
    def graph(self) -> nx.DiGraph:
        """The targets reached (`target`: the Target) and their dependency edges (`attr`:
        the attribute of one). Made when first asked for (by a query, or a long-lived bp
        loading again), and grown from then on: a build needs only the checks that adding
        the targets made, and at 100,000 targets this graph would take a few hundred MiB."""
        if self._graph is None:
            graph = self._graph = nx.DiGraph()
            for label, target in self._targets.items():
                graph.add_node(label, target=target)
            for label, edges in self._edges.items():
                graph.add_edges_from((label, dep, {"attr": attr}) for dep, attr in edges)
            self._edges = None   # (the graph has them)
        return self._graph

    def __contains__(self, label: Label) -> bool:
        return label in self._targets

    def package(self, package_id: PackageId) -> Package:
        package = self.packages.get(package_id)
        if package is None:
            package = self.loader.load_package(package_id)
            self.packages[package_id] = package
            self._by_name[package_id.repo, package_id.name] = package
        return package

    def lookup(self, label: Label) -> Target:
        package = self._by_name.get((label.repo, label.package)) or \
            self.package(label.package_id)
        target = package.targets.get(label.name)
        if target is None:
            raise self._missing(package, label)
        return target

    def _missing(self, package: Package, label: Label) -> NoSuchTarget:
        error = missing_target_error(package, label.name)
        subpackage = self._subpackage_of(label)
        if subpackage is not None:
            rest = label.name[len(subpackage.name) - len(label.package):].lstrip("/")
            error.hint = (f"'{subpackage.name}' is a package of its own; "
                          f"write '{subpackage.label(rest)}'")
        elif label.package_id.repo == "" and self._file_exists(label):
            error.hint = (f"a source file of this name exists; add "
                          f"exports_files([\"{label.name}\"]) to {package.build_file}")
        return error

    def _subpackage_of(self, label: Label) -> PackageId | None:
        parts = label.name.split("/")[:-1]
        for index in range(len(parts), 0, -1):
            sub = "/".join(p for p in (label.package, *parts[:index]) if p)
            candidate = PackageId(label.repo, sub)
            if self.loader.is_package(candidate):
                return candidate
        return None

    def _file_exists(self, label: Label) -> bool:
        path = self.loader.workspace.root / label.package / label.name
        return self.loader.reads.is_file(path) if label.repo == "" else path.is_file()

    def forget(self, packages: set[PackageId]) -> None:
        """A long-lived bp: these packages were loaded again. Their targets leave the
        graph (added again when reached), and the targets that depended on one have their
        dependencies checked again by the next `add`."""
        stale = [label for package in packages if package in self.packages
                 for label in self.packages[package].labels if label in self._targets]
        self._pending.update(p for label in stale for p in self.graph.predecessors(label)
                             if p.package_id not in packages)
        self.graph.remove_nodes_from(stale)
        for label in stale:
            del self._targets[label]
        self._pending.difference_update(stale)
        for package in packages:
            self.packages.pop(package, None)
            self._by_name.pop((package.repo, package.name), None)

    def add(self, roots: Iterable[Label]) -> list[BpError]:
        """Load `roots` and everything they depend on; returns the user errors met."""
        errors: list[BpError] = []
        targets = self._targets
        queue = deque(targets[label] for label in self._pending if label in targets)
        self._pending = set()
        for label in roots:
            if label not in targets:
                try:
                    target = self.lookup(label)
                except UserError as error:
                    errors.append(error)
                    continue
                self._add_node(label, target)
                queue.append(target)
        while queue:
            target = queue.popleft()
            edges = []   # added together: networkx's per-call work is done once
            for attr, dep_label in target.dependencies():
                try:
                    dep = self._dependency(target, attr, dep_label)
                except BpError as error:
                    if not isinstance(error, UserError):
                        raise
                    if not any(error is seen for seen in errors):
                        errors.append(error)
                    continue
                if dep_label not in targets:
                    self._add_node(dep_label, dep)
                    queue.append(dep)
                edges.append((dep_label, attr))
            if edges:
                if self._graph is not None:
                    self._graph.add_edges_from((target.label, dep, {"attr": attr})
                                               for dep, attr in edges)
                else:
                    self._edges.setdefault(target.label, []).extend(edges)
        return errors

    def _add_node(self, label: Label, target: Target) -> None:
        self._targets[label] = target
        if self._graph is not None:
            self._graph.add_node(label, target=target)

    def snapshot(self) -> TargetGraph:
        return TargetGraph(nx.freeze(self.graph.copy()), dict(self.packages))

    def _dependency(self, target: Target, attr: str, label: Label) -> Target:
        where = _Where(attr, target)   # formatted only for an error
        try:
            dep = self.lookup(label)
        except (NoSuchPackage, NoSuchTarget) as error:
            raise self._error_at(target, attr, f"{where}: {error.message}",
                                 error.hint, label) from None
        if dep.kind == SOURCE_FILE and "/" in label.name:
            subpackage = self._subpackage_of(label)
            if subpackage is not None:
                rest = label.name[len(subpackage.name) - len(label.package):].lstrip("/")
                raise self._error_at(
                    target, attr,
                    f"{where}: label '{label}' crosses into package '{subpackage.name}'",
                    f"write '{subpackage.label(rest)}' instead", label)
        if attr and (target.label.package != label.package or target.label.repo != label.repo):
            self._check_visibility(target, attr, dep, where)
        if attr and target.is_rule and dep.is_rule and dep.attrs.get("testonly") \
                and not target.attrs.get("testonly"):
            raise self._error_at(target, attr,
                                 f"{where}: non-test target '{target.label}' depends on "
                                 f"testonly target '{label}'",
                                 f"set testonly = True on '{target.label}'", label)
        return dep

    def attr_position(self, target: Target, attr: str,
                      label: Label | None = None) -> tuple[Location, str | None]:
        """Where `attr = ...` (or `label` in it) is in the target's BUILD file, if there;
        else the target's own location."""
        location, line = target.location, None
        if target.label.repo == "":
            try:
                text = (self.loader.workspace.root / location.path).read_text(encoding="utf-8")
            except OSError:
                text = ""
            found = keyword_position(text, location.path, location.line, attr)
            if found is not None:
                location, line = found
                if label is not None:
                    location, line = _label_position(text, location, label) or found
            elif text:
                line = text.splitlines()[location.line - 1]
        return location, line

    def _error_at(self, target: Target, attr: str, message: str,
                  hint: str | None, label: Label | None = None) -> UserError:
        location, line = self.attr_position(target, attr, label)
        return UserError(message, location=location, source_line=line, hint=hint)

    def is_visible(self, dep: Target, package: PackageId) -> bool:
        """May targets of `package` depend on `dep`?"""
        return dep.label.package_id == package or self._visible(dep, package, dep.label, set())

    def _check_visibility(self, target: Target, attr: str, dep: Target, where: _Where) -> None:
        if dep.implicitly_exported or self._visible(dep, target.label.package_id, dep.label,
                                                    set()):
            return
        shown = ", ".join(f'"{v}"' for v in dep.visibility)
        raise self._error_at(
            target, attr,
            f"{where}: target '{dep.label}' is not visible from target '{target.label}'",
            f"add \"//{target.label.package}:__pkg__\" (or a package_group holding it) "
            f"to the visibility of '{dep.label}', which is now [{shown}]", dep.label)

    def _visible(self, dep: Target, package: PackageId, owner: Label, seen: set) -> bool:
        for item in dep.visibility:
            if item.package == "visibility":  # //visibility:* means the same in any repo
                if item.name == "public":
                    return True
                continue
            if item.name == "__pkg__":
                if item.package_id == package:
                    return True
            elif item.name == "__subpackages__":
                if item.repo == package.repo and (
                        item.package == "" or package.name == item.package
                        or package.name.startswith(item.package + "/")):
                    return True
            elif self._in_group(item, package, owner, seen):
                return True
        return False

    def _in_group(self, group_label: Label, package: PackageId, owner: Label,
                  seen: set) -> bool:
        """Whether `package` is in the package group or in one it includes (depth first,
        with an explicit stack: chains of includes may be long)."""
        stack = [group_label]
        while stack:
            group_label = stack.pop()
            if group_label in seen:
                continue
            seen.add(group_label)
            try:
                group = self.lookup(group_label)
            except BpError as error:
                raise UserError(f"in the visibility of '{owner}': {error.message}",
                                hint=error.hint) from None
            if group.kind != PACKAGE_GROUP:
                raise UserError(f"in the visibility of '{owner}': '{group_label}' is a "
                                f"{group.kind_text}, not a package_group",
                                location=group.location,
                                hint="visibility takes //visibility:public, //pkg:__pkg__, "
                                     "//pkg:__subpackages__ or package_group labels")
            allowed = False
            for spec in group.attrs["packages"]:
                negative = spec.startswith("-")
                if _spec_matches(spec.lstrip("-"), package):
                    if negative:
                        break   # excluded by this group: its includes are not asked
                    allowed = True
            else:
                if allowed:
                    return True
                stack.extend(reversed(group.attrs["includes"]))
        return False

    def check_cycles(self) -> None:
        if nx.is_directed_acyclic_graph(self.graph):
            return
        path = _a_cycle(self.graph)
        first = self.graph.nodes[path[0]]["target"]
        raise UserError(f"cycle in dependency graph: {' -> '.join(map(str, path))}",
                        location=first.location,
                        hint="break the cycle by removing one of these dependencies")


def _a_cycle(graph: nx.DiGraph) -> list[Label]:
    """One cycle of a cyclic graph, as a path that starts and ends at the same node."""
    for component in nx.strongly_connected_components(graph):
        start = min(component)
        if len(component) == 1 and not graph.has_edge(start, start):
            continue
        inner = graph.subgraph(component)
        best: list[Label] | None = None
        for successor in sorted(inner.successors(start)):
            path = nx.shortest_path(inner, successor, start)
            if best is None or len(path) < len(best):
                best = path
        return [start, *best]
    raise AssertionError("no cycle in a cyclic graph")


def _label_position(text: str, start: Location, label: Label) -> tuple[Location, str] | None:
    """The first quoted spelling of `label` at or after `start`, within a few lines."""
    spellings = {str(label), f"//{label.package}:{label.name}", f":{label.name}", label.name}
    if label.name == label.package.rsplit("/", 1)[-1]:
        spellings.add(f"//{label.package}")
    lines = text.splitlines()
    for index in range(start.line - 1, min(len(lines), start.line + 50)):
        line = lines[index]
        offset = start.column - 1 if index == start.line - 1 else 0
        for spelling in spellings:
            for quote in ('"', "'"):
                column = line.find(f"{quote}{spelling}{quote}", offset)
                if column >= 0:
                    return Location(start.path, index + 1, column + 1), line
    return None


def _spec_matches(spec: str, package: PackageId) -> bool:
    if spec == "public":
        return True
    if spec == "private":
        return False
    path = spec[2:]
    if path == "...":
        return True
    if path.endswith("/..."):
        base = path[:-4]
        return package.name == base or package.name.startswith(base + "/")
    return package.name == path


def build_target_graph(loader: Loader, roots: Iterable[Label],
                       keep_going: bool = False) -> tuple[TargetGraph, list[BpError]]:
    """The checked graph of `roots` and everything they depend on.

    Raises the errors met, or with `keep_going` returns them beside the partial graph.
    """
    graph_loader = GraphLoader(loader, graph=True)
    errors = graph_loader.add(roots)
    if errors and not keep_going:
        raise ErrorGroup.of(errors)
    graph_loader.check_cycles()
    return TargetGraph(nx.freeze(graph_loader.graph), dict(graph_loader.packages)), errors
