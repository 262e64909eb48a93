"""The query environment of `bp aquery`: actions of the configured targets.

Expressions pick configured targets as in cquery; `inputs()`, `outputs()` and
`mnemonic()` narrow them to actions, and every target left in a result stands for all
its actions. Analysis runs once, on the configured graph the expression needed.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from dataclasses import dataclass, replace
from typing import Iterable, TextIO

from buildpy.actions.graph import Action, ActionKind
from buildpy.actions.tests import test_actions
from buildpy.analysis.analyzer import AnalysisResult, Analyzer
from buildpy.analysis.tests import test_spec

from buildpy.query.cquery import ConfiguredQueryEnvironment
from buildpy.query.engine import Result

EMITS = ("text", "summary", "commands", "jsonproto", "inputs", "outputs", "mnemonic", "key")


@dataclass(frozen=True, order=True)
class ActionNode:
    """One action, by its index in the action graph."""

    index: int


class ActionQueryEnvironment(ConfiguredQueryEnvironment):
    emits = EMITS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._analysis: AnalysisResult | None = None
        self._by_owner: dict[str, list[int]] = {}

    def analysis(self) -> AnalysisResult:
        if self._analysis is None:
            keys = [k for k in self.configured.graph.nodes
                    if self.configured.incompatibility(k) is None]
            workspace_name = self.loader.workspace_settings().name or "__main__"
            analysis = Analyzer(self.configured, workspace_name).analyze(keys)
            graph, _ = analysis.actions.with_runfiles_trees(   # as `bp build` adds them
                {str(key.label): result for key, result in analysis.targets.items()},
                workspace_name)
            graph = graph.extended(self._test_actions(analysis, workspace_name))
            self._analysis = replace(analysis, actions=graph)
            for index, action in enumerate(self._analysis.actions.actions):
                self._by_owner.setdefault(action.owner, []).append(index)
        return self._analysis

    def _test_actions(self, analysis: AnalysisResult, workspace_name: str) -> list[Action]:
        """The TestRunner actions of the test targets, as `bp test` (without its test
        flags) adds them: as Bazel's aquery shows them."""
        actions = []
        for key, result in analysis.targets.items():
            node = self.configured.nodes[key]
            spec = test_spec(key, node.target.attrs, result,
                             configuration=node.configuration) if node.target.is_test else None
            if spec is not None:
                actions += [action for _, action in test_actions(spec, workspace_name, {})]
        return actions

    def actions_of(self, nodes: Iterable) -> list[ActionNode]:
        """Every action that `nodes` stand for, in order."""
        self.analysis()
        out: dict[ActionNode, None] = {}
        for node in nodes:
            if isinstance(node, ActionNode):
                out[node] = None
            else:
                out.update(dict.fromkeys(ActionNode(i) for i in self._by_owner.get(str(node),
                                                                                   ())))
        return list(out)

    def action(self, node: ActionNode) -> Action:
        return self.analysis().actions.actions[node.index]

    def action_filter(self, field: str, regex: re.Pattern[str], x: Result) -> Result:
        result: Result = {}
        for node in self.actions_of(x):
            action = self.action(node)
            values = {"inputs": action.all_inputs, "outputs": action.outputs,
                      "mnemonic": (action.mnemonic,)}[field]
            if any(regex.search(v) for v in values):
                result[node] = None
        return result

    # nodes may be actions: name them for sorting and filters
    def label(self, node) -> str:
        if isinstance(node, ActionNode):
            return self.action(node).owner_label
        return super().label(node)

    def sort_key(self, node) -> tuple:
        if isinstance(node, ActionNode):
            return ((), "", node.index)
        return super().sort_key(node)


# ---- output ---------------------------------------------------------------------------

def write_actions(env: ActionQueryEnvironment, result: Result, output: str, out: TextIO,
                  include_commandline: bool = True, include_artifacts: bool = True) -> int:
    """Print the actions that `result` stands for; returns how many."""
    nodes = env.actions_of(sorted(result, key=env.sort_key))
    actions = [env.action(n) for n in nodes]
    if output == "summary":
        out.write(summary(actions))
    elif output == "jsonproto":
        json.dump([record(a, include_commandline, include_artifacts) for a in actions],
                  out, indent=2)
        out.write("\n")
    elif output == "commands":
        out.writelines(command_line(a) + "\n" for a in actions if a.argv)
    elif output in ("inputs", "outputs"):
        paths = dict.fromkeys(p for a in actions
                              for p in (a.all_inputs if output == "inputs" else a.outputs))
        out.writelines(f"{p}\n" for p in paths)
    elif output == "mnemonic":
        out.writelines(f"{a.mnemonic} {a.owner}\n" for a in actions)
    elif output == "key":
        out.writelines(f"{a.definition} {a.mnemonic} {a.owner}\n" for a in actions)
    else:
        out.write("\n".join(text(a, include_commandline, include_artifacts)
                            for a in actions))
    return len(actions)


def command_line(action: Action) -> str:
    return " ".join(shlex.quote(arg) for arg in action.argv)


def text(action: Action, include_commandline: bool, include_artifacts: bool) -> str:
    lines = [f"action '{action.progress_message or action.mnemonic}'",
             f"  Mnemonic: {action.mnemonic}",
             f"  Target: {action.owner_label}",
             f"  Configuration: {action.configuration}",
             f"  ActionKey: {action.definition}"]
    if include_artifacts:
        lines.append(f"  Inputs: [{', '.join(action.all_inputs)}]")
        lines.append(f"  Outputs: [{', '.join(action.outputs)}]")
    if action.env:
        lines.append("  Environment: [" + ", ".join(f"{k}={v}" for k, v in action.env) + "]")
    if include_commandline and action.argv:
        args = " \\\n    ".join(shlex.quote(a) for a in action.argv)
        lines.append(f"  Command Line: ({args})")
    if action.execution_requirements:   # as Bazel shows them, an empty value as ''
        lines.append("  ExecutionInfo: {" + ", ".join(
            f"{k}: {v or repr('')}" for k, v in action.execution_requirements) + "}")
    if action.kind is ActionKind.WRITE:
        lines.append(f"  FileWriteContents: [{json.dumps(action.content)}]")
    return "\n".join(lines) + "\n"


def record(action: Action, include_commandline: bool, include_artifacts: bool) -> dict:
    data = {"mnemonic": action.mnemonic, "target": action.owner_label,
            "configuration": action.configuration, "action_key": action.definition,
            "kind": action.kind.value, "progress_message": action.progress_message,
            "env": dict(action.env),
            "execution_requirements": dict(action.execution_requirements)}
    if include_artifacts:
        data["inputs"] = list(action.all_inputs)
        data["outputs"] = list(action.outputs)
    if include_commandline:
        data["argv"] = list(action.argv)
    if action.kind is ActionKind.WRITE:
        data["content"] = action.content
    return data


def summary(actions: list[Action]) -> str:
    by_mnemonic = Counter(a.mnemonic for a in actions)
    by_configuration = Counter(a.configuration for a in actions)
    lines = [f"{len(actions)} total actions.", "", "Mnemonics:"]
    lines += [f"  {m}: {n}" for m, n in sorted(by_mnemonic.items())]
    lines += ["", "Configurations:"]
    lines += [f"  {c}: {n}" for c, n in sorted(by_configuration.items())]
    return "\n".join(lines) + "\n"


