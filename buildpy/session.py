"""The orchestrator: opens a workspace, wires the phases together, runs a command's work.

Commands in cli.py call these functions; they hold no state between invocations.
"""

from __future__ import annotations

import select
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TextIO

from buildpy.config.configuration import BuildOptions
from buildpy.core.errors import BpError, UserError, did_you_mean
from buildpy.core.label import Label, PackageId
from buildpy.core.pattern import TargetPattern, parse_pattern
from buildpy.core.workspace import Workspace, find_workspace_root
from buildpy.external.repository import RepoOptions
from buildpy.loading.loader import Loader
from buildpy.loading.patterns import expand_patterns

if TYPE_CHECKING:   # networkx is imported only by the commands that need the graph
    from buildpy.loading.graph import TargetGraph
    from buildpy.watch import Closure, WatchState


@dataclass(frozen=True)
class Session:
    """One command's view of a workspace: where it is, where the user stands, the loader."""

    workspace: Workspace
    offset: str          # the working directory, relative to the workspace root
    loader: Loader

    def parse_patterns(self, words: list[str]) -> list[TargetPattern]:
        return [parse_pattern(w, self.offset,
                              lambda path: self.loader.is_package(PackageId("", path)))
                for w in words]


def workspace_root(directory: str | None) -> Path:
    return find_workspace_root(Path(directory) if directory else Path.cwd())


def _offset(directory: str | None, root: Path) -> str:
    """Where the user stands in the workspace at `root` (relative labels start there):
    the working directory's path below it, unless -C named the directory."""
    cwd = Path.cwd().resolve()
    if directory is None and root in cwd.parents:
        return cwd.relative_to(root).as_posix()
    return ""


def open_session(directory: str | None, eval_timeout: float = 60.0,
                 repos: RepoOptions = RepoOptions()) -> Session:
    """A session on the workspace at or above `directory` (the working directory if
    None), its WORKSPACE file read (the repositories it loads from fetched); every
    workspace file it reads is in `loader.reads`."""
    import sys

    from buildpy.core.reads import ReadLog

    root = workspace_root(directory)
    reads = ReadLog()
    workspace = Workspace.at(root, reads)
    offset = _offset(directory, workspace.root)
    loader = Loader(workspace, eval_timeout=eval_timeout, reads=reads, repo_options=repos,
                    say=lambda line: print(f"INFO: {line}", file=sys.stderr, flush=True))
    loader.workspace_settings()
    return Session(workspace, offset, loader)


def run_fetch(directory: str | None, words: list[str], *,
              repos: RepoOptions = RepoOptions()) -> list[str]:
    """`bp fetch`: the repositories that the patterns' targets and their dependencies
    need (loading them fetches those), or every one WORKSPACE defines; their names."""
    from buildpy.query.syntax import parse_query
    from buildpy.query.uquery import TargetQueryEnvironment

    session = open_session(directory, repos=repos)
    repositories = session.loader.repos
    if not words:
        for name in repositories.definitions:
            repositories.fetch(name)
        return list(repositories.definitions)
    env = TargetQueryEnvironment(session.loader, session.offset)
    expression = " + ".join(repr(w) for w in words)
    text = f"deps({expression})"
    _evaluate(env, parse_query(text, None), text, None, False)
    return [n for n in repositories.definitions if repositories.is_ready(n)]


def _recorded_runs(directory: str | None, label: str | None = None,
                   path: str | None = None) -> tuple[list, float | None, list | None]:
    """The recorded runs (of a target, or of the action writing a file), when the last
    build started, and the actions it found up to date (None: not recorded)."""
    from buildpy.execution.explain import last_build, runs, unchanged
    from buildpy.execution.state import open_files_db

    root = workspace_root(directory)
    if not (root / "bp-out" / ".bp-state" / "files.sqlite").exists():
        raise UserError("no build of this workspace is recorded", hint="run bp build first")
    db = open_files_db(root / "bp-out")
    try:
        last = last_build(db)
        return runs(db, label=label, path=path), last, unchanged(db, last)
    finally:
        db.close()


def build_log(directory: str | None) -> list[dict]:
    """`bp log`: every action of the last build: how it was satisfied (ran, a cache hit,
    or up to date), how long it took, why."""
    from buildpy.execution.explain import log_entries

    return log_entries(*_recorded_runs(directory))


def explain_last_build(directory: str | None, what: str) -> list[str]:
    """`bp why`: how the last build satisfied the actions of target `what` (a label) or
    of the action that writes output file `what`, and why each ran."""
    import os

    from buildpy.core.label import LabelError, parse_label
    from buildpy.execution.explain import describe

    root = workspace_root(directory)
    label, path = None, None
    if what.startswith(("//", "@", ":")) or ":" in what:
        try:
            label = str(parse_label(what, PackageId("", _offset(directory, root))))
        except LabelError as error:
            raise UserError(error.message, hint=error.hint) from None
    else:   # an output file: as given, under bp-bin, or an exec path
        full = Path(what) if os.path.isabs(what) else (Path.cwd() / what)
        real = os.path.realpath(full)
        path = os.path.relpath(real, os.path.realpath(root / "bp-out"))
        path = "bp-out/" + path if not path.startswith("..") else what
    found, last, up_to_date = _recorded_runs(directory, label, path)
    if not found:
        raise UserError(f"no action of '{what}' is recorded in this workspace's builds",
                        hint="name a target the last build built (//pkg:name), or one of "
                             "its output files")
    return describe(found, last, None if up_to_date is None else
                    {action.output for action in up_to_date})


def module_graph(directory: str | None, *, repos: RepoOptions = RepoOptions(),
                 start: tuple[str, ...] = ()) -> list[str]:
    """`bp mod graph` / `bp mod deps`: the resolved module graph as Bazel prints it, a
    tree from the root module (or from each module in `start`); a module already shown
    is marked (*)."""
    session = open_session(directory, repos=repos)
    modules = session.loader.module_natives
    if modules.root is None:
        raise UserError("this workspace has no MODULE.bazel: there is no module graph",
                        hint="bp mod works with Bzlmod workspaces")
    root, selected = modules.root, modules.selected
    unknown = [n for n in start if n not in selected and n != root.name]
    if unknown:
        raise UserError(f"no module '{unknown[0]}' in the graph"
                        f"{did_you_mean(unknown[0], selected)}")
    lines: list[str] = []
    shown: set[str] = set()

    def walk(module, prefix: str, is_root: bool) -> None:
        deps = [d for d in module.deps if d.name in selected and (is_root or not d.dev)]
        for index, dep in enumerate(deps):
            last = index == len(deps) - 1
            chosen = selected[dep.name]
            again = dep.name in shown
            lines.append(f"{prefix}{'└───' if last else '├───'}{dep.name}@"
                         f"{chosen.version or '_'}{' (*)' if again else ''}")
            if not again:
                shown.add(dep.name)
                walk(chosen, prefix + ("    " if last else "│   "), False)

    tops = [root] if not start else [root if n == root.name else selected[n] for n in start]
    for top in tops:
        is_root = top is root
        lines.append(f"<root> ({root.name or 'root'}@{root.version or '_'})" if is_root
                     else f"{top.name}@{top.version or '_'}")
        walk(top, "", is_root)
    return lines


def run_sync(directory: str | None, *, repos: RepoOptions = RepoOptions(),
             configure: bool = False, only: tuple[str, ...] = ()) -> list[str]:
    """`bp sync`: fetch WORKSPACE's repositories again (`configure`: only those whose
    rule says configure = True; `only`: those named); their names."""
    session = open_session(directory, repos=repos)
    repositories = session.loader.repos
    unknown = [n for n in only if n not in repositories.definitions]
    if unknown:
        raise UserError(f"no repository '@{unknown[0]}' is defined"
                        f"{did_you_mean(unknown[0], repositories.definitions)}")
    names = []
    for name, definition in repositories.definitions.items():
        if only and name not in only:
            continue
        if configure and not (definition.rule is not None and definition.rule.configure):
            continue
        repositories.fetch(name, force=True)
        names.append(name)
    return names


