"""The action graph: actions and the files they read and write (bipartite, like ninja).

Knows commands and paths; not which rule made them, nor how they run.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Protocol

from buildpy.core.errors import UserError

if TYPE_CHECKING:   # imported when needed: a no-op build does without it
    import networkx as nx


RUNFILES_MANIFEST = ".runfiles/MANIFEST"   # `<executable>` + this: its tree's MANIFEST


class ActionKind(enum.Enum):
    RUN = "run"            # runs argv
    WRITE = "write"        # writes `content` to its output
    TEMPLATE = "template"  # copies its input, applying `substitutions`
    SYMLINK = "symlink"    # copies `target` to its output; or, when its output is a
    #                        declared symlink, makes it a symbolic link whose text is `target`
    RUNFILES = "runfiles"  # links its inputs into a runfiles tree; `content` names the
    #                        workspace's directory in it, `substitutions` are links at names
    #                        of their own; its output is the tree's MANIFEST


@dataclass(frozen=True, slots=True)
class Action:
    """One action. Paths are execution paths, relative to the exec root.

    Slotted: a build holds one per action in two processes, and an instance dict (with
    the values derived later added to it) took about 1.5 KB more of each."""

    owner: str                       # `//pkg:name (config hash)`
    owner_label: str
    configuration: str
    mnemonic: str
    kind: ActionKind
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    progress_message: str = ""
    execution_requirements: tuple[tuple[str, str], ...] = ()
    platform: tuple[tuple[str, str], ...] = ()   # exec properties of the execution platform
    content: str | None = None
    substitutions: tuple[tuple[str, str], ...] = ()
    target: str | None = None
    is_executable: bool = False   # (of RUN: its outputs are made executable once it ran)
    use_default_shell_env: bool = False
    output_directories: tuple[str, ...] = ()   # the outputs that are directories (trees)
    output_symlinks: tuple[str, ...] = ()   # the outputs that are symbolic links, kept as
    #                                         links (ctx.actions.declare_symlink)
    timeout: float | None = None   # seconds the process may run (REAPI Action.timeout)

    # derived from the fields above, each once, when first asked for (and saved with it)
    _all_inputs: tuple[str, ...] | None = field(default=None, init=False, repr=False,
                                                compare=False)
    _definition: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def all_inputs(self) -> tuple[str, ...]:
        found = self._all_inputs
        if found is None:
            found = tuple(dict.fromkeys(self.inputs + self.tools))
            object.__setattr__(self, "_all_inputs", found)
        return found

    def with_env(self, env: tuple[tuple[str, str], ...]) -> "Action":
        """This action with `env`. What it derived (`all_inputs`, `definition`) does
        not depend on the environment, so it carries over instead of being computed
        again."""
        other = replace(self, env=env)
        other.__setstate__(self._derived())
        return other

    def _derived(self) -> tuple:
        return self._all_inputs, self._definition

    def __reduce__(self):   # (the values in a tuple: smaller, and faster to read back)
        return Action, _GIVEN(self), self._derived()

    def __setstate__(self, derived: tuple) -> None:
        object.__setattr__(self, "_all_inputs", derived[0])
        object.__setattr__(self, "_definition", derived[1])

    @property
    def payload(self) -> tuple | None:
        """What an in-process action writes, beside its inputs: the content, the
        substitutions, the link target, the executable bit (for RUN, only whether its
        outputs are made executable, and None if not)."""
        if self.kind is ActionKind.RUN:
            return ("executable",) if self.is_executable else None
        return (self.kind.value, self.content, self.substitutions, self.target,
                self.is_executable)

    @property
    def cacheable(self) -> bool:
        return "no-cache" not in dict(self.execution_requirements)

    def description(self) -> tuple:
        """Everything analysis fixes about what the action does: the one description
        from which its definition digest (the fast fingerprint, aquery's ActionKey) and
        its REAPI Command (the cache key) are both made. Input paths are here; their
        contents, the environment and the tools' identities are added at execution.
        Metadata (owner, mnemonic, progress message) is not."""
        return (self.kind.value, self.argv, tuple(sorted(self.outputs)),
                tuple(sorted(self.output_directories)), self.platform, self.payload,
                self.cacheable, self.all_inputs, self.timeout,
                tuple(sorted(self.output_symlinks)))

    @property
    def definition(self) -> str:
        """The digest of `description()`: the part of the action's fingerprint that
        analysis fixes. ActionGraph.build computes it, so that a saved analysis carries
        it to later builds."""
        found = self._definition
        if found is None:
            found = hashlib.sha256(repr(self.description()).encode()).hexdigest()
            object.__setattr__(self, "_definition", found)
        return found


# the fields an Action is made with, in order: what pickling it keeps beside the derived
_GIVEN = attrgetter(*(f.name for f in fields(Action) if f.init))


@dataclass(frozen=True)
class Artifact:
    """A file of the build: a source file, or an output of exactly one action."""

    path: str
    is_source: bool
    owner: str | None = None         # the target that declared an output
    is_directory: bool = False
    is_symlink: bool = False   # an unresolved symbolic link (ctx.actions.declare_symlink)


class Executable(Protocol):
    """What a runfiles tree needs of an executable target (analysis' TargetResult)."""

    executable: str | None
    runfiles: tuple[str, ...]
    runfile_links: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ActionGraph:
    """The actions, and which one writes each output; the files are their inputs and
    outputs (a source file is an input no action writes)."""

    actions: tuple[Action, ...]
    producers: Mapping[str, int] = field(default_factory=dict)   # output path -> action

    @staticmethod
    def build(actions: Iterable[Action], declared: Mapping[str, Artifact]) -> "ActionGraph":
        """The graph of `actions`; every output `declared` must be written by one."""
        actions = tuple(actions)
        producers: dict[str, int] = {}
        for index, action in enumerate(actions):
            claim_outputs(producers, actions, index)
            action.definition   # noqa: B018 - computed now, to be saved with the analysis
        orphans = sorted(p for p, a in declared.items() if not a.is_source
                         and p not in producers)
        if orphans:
            owner = declared[orphans[0]].owner
            raise UserError(f"'{owner}' declared '{orphans[0]}' but no action generates it"
                            + (f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""),
                            hint="pass every declared file as an output of some action")
        return ActionGraph(actions, producers)

    def made_inputs(self) -> list[tuple[int, ...]]:
        """For each action, the actions that write its inputs; computed once per graph
        (a long-lived bp builds the same graph again after a source file's edit)."""
        made = self.__dict__.get("_made_inputs")
        if made is None:
            made = [inputs_made(action, self.producers) for action in self.actions]
            self.__dict__["_made_inputs"] = made
        return made

    def __getstate__(self) -> dict:   # (what it computes for itself is not saved)
        return {name: value for name, value in self.__dict__.items()
                if name != "_made_inputs"}

    def extended(self, actions: Iterable[Action]) -> "ActionGraph":
        """This graph plus `actions`, which must not write what another action writes."""
        everything = self.actions + tuple(actions)
        producers = dict(self.producers)
        for index in range(len(self.actions), len(everything)):
            claim_outputs(producers, everything, index)
        return ActionGraph(everything, producers)

    def with_runfiles_trees(self, executables: Mapping[str, Executable],
                            workspace_name: str, made: dict | None = None
                            ) -> tuple["ActionGraph", list[str]]:
        """This graph plus a SymlinkTree action per executable (label -> what analysis
        said of it) that links its runfiles tree, unless the graph has it (a tool's); and
        the trees' MANIFESTs (to want them built). `made` (a long-lived bp's) keeps the
        actions made, to give the same one again for the same executable."""
        def producer(path: str) -> Action | None:
            index = self.producers.get(path)
            return self.actions[index] if index is not None else None

        wanted = [f"{r.executable}{RUNFILES_MANIFEST}" for r in executables.values()
                  if r.executable is not None]
        trees = runfiles_trees(executables, producer, workspace_name, set(), made)
        return self.extended(trees), list(dict.fromkeys(wanted))

    def graph(self) -> nx.DiGraph:
        """Files and actions as one bipartite graph: file -> action -> file."""
        import networkx as nx

        graph = nx.DiGraph()
        for index, action in enumerate(self.actions):
            node = ("action", index)
            graph.add_node(node)
            graph.add_edges_from((("file", p), node) for p in action.all_inputs)
            graph.add_edges_from((node, ("file", p)) for p in action.outputs)
        return graph

    def actions_of(self, owner: str) -> list[int]:
        return [i for i, a in enumerate(self.actions) if a.owner == owner]


def inputs_made(action: Action, producers: Mapping[str, int]) -> tuple[int, ...]:
    """The actions (by index in `producers`) that write `action`'s inputs."""
    return tuple(producers[p] for p in action.all_inputs if p in producers)


def claim_outputs(producers: dict[str, int], actions: tuple[Action, ...], index: int
                   ) -> None:
    """Record action `index` as the producer of its outputs; two producers of one file
    are an error."""
    action = actions[index]
    for output in action.outputs:
        if output in producers:
            other = actions[producers[output]]
            raise UserError(
                f"file '{output}' is generated by two actions: {other.mnemonic} of "
                f"'{other.owner}' and {action.mnemonic} of '{action.owner}'",
                hint="give one of the outputs another name")
        producers[output] = index


def runfiles_trees(executables: Mapping[str, Executable],
                   producer: Callable[[str], Action | None], workspace_name: str,
                   seen: set[str], made: dict | None = None) -> list[Action]:
    """A SymlinkTree action per executable (label -> what analysis said of it) whose
    tree is not in `seen` (which they join) and that no action makes yet (`producer`
    gives the action that writes a file): an alias and its actual target share one
    tree, and a tool's tree is made by analysis. `made`, if given, holds the actions
    made before, reused for the same executable (the same object)."""
    trees = []
    last = dict(made or {})   # label -> (result, (owner, configuration, name), tree)
    if made is not None:
        made.clear()
    for label, result in executables.items():
        executable = result.executable
        if executable is None or executable in seen or \
                producer(f"{executable}{RUNFILES_MANIFEST}") is not None:
            continue
        seen.add(executable)
        owner = producer(executable)
        where = (owner.owner if owner else label, owner.configuration if owner else "",
                 workspace_name)
        known = last.get(label)
        if known is not None and known[0] is result and known[1] == where:
            tree = known[2]
        else:
            tree = runfiles_tree(where[0], label, where[1], executable, result.runfiles,
                                 workspace_name, result.runfile_links)
        if made is not None:
            made[label] = (result, where, tree)
        trees.append(tree)
    return trees


def runfiles_tree(owner: str, owner_label: str, configuration: str, executable: str,
                  runfiles: Iterable[str], workspace_name: str,
                  links: Iterable[tuple[str, str]] = ()) -> Action:
    """The action that links `executable`'s runfiles into `<executable>.runfiles/` (Bazel's
    SymlinkTree), each file at its runfiles path and each of `links` (name in the tree,
    exec path) at its name: bp runs it itself once the files exist, beside the other
    actions."""
    tree = f"{executable}.runfiles"
    links = tuple(links)
    return Action(owner=owner, owner_label=owner_label, configuration=configuration,
                  mnemonic="SymlinkTree", kind=ActionKind.RUNFILES,
                  outputs=(f"{executable}{RUNFILES_MANIFEST}",),
                  inputs=tuple(runfiles),
                  tools=tuple(dict.fromkeys((executable, *(p for _, p in links)))),
                  substitutions=links,
                  content=workspace_name, progress_message=f"Creating runfiles tree {tree}",
                  execution_requirements=(("local", "1"), ("no-cache", "1")))