@dataclass(frozen=True)
class Loaded:
    """The result of loading patterns: the matched labels and their checked graph."""

    labels: tuple[Label, ...]
    graph: TargetGraph
    errors: tuple[BpError, ...] = ()


def load_patterns(session: Session, words: list[str], keep_going: bool = False) -> Loaded:
    patterns = session.parse_patterns(words)
    labels, errors = expand_patterns(session.loader, patterns, keep_going)
    from buildpy.loading.graph import build_target_graph

    graph, graph_errors = build_target_graph(session.loader, labels, keep_going)
    return Loaded(tuple(labels), graph, tuple(errors + graph_errors))


def _parse_expression(words: tuple[str, ...], query_file: str | None, command: str):
    from buildpy.query.syntax import parse_query

    if query_file and words:
        raise UserError("give the query either on the command line or with --query_file, "
                        "not both")
    if query_file:
        try:
            text = Path(query_file).read_text(encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot read --query_file '{query_file}': {e.strerror}") from None
        except UnicodeDecodeError as e:
            from buildpy.core.errors import invalid_utf8
            raise invalid_utf8(query_file, e, "a query file must be UTF-8 text") from None
        path = query_file
    else:
        if not words:
            raise UserError("missing query expression",
                            hint=f"for example: bp {command} '//...' (see bp help {command})")
        text, path = " ".join(words), "<query>"
    return parse_query(text, path), text, path


def _evaluate(env, expr, text: str, path: str, keep_going: bool):
    from buildpy.query.engine import evaluate
    from buildpy.query.syntax import show_query_line

    try:
        result, errors = evaluate(env, expr, keep_going)
    except BpError as error:
        raise show_query_line(error, text, path) from None
    errors = [show_query_line(e, text, path) for e in errors] + \
        [e for e in env.errors if not any(e is seen for seen in errors)]
    return result, errors


def _target_query(directory: str | None, words: tuple[str, ...], command: str, *,
                  repos: RepoOptions, query_file: str | None, implicit_deps: bool,
                  keep_going: bool, universe_scope: str, loading_timeout: float):
    """A query over the target graph (bp query, bp graph), evaluated: its environment,
    its parsed expression and text, its result, and the errors kept (with -k)."""
    from buildpy.query.uquery import TargetQueryEnvironment

    expr, text, path = _parse_expression(words, query_file, command)
    session = open_session(directory, eval_timeout=loading_timeout, repos=repos)
    env = TargetQueryEnvironment(
        session.loader, session.offset, keep_going=keep_going, implicit_deps=implicit_deps,
        universe_scope=tuple(p for p in universe_scope.split(",") if p))
    result, errors = _evaluate(env, expr, text, path, keep_going)
    return env, expr, text, result, errors


def run_query(directory: str | None, words: tuple[str, ...], *,
              repos: RepoOptions = RepoOptions(), query_file: str | None,
              output: str, order: str, implicit_deps: bool, keep_going: bool,
              universe_scope: str, factored: bool, loading_timeout: float,
              out: TextIO) -> tuple[int, list[BpError]]:
    """`bp query`: parse, evaluate, print to `out`; returns (result size, errors kept)."""
    from buildpy.query.output import ordered, write
    from buildpy.query.syntax import Call

    env, expr, text, result, errors = _target_query(
        directory, words, "query", repos=repos, query_file=query_file,
        implicit_deps=implicit_deps, keep_going=keep_going, universe_scope=universe_scope,
        loading_timeout=loading_timeout)
    if output in ("graph", "minrank", "maxrank") or order in ("deps", "full"):
        env.ensure(result)
    path_result = isinstance(expr, Call) and expr.function == "somepath"
    nodes = ordered(env, result, order, path_result)
    write(env, nodes, result, output, out, factored)
    return len(result), errors


def run_graph(directory: str | None, words: tuple[str, ...], *,
              repos: RepoOptions = RepoOptions(), query_file: str | None, format: str,
              implicit_deps: bool, keep_going: bool, universe_scope: str,
              loading_timeout: float, out: TextIO) -> tuple[int, list[BpError]]:
    """`bp graph`: a query's result and the edges among it, as DOT or one HTML page."""
    from buildpy.query.graphview import graph_data, html_page
    from buildpy.query.output import graph_dot, ordered

    env, _, text, result, errors = _target_query(
        directory, words, "graph", repos=repos, query_file=query_file,
        implicit_deps=implicit_deps, keep_going=keep_going, universe_scope=universe_scope,
        loading_timeout=loading_timeout)
    env.ensure(result)
    nodes = ordered(env, result, "auto", False)
    if format == "dot":
        out.write(graph_dot(env, nodes, result, factored=False))
    else:
        out.write(html_page(graph_data(env, nodes, text.strip())))
    return len(result), errors


def run_cquery(directory: str | None, words: tuple[str, ...], options: BuildOptions, *,
               repos: RepoOptions = RepoOptions(), query_file: str | None, output: str, starlark_expr: str, order: str,
               implicit_deps: bool, keep_going: bool, loading_timeout: float,
               out: TextIO) -> tuple[int, list[BpError]]:
    """`bp cquery`: the same language over the configured graph."""
    from buildpy.lang.formatter import Formatter
    from buildpy.query.cquery import ConfiguredQueryEnvironment, build_options
    from buildpy.query.output import ordered, write
    from buildpy.query.syntax import Call

    expr, text, path = _parse_expression(words, query_file, "cquery")
    formatter = Formatter(starlark_expr) if output == "starlark" else None
    session = open_session(directory, eval_timeout=loading_timeout, repos=repos)
    env = ConfiguredQueryEnvironment(session.loader, session.offset, options,
                                     session.loader.workspace_settings(),
                                     keep_going=keep_going, implicit_deps=implicit_deps)
    result, errors = _evaluate(env, expr, text, path, keep_going)
    path_result = isinstance(expr, Call) and expr.function == "somepath"
    nodes = ordered(env, result, order, path_result)
    if output == "files":
        from buildpy.analysis.analyzer import Analyzer
        analysis = Analyzer(env.configured, session.loader.workspace_settings().name
                            ).analyze([n for n in nodes])
        files = dict.fromkeys(f for n in nodes for f in analysis.targets[n].files)
        out.writelines(f"{f}\n" for f in files)
    elif formatter is not None:
        from buildpy.lang.formatter import struct_of
        for node in nodes:
            data = env.record(node)
            value = struct_of(**{**data, "attr": struct_of(**data["attributes"])})
            out.write(formatter(value, build_options(env, node), {}) + "\n")
    else:
        write(env, nodes, result, output, out, True)
    return len(result), errors


def list_configurations(directory: str | None, options: BuildOptions,
                        repos: RepoOptions = RepoOptions()) -> list:
    """The target configuration and the exec configurations of the execution platforms."""
    from buildpy.config.configured import ConfiguredGraph
    from buildpy.loading.graph import GraphLoader

    session = open_session(directory, repos=repos)
    graph = ConfiguredGraph(GraphLoader(session.loader), options,
                            session.loader.workspace_settings())
    configs = [graph.top]
    for platform in graph.toolchains.exec_platforms:
        configs.append(graph.exec_configuration(platform))
    return list({c.hash: c for c in configs}.values())


def run_aquery(directory: str | None, words: tuple[str, ...], options: BuildOptions, *,
               repos: RepoOptions = RepoOptions(), query_file: str | None, output: str, include_commandline: bool,
               include_artifacts: bool, keep_going: bool, loading_timeout: float,
               out: TextIO) -> tuple[int, list[BpError]]:
    """`bp aquery`: the actions of the configured targets the expression picks."""
    from buildpy.query.aquery import ActionQueryEnvironment, write_actions
    from buildpy.query.syntax import Call

    expr, text, path = _parse_expression(words, query_file, "aquery")
    if isinstance(expr, Call) and expr.function == "emit":
        output = expr.args[0]   # `... | emit commands` chooses what is printed
    session = open_session(directory, eval_timeout=loading_timeout, repos=repos)
    env = ActionQueryEnvironment(session.loader, session.offset, options,
                                 session.loader.workspace_settings(), keep_going=keep_going)
    result, errors = _evaluate(env, expr, text, path, keep_going)
    count = write_actions(env, result, output, out, include_commandline, include_artifacts)
    return count, errors


@dataclass(frozen=True)
class BuildOutcome:
    """The result of `bp build` / `bp run`: exit code and the built targets' files."""

    code: int
    executables: dict
    workspace: Path
    workspace_name: str = "__main__"
    inputs: Closure | None = None   # what the build depended on (when given a WatchState)


def _configured_targets(session: Session, patterns: list[TargetPattern], labels,
                        options: BuildOptions, keep_going: bool, warm=None):
    """The graph configured (the one `warm` kept, grown again where it forgot), the keys
    to build, and with -k the errors met."""
    from buildpy.config.configured import ConfiguredGraph
    from buildpy.core.errors import ErrorGroup
    from buildpy.loading.graph import GraphLoader

    configured = warm.configured if warm is not None else None
    if warm is not None:
        warm.configured = None   # (until this one is whole)
    # (a long-lived bp walks the networkx graphs after each edit: made as it goes)
    graph_loader = configured.graph_loader if configured is not None else \
        GraphLoader(session.loader, graph=warm is not None)
    load_errors = graph_loader.add(labels)
    if load_errors and not keep_going:
        raise ErrorGroup.of(load_errors)
    if configured is None:
        configured = ConfiguredGraph(graph_loader, options,
                                     session.loader.workspace_settings(),
                                     graph=warm is not None)
    keys = [configured.key(label, configured.top) for label in labels
            if label in graph_loader]
    errors = configured.add(keys)
    if errors and not keep_going:
        raise ErrorGroup.of(errors)
    if warm is not None and not (load_errors or errors):
        warm.configured = configured
    if errors:   # -k: leave out what cannot be configured, and what depends on it
        import networkx as nx

        broken = set(configured.failed)
        keys = [k for k in keys if not ({k} | nx.descendants(configured.graph, k)) & broken]
    named = {p.label for p in patterns if not p.is_wildcard and not p.negative}
    kept = []
    for key in keys:
        if key.label not in named and "manual" in configured.nodes[key].attrs.get("tags", ()):
            continue   # wildcards skip targets tagged manual, as in Bazel
        if configured.incompatibility(key) is None:
            kept.append(key)
        elif key.label in named:
            raise configured.incompatible_error(key)
    return configured, kept, tuple(load_errors) + tuple(errors)


@dataclass(frozen=True)
class PlannedBuild:
    """What analysis decided for a build command: the actions, the files wanted, the
    executables (with their runfiles), and the targets to report."""

    actions: Any
    wanted: tuple[str, ...]
    executables: dict
    reported: tuple[tuple[str, tuple[str, ...]], ...]   # (label, files)
    output_dir: str
    workspace_name: str
    errors: tuple = ()   # with -k: the targets that could not be configured or analyzed


def _wanted_files(analysis, keys) -> tuple[str, ...]:
    """The files a build of `keys` must produce."""
    wanted: dict[str, None] = {}
    for key in keys:
        result = analysis.targets.get(key)
        if result is not None:
            wanted.update(dict.fromkeys(_files_wanted(result)))
    return tuple(wanted)


def _files_wanted(result) -> list[str]:
    """What building one requested target makes: its outputs, and for an executable the
    program and its runfiles (as `bazel build` does)."""
    if result.executable is None:
        return list(result.files)
    return [*result.files, *result.runfiles, result.executable]


@dataclass(frozen=True)
class _Unplanned:
    """A build command loaded and configured, not yet analyzed; and where its analysis
    is saved."""

    key: str
    path: Path          # in the shared cache
    digest_path: Path   # in the workspace's state: the SHA-256 of the file at `path`
    configured: Any
    keys: list
    workspace_name: str
    output_dir: str
    keep_going: bool = False
    errors: tuple = ()   # with -k: the targets that could not be configured

    @property
    def where(self) -> tuple[str, Path, Path]:
        return self.key, self.path, self.digest_path


def _payload_classes() -> tuple[type, ...]:
    """Every class a saved PlannedBuild holds: the only classes read back from it."""
    from buildpy.actions.graph import Action, ActionGraph, ActionKind
    from buildpy.analysis.results import TargetResult

    return (PlannedBuild, ActionGraph, Action, ActionKind, TargetResult)


def _plan_key(directory: str | None, words: list[str], options: BuildOptions, execution,
              repos: RepoOptions) -> str:
    """What a long-lived bp's kept state is for (watch mode): the same words and flags."""
    return repr((directory, words, options, execution.keep_going, repos))


def _saved_analysis(session: Session, words: list[str], options: BuildOptions,
                    execution) -> tuple[str, Path, Path]:
    """The key of this command's saved analysis, where it is saved, and where the
    workspace keeps its digest."""
    import hashlib
    import json

    from buildpy.analysis import snapshot
    from buildpy.execution.local import default_cache_dir

    loader = session.loader
    package_dir = Path(__file__).resolve().parent   # all of bp's Python and Starlark
    key = hashlib.sha256(json.dumps({
        "words": words, "offset": session.offset, "options": repr(options),
        "keep_going": execution.keep_going, "workspace": str(session.workspace.root),
        "repos": repr(loader.repos.options), "repositories": loader.repos.fingerprint(),
        "bp": snapshot.bp_digest([package_dir, loader.repos["prelude"],
                                  loader.repos["toolchains"]]),
    }, sort_keys=True).encode()).hexdigest()
    workspace_id = hashlib.sha256(str(session.workspace.root).encode()).hexdigest()[:16]
    path = (execution.disk_cache or default_cache_dir()) / "analysis" / workspace_id / \
        f"{key[:16]}.pickle"   # in the cache: it outlives `bp clean`
    digest_path = session.workspace.root / "bp-out" / ".bp-state" / "analysis" / \
        f"{key[:16]}.sha256"   # not shared: what this workspace saved, no other writer
    return key, path, digest_path


def _start_plan(session: Session, words: list[str], options: BuildOptions,
                execution, say=lambda line: None, warm=None,
                where: tuple[str, Path, Path] | None = None,
                checked=None, loaded: tuple | None = None) -> PlannedBuild | _Unplanned:
    """The last analysis, if nothing it read changed (kept in memory by `warm`, or the
    one this workspace saved: where `_saved_analysis` says, or `where`; `loaded` holds
    it when it was read already, by `_saved`); else load and configure. `checked`:
    reads just found unchanged (the last build's proof's), which the saved analysis need
    not look at again if they are its own."""
    import os

    from buildpy.loading.patterns import packages_below

    loader = session.loader
    if warm is not None:   # kept in memory, and not saved (its reads span many builds)
        if warm.plan is not None:
            return warm.plan
        key, path, digest_path = "", Path(os.devnull), Path(os.devnull)
    else:
        where = where or _saved_analysis(session, words, options, execution)
        key, path, digest_path = where
        saved = loaded[0] if loaded is not None else _saved(where, say)
        if saved is not None and isinstance(saved.payload, PlannedBuild) and (
                _same_reads(saved, checked) or saved.valid(
                    loader.listing, lambda text: packages_below(loader, "", text))):
            return _reusing(loader, saved)
        if execution.analysis_server != "no":
            served = _served(session, (key, path, digest_path), say)
            if served is not None:
                return _reusing(loader, served)
    patterns = session.parse_patterns(words)
    labels, pattern_errors = expand_patterns(loader, patterns, execution.keep_going)
    if pattern_errors and not execution.keep_going:
        from buildpy.core.errors import ErrorGroup
        raise ErrorGroup.of(pattern_errors)
    configured, keys, errors = _configured_targets(session, patterns, labels, options,
                                                   execution.keep_going, warm)
    errors = tuple(pattern_errors) + errors
    from buildpy.analysis.analyzer import output_dir

    return _Unplanned(key, path, digest_path, configured, keys,
                      loader.workspace_settings().name or "__main__",
                      output_dir(configured.top), execution.keep_going, errors)


def _saved(where: tuple[str, Path, Path], say):
    """The analysis saved `where` (`_saved_analysis`), or None."""
    from buildpy.analysis import snapshot

    key, path, digest_path = where
    return snapshot.load(path, digest_path, key, _payload_classes(), say)


def _same_reads(saved, checked) -> bool:
    """Whether `checked` (the reads the last build's proof kept, just found unchanged as
    a no-op build finds them) are exactly the saved analysis's: then the saved analysis
    holds as surely as a no-op build, which trusts that check alone, and need not look
    at the same files again. (Their stamps differ: the proof's is the last build's.)"""
    return checked is not None and (saved.files, saved.listings, saved.recursive) == (
        checked.files, checked.listings, checked.recursive)


def _reusing(loader: Loader, saved) -> PlannedBuild:
    """The plan of a saved (or served) analysis, what it read now known as read here."""
    for name in ("files", "listings", "recursive"):   # (for --watch, and the no-op proof)
        getattr(loader.reads, name).update(getattr(saved, name))
    return saved.payload


# ---- the analysis server (buildpy/server.py) ------------------------------------------

# An analysis of fewer rule targets than this takes about as long as a server's answer
# (reading the plan back), and its server would only take memory.
_SERVER_RULES = 1000


@dataclass(frozen=True)
class _Serving:
    """What an analysis server needs beyond the analysis it keeps: the command it
    analyzes (to load it again when a .bzl file changed, as watch mode does), and how
    long it waits for a request."""

    directory: str | None
    words: list[str]
    options: BuildOptions
    execution: Any
    repos: RepoOptions
    loading_timeout: float
    key: str   # of the saved analysis (_saved_analysis): the command it answers for

    @staticmethod
    def wanted(execution, unplanned: _Unplanned) -> bool:
        if unplanned.keep_going or execution.analysis_server == "no":
            return False
        return execution.analysis_server == "yes" or sum(
            node.target.is_rule for node in unplanned.configured.nodes.values()
        ) >= _SERVER_RULES


def _served(session: Session, where: tuple[str, Path, Path], say):
    """The analysis this workspace's server holds for the command of `where`'s key,
    brought up to date there (a Snapshot, which the server then saves `where` this
    build would), or None when no server has it; its error if the analysis failed.
    What loading said there (print() in a BUILD file, warnings) is said here."""
    from buildpy import server
    from buildpy.analysis import snapshot

    classes = _payload_classes() + _error_classes()
    root = session.workspace.root
    reply = server.ask(root, ("plan", where), lambda data: snapshot.loads(data, classes),
                       waiting=lambda: say(
                           "INFO: waiting for the analysis server of this workspace, "
                           "busy with another build or a long analysis (its log: "
                           f"{server.log_path(root)}; `bp shutdown` stops it)"))
    if not isinstance(reply, tuple) or len(reply) != 2:
        return None
    found, said = reply
    if not isinstance(found, snapshot.Snapshot) or found.key != where[0]:
        return None
    for line in str(said).splitlines():
        say(line)
    if isinstance(found.payload, BpError):
        raise found.payload
    return found if isinstance(found.payload, PlannedBuild) else None


def _error_classes() -> tuple[type, ...]:
    """The classes of the errors a server may answer with (as loaded in this process)."""
    from buildpy.core.errors import Location

    found, stack = [], [BpError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return (*found, Location)


def _start_server(warm, serving: _Serving) -> int | None:
    """Fork the server that keeps `warm` (a build's analysis process's state), and
    return its pid (None when it cannot listen). Each request for the same command's
    plan gets it up to date, as a watch session's next build would (what changed
    loaded, configured and analyzed again), and the Snapshot it answers with is saved
    once sent (the next build with nothing changed reads it without asking)."""
    import contextlib
    import io

    from buildpy import server
    from buildpy.analysis import snapshot
    from buildpy.core.reads import ReadLog

    key = serving.key

    def answer(request):
        try:
            kind, (asked, path, digest_path) = request
        except (TypeError, ValueError):
            kind = asked = None
        if kind != "plan" or asked != key:
            server.say("asked for another command's analysis")
            return "another command's analysis", None
        began = time.monotonic()
        said = io.StringIO()   # (the client says it)
        try:
            with contextlib.redirect_stderr(said):
                plan = _served_plan(warm, serving)
        except BpError as error:
            server.say(f"answered with an error in {time.monotonic() - began:.2f} s")
            return (snapshot.Snapshot.of(key, 0, ReadLog(), error), said.getvalue()), None
        server.say(f"answered in {time.monotonic() - began:.2f} s")
        reply = snapshot.Snapshot.of(key, warm.stamp_ns, warm.session.loader.reads, plan)

        def save() -> None:
            try:
                snapshot.save(path, digest_path, reply)
            except OSError as error:   # (the next build asks again)
                server.say(f"could not save the analysis: {error}")
            warm.prepare()

        return (reply, said.getvalue()), save

    return server.start(warm.session.workspace.root, answer,
                        serving.execution.max_idle_secs, warm.prepare)


def _served_plan(warm, serving: _Serving) -> PlannedBuild:
    """The plan of `warm`'s command now: what changed since its last plan forgotten
    (everything the session read is checked), and loaded, configured and analyzed
    again."""
    from buildpy.execution.places import check_output_base, stamp_at

    output_base = check_output_base(warm.session.workspace.root)
    stamp = stamp_at(output_base / ".bp-state" / "analysis-stamp")
    session = warm.session_for(warm.key, stamp, lambda: open_session(
        serving.directory, eval_timeout=serving.loading_timeout, repos=serving.repos))
    start = _start_plan(session, serving.words, serving.options, serving.execution,
                        warm=warm)
    return start if isinstance(start, PlannedBuild) else _analyze_plan(start, warm=warm)


def _analysis(configured, keys, workspace_name: str, keep_going: bool, on_part=None,
              warm=None):
    """The analysis of `keys`; with `warm`, only what changed since its last one (kept
    there for the next)."""
    from buildpy.analysis.analyzer import Analyzer

    analyzer = warm.analyzer if warm is not None else None
    if warm is not None:
        warm.analyzer = None   # (until this analysis succeeds)
    analysis = analyzer.analyze_again(configured, keys) if analyzer is not None else None
    if analysis is None:
        analyzer = Analyzer(configured, workspace_name,
                            again=warm is not None and not keep_going)
        analysis = analyzer.analyze(keys, on_part, keep_going=keep_going)
    if warm is not None and analyzer.can_analyze_again and not analysis.errors:
        warm.analyzer = analyzer
    return analysis


def _analyze_plan(unplanned: _Unplanned, on_part=None, warm=None) -> PlannedBuild:
    """Analyze (telling `on_part` of each part of the plan as it is analyzed); with
    `warm`, only what changed since its last analysis, and keep this one there."""
    configured, keys = unplanned.configured, unplanned.keys
    analysis = _analysis(configured, keys, unplanned.workspace_name, unplanned.keep_going,
                         on_part, warm)
    executables = {}
    reported = []
    wanted: dict[str, None] = {}
    last = warm.targets if warm is not None else {}
    kept = {}   # (a long-lived bp: a target analyzed to the same result, planned the same)
    for key in keys:
        result = analysis.targets.get(key)
        if result is None:
            continue
        planned = last.get(key)
        if planned is None or planned[0] is not result:
            planned = _planned_target(key, result)
        kept[key] = planned
        _, shown, executable, files = planned
        reported.append(shown)
        if executable is not None:
            executables[shown[0]] = executable
        wanted.update(files)
    plan = PlannedBuild(analysis.actions, tuple(wanted), executables, tuple(reported),
                        unplanned.output_dir, unplanned.workspace_name,
                        unplanned.errors + analysis.errors)
    if warm is not None and not plan.errors:
        warm.plan, warm.targets = plan, kept
    return plan


def _planned_target(key, result) -> tuple:
    """What a requested target gives the plan: (its result, its label and files as
    reported, its executable with runfiles or None, the files it wants built)."""
    executable = None if result.executable is None else replace(
        result, environment=dict(result.environment))
    return (result, (str(key.label), tuple(result.files)), executable,
            dict.fromkeys(_files_wanted(result)))


def _save_plan(session: Session, unplanned: _Unplanned, plan: PlannedBuild,
               stamp_ns: int) -> None:
    """Save the analysis with proof of all it read, as it was read (the stamp taken
    before the first read), for the next build to reuse; not one with errors, which the
    next build must report again."""
    from buildpy.analysis import snapshot

    if plan.errors:
        return
    key, path, digest_path = unplanned.where
    snapshot.save(path, digest_path, snapshot.Snapshot.of(key, stamp_ns,
                                                          session.loader.reads, plan))


class _AnalysisStream:
    """Analysis in a forked process, while the parent builds what it has analyzed so
    far (the scheduler's Feed): each part of the plan arrives as its actions (with the
    runfiles trees of requested executables) and the files newly wanted; then the plan,
    without its actions; then the child saves the analysis and exits, or with
    `serving`, becomes the analysis server (buildpy/server.py) that keeps it."""

    def __init__(self, session: Session, unplanned: _Unplanned, stamp_ns: int,
                 runfile_links: bool, serving: _Serving | None = None):
        from buildpy.core import forked

        self.plan: PlannedBuild | None = None
        self.reads = None   # with the plan: what loading and analysis read (a ReadLog)
        self.planned_at: float | None = None   # when the plan arrived (time.monotonic)
        self.error: BpError | None = None
        self.server: int | None = None   # the pid of the analysis server it started
        self._child = forked.start(lambda send: self._analyze(
            send, session, unplanned, stamp_ns, runfile_links, serving))

    @staticmethod
    def _analyze(send, session: Session, unplanned: _Unplanned, stamp_ns: int,
                 runfile_links: bool, serving: _Serving | None) -> None:
        from buildpy.actions.graph import RUNFILES_MANIFEST, ActionKind, runfiles_trees

        requested = set(unplanned.keys)
        producers: dict[str, Any] = {}
        trees_made: set[str] = set()

        def on_part(actions, results) -> None:
            fresh = []
            for action in actions:
                if action.kind is ActionKind.RUNFILES and action.outputs[0] in producers:
                    continue   # a tool's tree, made already for a requested executable
                action.definition   # noqa: B018 - computed here, and sent with the action
                for output in action.outputs:
                    producers.setdefault(output, action)
                fresh.append(action)
            wanted: list[str] = []
            executables = {}
            for key, result in results:
                if key in requested:
                    wanted += _files_wanted(result)
                    if runfile_links and result.executable is not None:
                        executables[str(key.label)] = result
                        wanted.append(f"{result.executable}{RUNFILES_MANIFEST}")
            trees = runfiles_trees(executables, producers.get, unplanned.workspace_name,
                                   trees_made)
            for tree in trees:
                producers[tree.outputs[0]] = tree
            send(("part", fresh + trees, wanted))

        warm = None
        if serving is not None:   # what watch mode keeps, to analyze again
            from buildpy.warm import Warm

            warm = Warm(key=unplanned.key, session=session, stamp_ns=stamp_ns,
                        configured=unplanned.configured)
        try:
            plan = _analyze_plan(unplanned, on_part, warm)
        except BpError as error:   # the parent raises it
            send(("error", error))
            raise
        if warm is not None and warm.analyzer is not None and warm.plan is plan:
            # (before the plan: the build must know the server's pid before it ends, or
            # it kills the server as an orphan of its actions, which it becomes once
            # this process exits while the build is their subreaper)
            send(("server", _start_server(warm, serving)))
        send(("plan", replace(plan, actions=None), session.loader.reads))
        _save_plan(session, unplanned, plan, stamp_ns)

    @property
    def ended(self) -> bool:
        return self.plan is not None or self._child.eof

    @property
    def failed(self) -> bool:
        """It ended without a plan: the analysis failed (`error`), or its process died."""
        return self._child.eof and self.plan is None

    def fileno(self) -> int:
        return self._child.fileno()

    def receive(self) -> list:
        parts = []
        for kind, *value in self._child.receive():
            if kind == "part":
                parts.append(value)
            elif kind == "plan":
                self.plan, self.reads = value
                self.planned_at = time.monotonic()
            elif kind == "server":
                self.server = value[0]
            else:
                self.error = value[0]
        return parts

    def close(self) -> None:
        """Let the child finish saving the analysis (once it sent the plan), or kill it."""
        self._child.close(wait=self.plan is not None)


class _Told:
    """The analysis stream as the scheduler reads it, telling a WatchState of each
    action that arrives."""

    def __init__(self, stream: _AnalysisStream, state: WatchState):
        self._stream, self._state = stream, state

    ended = property(lambda self: self._stream.ended)
    failed = property(lambda self: self._stream.failed)

    def fileno(self) -> int:
        return self._stream.fileno()

    def receive(self) -> list:
        parts = self._stream.receive()
        self._state.acting(a for actions, _ in parts for a in actions)
        return parts


def _linked(plan: PlannedBuild, warm):
    """The plan's graph with its executables' runfiles trees (the same graph as the last
    build's for the same plan, kept in memory by `warm`, and the same tree actions for
    the same executables)."""
    if warm is None:
        return plan.actions.with_runfiles_trees(plan.executables, plan.workspace_name)
    if warm.linked[0] is plan:
        return warm.linked[1:]
    graph, trees = plan.actions.with_runfiles_trees(plan.executables, plan.workspace_name,
                                                    warm.trees)
    warm.linked = (plan, graph, trees)
    return graph, trees


def _kept(state: WatchState | None, warm):
    """What a watch session keeps between its builds (`warm`, if given)."""
    if warm is None and state is not None:
        if state.kept is None:
            from buildpy.warm import Warm

            state.kept = Warm()
        warm = state.kept
    return warm


def run_build(directory: str | None, words: list[str], options: BuildOptions, execution,
              **flags) -> BuildOutcome:
    """`bp build` (and the build of `bp run`), its telemetry recorded: the summary
    lines, and --profile and --build_event_json_file written however it ends."""
    command = "run" if flags.get("only_executable") else "build"
    with _recording(command, directory, words, execution) as record:
        outcome = _run_build(directory, words, options, execution, record=record, **flags)
        record.code = outcome.code
        return outcome


def _recording(command: str, directory: str | None, words: list[str], execution):
    """The Recording of one command (what its flags ask for: --profile, ...)."""
    from buildpy.execution.recording import Recording

    try:
        root = workspace_root(directory)
    except BpError:   # the command reports it
        root = Path(directory or ".").resolve()
    return Recording(command, words, root, getattr(execution, "profile", None),
                     getattr(execution, "build_event_json_file", None),
                     getattr(execution, "publish_all_actions", False))


def _run_build(directory: str | None, words: list[str], options: BuildOptions, execution,
               *, progress, loading_timeout: float = 60.0, err: TextIO,
               only_executable: bool = False, build_runfile_links: bool = True,
               show_result: int = 1, repos: RepoOptions = RepoOptions(),
               state: WatchState | None = None, warm=None, record) -> BuildOutcome:
    """`bp build`: load, configure, analyze, execute what the patterns need; with
    `build_runfile_links` (as `bp run` always), the executables' runfiles trees too.
    Tells `state` (watch mode) what it read, planned and ran.

    A build that must analyze starts executing while the analysis goes on in another
    process (on a machine that can fork), unless a long-lived bp keeps its state
    (`warm`, a `buildpy.warm.Warm`): then it analyzes here, only what changed."""

    from buildpy.core import forked
    from buildpy.execution.local import LocalBuild, default_cache_dir
    from buildpy.execution.places import check_cache_dir, check_output_base, stamp_at

    # where bp writes, checked before it writes anything (the environment's fault, said
    # up front); the stamp comes before bp reads any workspace file (the ignore files,
    # WORKSPACE): a file whose timestamps are not older than it is hashed again next time
    warn = lambda line: err.write(line + "\n")   # noqa: E731
    output_base = check_output_base(workspace_root(directory), warn)
    check_cache_dir(execution.disk_cache or default_cache_dir(), warn)
    stamp = stamp_at(output_base / ".bp-state" / "analysis-stamp")
    warm = _kept(state, warm)
    opened = lambda: open_session(directory, eval_timeout=loading_timeout,  # noqa: E731
                                  repos=repos)
    session = opened() if warm is None else warm.session_for(
        _plan_key(directory, words, options, execution, repos), stamp, opened,
        state.touched if state is not None else None)
    if state is not None:
        state.reading(session.workspace, session.loader.reads)
    links = build_runfile_links or only_executable
    where = quick = unmoved = checked = read_ahead = None
    say = lambda line: err.write(line + "\n")   # noqa: E731
    if warm is None:
        from buildpy import noop

        where = _saved_analysis(session, words, options, execution)
        if noop.applies(execution, only_executable):
            quick = noop.place(session.workspace.root, where[0], execution, links)
            told = _from_last_proof(session, quick, execution, output_base, err, record,
                                    show_result, lambda: _saved(where, say))
            if isinstance(told, BuildOutcome):
                progress.close()
                return told
            if told is not None:
                unmoved, checked, read_ahead = told
    start = _start_plan(session, words, options, execution, say, warm, where, checked,
                        read_ahead)
    clock = record.telemetry.clock
    loaded = clock()
    record.telemetry.phase("loading", record.telemetry.origin, loaded)
    # (the files that --output_groups wants are known once the analysis has ended)
    stream = None
    if isinstance(start, _Unplanned) and forked.can_fork() and warm is None and not (
            options.aspects or options.output_groups):
        serving = _Serving(directory, words, options, execution, repos, loading_timeout,
                           start.key) if _Serving.wanted(execution, start) else None
        stream = _AnalysisStream(session, start, stamp, links, serving)
    plan = None
    try:
        build = LocalBuild(session.workspace.root, session.loader.repos.roots(), execution,
                           err=err, telemetry=record.telemetry,
                           memory=warm.memory if warm is not None else None)
        try:
            if not build.lock.held_here_last:
                unmoved = None   # (another bp held the lock since: more may have moved)
            _use_remote(build, execution)
            if stream is not None:
                from buildpy.actions.graph import ActionGraph

                executing = clock()
                try:
                    report = build.run(ActionGraph(()), [], progress,
                                       stream if state is None else _Told(stream, state))
                finally:   # (analysis beside execution: timed until the plan came)
                    record.telemetry.phase("execution", executing)
                    record.telemetry.phase("analysis", loaded, stream.planned_at or clock(),
                                           lane="analysis (forked process)")
                if stream.server is not None:
                    build.processes.spare(stream.server)
                if stream.error is not None:
                    raise stream.error
                plan = stream.plan
            if stream is None or (stream.failed and not report.interrupted):
                # (a stream fails when its process dies without a word: analyze here)
                if isinstance(start, _Unplanned):
                    analyzing = clock()
                    plan = _analyze_plan(start, warm=warm)
                    if warm is None:   # (a long-lived bp's reads are not one build's)
                        _save_plan(session, start, plan, stamp)
                    record.telemetry.phase("analysis", analyzing)
                else:
                    plan = start
                graph, wanted = plan.actions, list(plan.wanted)
                if links:
                    graph, trees = _linked(plan, warm)
                    wanted += trees
                if state is not None:
                    state.acting(graph.actions)
                executing = clock()
                try:
                    known = warm.settled if warm is not None else unmoved
                    report = build.run(graph, wanted, progress, settled=known)
                finally:
                    record.telemetry.phase("execution", executing)
            if state is not None:
                state.ran(report)
            if quick is not None and report.ok and plan is not None and not plan.errors:
                _prove(build, quick, stamp, stream.reads if stream is not None and
                       stream.reads is not None else session.loader.reads, plan)
        finally:
            progress.close()
            build.close()
            if warm is not None:
                warm.memory = build.memory()
    finally:
        if stream is not None:
            stream.close()
    # with no plan, the build stopped (a failure, Ctrl-C) before the analysis ended
    code = _build_ended(session, plan.output_dir if plan is not None else start.output_dir,
                        plan.reported if plan is not None else (),
                        plan.errors if plan is not None else (), plan is not None, report,
                        execution, record, err, only_executable, show_result)
    return BuildOutcome(code, plan.executables if plan is not None else {},
                        session.workspace.root,
                        plan.workspace_name if plan is not None else "__main__",
                        _planned(state, plan is not None))


def _build_ended(session: Session, output_dir: str, reported, analysis_errors,
                 planned: bool, report, execution, record, err: TextIO,
                 only_executable: bool, show_result: int) -> int:
    """Say how the build ended (as Bazel does), and return its exit code."""
    _link_bin(session, output_dir)
    _write_errors(analysis_errors, err)
    for error in report.errors:
        err.write(f"ERROR: {error}\n")
    if not only_executable and len(reported) <= show_result:   # as Bazel's --show_result
        for label, files in reported:
            if not files:
                continue
            if not all(p in report.produced or not p.startswith("bp-out/") for p in files):
                err.write(f"Target {label} failed to build\n")   # Bazel's words
                continue
            err.write(f"Target {label} up-to-date:\n")
            for path in files[:8]:
                err.write(f"  {path}\n")
    if planned:   # (else the pattern's expansion is never posted: aborted)
        record.targets(reported, report.produced)
    _write_lines(record.summary(), err)
    if report.interrupted:
        err.write("ERROR: build interrupted\n")
        code = 8
    elif not report.ok:
        err.write(f"FAILED: build did NOT complete successfully ({len(report.failed)} "
                  f"failed, {report.skipped} skipped)\n")
        code = _failure_code(report, err)
    elif analysis_errors:
        err.write(_NOT_ANALYZED)
        code = 1
    else:
        code = 0
    err.write(_summary_line(report, execution))
    return code


def _from_last_proof(session: Session, quick, execution, output_base: Path,
                     err: TextIO, record, show_result: int, meanwhile: Callable[[], Any]):
    """What the proof the last build of this command left says (noop.py): the outcome
    of a build with nothing to do, told as such a build tells it; or, when some files
    moved, which actions are still up to date (a lastbuild.Unmoved, or None when the
    proof cannot tell), the reads of loading and analysis found unchanged and what
    `meanwhile()` returned (as a 1-tuple); or None when those reads moved. The proof
    goes either way, until this build has succeeded.

    `meanwhile` (reading the saved analysis, which a build after an edit needs) runs,
    once the reads are found unchanged, while a forked child looks at the files
    (`_changed`)."""
    from buildpy import noop
    from buildpy.execution.execroot import exec_root_for
    from buildpy.execution.explain import mark_up_to_date
    from buildpy.execution.lastbuild import Unmoved
    from buildpy.execution.local import WorkspaceLock, default_cache_dir, said
    from buildpy.execution.scheduler import BuildReport
    from buildpy.execution.state import open_files_db
    from buildpy.loading.patterns import packages_below

    loader = session.loader
    exec_root = exec_root_for(execution.disk_cache or default_cache_dir(),
                              session.workspace.root)
    proved = noop.proof(quick, exec_root) if quick.path.exists() else None
    if proved is None:
        noop.forget(quick)
        return None
    proof, kept, reads = proved
    say = lambda line: err.write(said(line))   # noqa: E731

    def unless_reads_moved():
        if not reads.valid(loader.listing, lambda text: packages_below(loader, "", text)):
            return None
        return (meanwhile(),)

    lock = WorkspaceLock(output_base / ".bp-state" / "lock", execution.block_for_lock, say)
    try:
        moved, done = _changed(proof, exec_root, unless_reads_moved)
        if moved != []:
            noop.forget(quick)
            if done is None:
                return None
            return (None if moved is None else Unmoved(proof, moved)), reads, done
        db = open_files_db(output_base, say)
        try:
            mark_up_to_date(db, proof.unchanged)
        finally:
            db.close()
    finally:
        lock.release()
    reported = [(label, tuple(files)) for label, files in kept["reported"]]
    report = BuildReport(total=proof.actions, cached=proof.actions,
                         sources={"local-cache": proof.actions})
    report.produced.update((path, None) for _, files in reported for path in files)
    record.telemetry.counted(report)
    code = _build_ended(session, kept["output_dir"], reported, (), True, report, execution,
                        record, err, False, show_result)
    return BuildOutcome(code, {}, session.workspace.root, kept["workspace_name"])


def _changed(proof, exec_root: Path, meanwhile: Callable[[], tuple | None]
             ) -> tuple[list[str] | None, tuple | None]:
    """`(proof.changed(exec_root), meanwhile())`, both at once: the files are looked at
    (a stat each, tens of thousands) in a forked child, on another core, which the
    parent's `meanwhile` would not get from a thread of its own (the lookups would wait
    for the interpreter's lock after each stat). When `meanwhile()` returns None, the
    files need no look: (None, None). Without a fork, or when the child fails, the
    parent looks itself, after `meanwhile`."""
    from buildpy.core import forked

    if not forked.can_fork():
        done = meanwhile()
        return (None, None) if done is None else (proof.changed(exec_root), done)
    child = forked.start(lambda send: send(proof.changed(exec_root)))
    found: list = []
    try:
        done = meanwhile()
        while done is not None and not found and not child.eof:
            select.select([child], [], [])
            found = child.receive()
    finally:
        child.close(wait=bool(found))
    if done is None:
        return None, None
    return (found[0] if found else proof.changed(exec_root)), done


def _prove(build, quick, stamp_ns: int, reads, plan: PlannedBuild) -> None:
    """After a build that succeeded: keep the proof that it left nothing to do, if the
    build can give one (noop.py)."""
    from buildpy import noop

    proof = build.prove()
    if proof is None:
        return
    try:
        noop.keep(quick, proof, stamp_ns, reads, build.exec_root, {
            "reported": [[label, list(files)] for label, files in plan.reported],
            "output_dir": plan.output_dir, "workspace_name": plan.workspace_name})
    except OSError:   # (a full disk, say: the next build goes the ordinary way)
        noop.forget(quick)


def _planned(state: WatchState | None, known: bool) -> Closure | None:
    """What `state` holds as the build's input closure (whole if the plan is `known`)."""
    if state is None:
        return None
    state.planned = known
    return state.closure()


_NOT_ANALYZED = ("FAILED: build did NOT complete successfully (targets that could not be "
                 "loaded or analyzed were left out)\n")


def _write_errors(errors, err: TextIO) -> None:
    """Each error once (with -k, one cause may fail many targets)."""
    shown = dict.fromkeys(single.render() for error in errors
                          for single in getattr(error, "errors", (error,)))
    for text in shown:
        err.write(f"ERROR: {text}\n")


def _summary_line(report, execution) -> str:
    """`INFO: N actions: X executed, Y cache hits`, and with a remote cache or executor
    where the results came from."""
    line = f"INFO: {report.total} actions: {report.executed} executed, {report.cached} " \
           "cache hits"
    if execution.remote is not None:
        counts = report.sources
        line += (f" ({counts.get('remote-cache', 0)} remote cache hits, "
                 f"{counts.get('remote', 0)} remote, {counts.get('local', 0)} local, "
                 f"{counts.get('local-cache', 0)} local cache hits)")
    return line + "\n"


def _use_remote(build, execution) -> None:
    """Connect the build to the remote cache or executor of the flags, if any (the
    server's capabilities checked once, here)."""
    if execution.remote is None:
        return
    from buildpy.core.errors import RemoteError
    from buildpy.remote.execution import connect

    try:
        build.use_remote(connect(execution.remote, build.exec_root, build.say))
    except RemoteError as error:
        if not execution.remote.local_fallback:
            raise
        build.say(f"WARNING: {error.message}; building locally (--remote_local_fallback)")


def _failure_code(report, err: TextIO) -> int:
    """1 for a failed build; 36 (with what to do) when the machine is at fault."""
    if any(o.remote_error for o in report.failed):
        return 34   # Bazel's exit code for a remote error
    blamed = [o.environment for o in report.failed if o.environment]
    if not blamed:
        return 1
    err.write(f"hint: {blamed[0]}\n")
    return 36


@dataclass(frozen=True)
class TestOptions:
    test_output: str = "summary"
    timeout: float | None = None
    flaky_attempts: int | None = None
    runs_per_test: int = 1
    test_filter: str | None = None
    tag_filters: tuple[str, ...] = ()
    size_filters: tuple[str, ...] = ()
    lang_filters: tuple[str, ...] = ()
    test_env: tuple[str, ...] = ()
    test_args: tuple[str, ...] = ()
    cache_results: bool = True


def _passes_filters(target, options: TestOptions) -> bool:
    tags = set(target.attrs.get("tags", ()))
    positive = [t for t in options.tag_filters if not t.startswith("-")]
    negative = [t[1:] for t in options.tag_filters if t.startswith("-")]
    if positive and not tags & set(positive) or tags & set(negative):
        return False
    size = target.attrs.get("size", "medium")
    sizes = [s for s in options.size_filters if not s.startswith("-")]
    if sizes and size not in sizes or f"-{size}" in options.size_filters:
        return False
    lang = target.kind.rsplit("_test", 1)[0]
    langs = [x for x in options.lang_filters if not x.startswith("-")]
    return not (langs and lang not in langs or f"-{lang}" in options.lang_filters)


def _link_bin(session: Session, output_dir: str) -> None:
    """Point the workspace's `bp-bin` at the configuration's output directory (Bazel's
    convenience symlink), as `bp build` and `bp test` both do."""
    import os

    link = session.workspace.root / "bp-bin"
    target = Path(output_dir) / "bin"
    if link.is_symlink() and os.readlink(link) != str(target):
        link.unlink()
    if not link.is_symlink() and not link.exists():
        os.symlink(target, link)


def run_test(directory: str | None, words: list[str], options: BuildOptions, execution,
             test: TestOptions, *, err: TextIO, **flags) -> int:
    """`bp test`, its telemetry recorded (as `run_build`'s); the summary lines go to
    stderr before the tests' summary."""
    with _recording("test", directory, words, execution) as record:
        record.code = _run_test(directory, words, options, execution, test, err=err,
                                record=record, **flags)
        return record.code


def _run_test(directory: str | None, words: list[str], options: BuildOptions, execution,
              test: TestOptions, *, progress, err: TextIO, out: TextIO,
              repos: RepoOptions = RepoOptions(), state: WatchState | None = None,
              warm=None, record) -> int:
    """`bp test`: build the matched targets, then run their tests (suites expanded) as
    TestRunner actions of the same action graph: the others side by side, then the
    exclusive ones alone (and, with --test_output=streamed, every test, locally).
    Tells `state` (watch mode) what it read, planned and ran."""
    import os

    from buildpy.actions.tests import TEST_MNEMONIC
    from buildpy.analysis.analyzer import output_dir
    from buildpy.analysis.tests import test_spec
    from buildpy.execution.local import LocalBuild, default_cache_dir
    from buildpy.execution.places import check_cache_dir, check_output_base, stamp_at
    from buildpy.execution.testrunner import TestProgress, TestRun
    from buildpy.query.uquery import TargetQueryEnvironment

    warn = lambda line: err.write(line + "\n")   # noqa: E731
    output_base = check_output_base(workspace_root(directory), warn)   # as bp build does
    check_cache_dir(execution.disk_cache or default_cache_dir(), warn)
    warm = _kept(state, warm)
    opened = lambda: open_session(directory, repos=repos)  # noqa: E731
    session = opened() if warm is None else warm.session_for(
        "test " + _plan_key(directory, words, options, execution, repos),
        stamp_at(output_base / ".bp-state" / "analysis-stamp"), opened)
    if state is not None:
        state.reading(session.workspace, session.loader.reads)
    patterns = session.parse_patterns(words)
    labels, pattern_errors = expand_patterns(session.loader, patterns, execution.keep_going)
    if pattern_errors and not execution.keep_going:
        from buildpy.core.errors import ErrorGroup
        raise ErrorGroup.of(pattern_errors)
    named = {p.label for p in patterns if not p.is_wildcard and not p.negative}
    query = TargetQueryEnvironment(session.loader, session.offset,
                                   keep_going=execution.keep_going)
    query.ensure(labels)
    labels = [label for label in labels if label in named or "manual" not in
              query.target(label).attrs.get("tags", ())]
    tests = [label for label in query.tests(labels)
             if _passes_filters(query.target(label), test)]
    configured, keys, errors = _configured_targets(session, patterns, list(dict.fromkeys(
        labels + tests)), options, execution.keep_going, warm)
    telemetry = record.telemetry
    analyzing = telemetry.clock()
    telemetry.phase("loading", telemetry.origin, analyzing)
    errors = tuple(pattern_errors) + tuple(query.errors) + errors
    workspace_name = session.loader.workspace_settings().name or "__main__"
    analysis = _analysis(configured, keys, workspace_name, execution.keep_going, warm=warm)
    telemetry.phase("analysis", analyzing)
    errors += analysis.errors
    _write_errors(errors, err)
    keys = [k for k in keys if k in analysis.targets]   # (-k: those analyzed)
    test_keys = [k for k in keys if k.label in set(tests)]
    wanted = _wanted_files(analysis, keys)
    graph, trees = analysis.actions.with_runfiles_trees(   # tests run in their trees
        {str(k.label): analysis.targets[k] for k in test_keys}, workspace_name)
    specs = [spec for spec in (test_spec(
        key, configured.nodes[key].target.attrs, analysis.targets[key],
        timeout=test.timeout, attempts=test.flaky_attempts, runs=test.runs_per_test,
        test_filter=test.test_filter, test_args=test.test_args,
        configuration=configured.nodes[key].configuration) for key in test_keys)
        if spec is not None]
    test_env = {}
    for item in test.test_env:
        name, equals, value = item.partition("=")
        test_env[name] = value if equals else os.environ.get(name, "")
    streamed = test.test_output == "streamed"

    def on_result(result) -> None:
        if test.test_output == "all" or (test.test_output == "errors" and
                                         result.status.value in ("FAILED", "TIMEOUT")):
            for log in result.logs:
                out.write(f"==================== Test output for {result.spec.label}:\n")
                out.write(log.read_text(errors="replace"))
                out.write("=" * 80 + "\n")

    def stream(data: bytes) -> None:
        out.write(data.decode("utf-8", "replace"))
        out.flush()

    reported = [(str(k.label), tuple(analysis.targets[k].files)) for k in keys]
    kinds = {str(k.label): configured.nodes[k].target.kind for k in keys}
    build = LocalBuild(session.workspace.root, session.loader.repos.roots(), execution,
                       err=err, telemetry=telemetry)
    try:
        _use_remote(build, execution)
        run = TestRun(specs, build.exec_root, session.workspace.root, workspace_name,
                      test_env, on_result=on_result, stream=stream if streamed else None)
        if not test.cache_results:
            build.executor.skip_lookup = frozenset({TEST_MNEMONIC})
        graph = graph.extended(run.actions())
        if state is not None:
            state.acting(graph.actions)
            state.planned = True
        hooked = TestProgress(progress, run)
        # the build and the tests in one run, each test once what it needs is built;
        # then the exclusive tests (all of them when streamed), one at a time
        phases = [(list(wanted) + trees + [a.outputs[0] for a in (
            () if streamed else run.actions(exclusive=False))], None)]
        later = run.actions() if streamed else run.actions(exclusive=True)
        if later:
            phases.append(([a.outputs[0] for a in later], 1))
        produced: set[str] = set()
        for paths, jobs in phases:
            executing = telemetry.clock()
            try:
                report = build.run(graph, paths, hooked, jobs=jobs, retry=run.retry)
            finally:
                telemetry.phase("execution", executing)
            if state is not None:
                state.ran(report)
            produced.update(report.produced)
            _link_bin(session, output_dir(configured.top))
            for error in report.errors:
                err.write(f"ERROR: {error}\n")
            if report.interrupted:
                progress.close()
                record.targets(reported, produced, kinds)
                _write_lines(record.summary(), err)
                err.write("ERROR: testing interrupted\n" if run.ran else
                          "FAILED: build did NOT complete successfully; no tests ran\n")
                return 8
            if report.errors or any(o.action.mnemonic != TEST_MNEMONIC
                                    for o in report.failed):
                progress.close()
                results = run.results(produced) if run.ran else []
                record.tests(run, results, reported, produced, kinds)
                _write_lines(record.summary(), err)
                err.write("FAILED: build did NOT complete successfully"
                          f"{'' if run.ran else '; no tests ran'}\n")
                if run.ran:   # (with -k, the tests whose dependencies built ran)
                    _summary(results, session.workspace.root, out)
                return _failure_code(report, err)
        progress.close()
        if not test_keys:
            err.write("ERROR: no test targets were found, yet testing was requested\n")
            return 4
        results = run.results(produced)
    finally:
        progress.close()   # (again: closing twice is harmless)
        build.digests.flush()
        build.close()
    record.tests(run, results, reported, produced, kinds)
    _write_lines(record.summary(), err)
    code = _summary(results, session.workspace.root, out)
    if errors:
        err.write(_NOT_ANALYZED)
        return 1
    return code


def _write_lines(lines: list[str], err: TextIO) -> None:
    for line in lines:
        err.write(line + "\n")


def _summary(results, workspace: Path, out: TextIO) -> int:
    passed = failed = executed = 0
    for result in results:
        status = result.status.value
        if result.status.value == "FLAKY":
            status = f"FLAKY, failed in {result.failed_attempts} out of " \
                     f"{result.failed_attempts + 1}"
        shards = result.spec.shard_count
        runs = result.spec.runs
        extra = "".join([f" ({shards} shards)" if shards > 1 else "",
                         f" ({runs} runs)" if runs > 1 else ""])
        cached = "(cached) " if result.cached else ""
        text = f"{cached}{status} in {result.duration:.1f}s{extra}"
        out.write(f"{result.spec.label:<60} {text}\n")
        if result.status.value in ("FAILED", "TIMEOUT"):
            for log in result.logs:
                out.write(f"  {log.relative_to(workspace)}\n")
        executed += not result.cached and result.status.value != "NO STATUS"
        if result.status.value in ("PASSED", "FLAKY"):
            passed += 1
        else:
            failed += 1
    total = len(results)
    tail = f"{passed} test{'s' if passed != 1 else ''} pass" + (
        f" and {failed} fail{'s' if failed == 1 else ''} locally" if failed else "")
    out.write(f"\nExecuted {executed} out of {total} test{'s' if total != 1 else ''}: {tail}.\n")
    return 3 if failed else 0
