"""A long-lived bp (watch mode) builds again after edits loading and analyzing only what
the edits can change, and its outputs equal a build from scratch."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from buildpy.analysis import analyzer as analyzer_module
from buildpy.config.configuration import BuildOptions
from buildpy.core.errors import BpError
from buildpy.execution.local import ExecutionOptions
from buildpy.execution.progress import PlainProgress
from buildpy.session import run_build
from buildpy.warm import Warm

BZL = '''
NameInfo = provider(fields = ["text"])

def _named_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".name")
    text = ctx.attr.text + "".join([d[NameInfo].text for d in ctx.attr.deps])
    ctx.actions.write(out, text)
    return [DefaultInfo(files = depset([out])), NameInfo(text = text)]

named = rule(implementation = _named_impl,
             attrs = {"text": attr.string(), "deps": attr.label_list()})
'''

BUILD = '''
load("//:defs.bzl", "named")

genrule(name = "a", srcs = ["a.txt"], outs = ["a.out"], cmd = "cat $< > $@")
genrule(name = "b", srcs = [":a"], outs = ["b.out"], cmd = "cat $< > $@; echo b >> $@")
genrule(name = "c", srcs = [":b"], outs = ["c.out"], cmd = "cat $< > $@; echo c >> $@")
filegroup(name = "docs", srcs = glob(["docs/*.md"]))
genrule(name = "d", srcs = [":docs"], outs = ["d.out"], cmd = "cat $(SRCS) > $@")
named(name = "n1", text = "one")
named(name = "n2", text = "two", deps = [":n1"])
'''


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "docs").mkdir(parents=True)
    (root / "WORKSPACE").write_text("")
    (root / "defs.bzl").write_text(BZL)
    (root / "BUILD").write_text(BUILD)
    (root / "a.txt").write_text("a\n")
    (root / "docs" / "one.md").write_text("one\n")
    return root


class Counted:
    """How many targets each analysis ran again (analysis.bzl's `analyze_again`)."""

    def __init__(self, monkeypatch):
        self.again: list[str] = []
        original = analyzer_module._Recorder.again

        def again(recorder, tid):
            self.again.append(str(recorder.key(tid).label))
            return original(recorder, tid)

        monkeypatch.setattr(analyzer_module._Recorder, "again", again)

    def take(self) -> list[str]:
        taken, self.again = sorted(self.again), []
        return taken


def build(root: Path, cache: Path, warm: Warm | None) -> int:
    err = io.StringIO()
    outcome = run_build(str(root), ["//..."], BuildOptions(),
                        ExecutionOptions(jobs=2, spawn_strategy="local", disk_cache=cache),
                        progress=PlainProgress(err, False, False), err=err, warm=warm)
    print(err.getvalue())   # (shown when a test fails)
    return outcome.code


def outputs(root: Path) -> dict[str, bytes]:
    """The files built (a runfiles MANIFEST names the workspace's absolute paths)."""
    out = next((root / "bp-out").glob("*-fastbuild")) / "bin"
    return {p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*")) if p.is_file() and p.name != "MANIFEST"}


def from_scratch(root: Path, tmp_path: Path) -> dict[str, bytes]:
    copy = tmp_path / "scratch"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("bp-out"))
    assert build(copy, tmp_path / "scratch-cache", None) == 0
    return outputs(copy)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def test_edits_reanalyze_only_what_changed(workspace: Path, tmp_path: Path, monkeypatch):
    counted = Counted(monkeypatch)
    warm = Warm()
    cache = tmp_path / "cache"
    assert build(workspace, cache, warm) == 0
    session, analyzer = warm.session, warm.analyzer
    assert analyzer is not None and counted.take() == []

    # a source edit: the plan is kept, nothing loads or analyzes again
    (workspace / "a.txt").write_text("a, edited\n")
    assert build(workspace, cache, warm) == 0
    assert warm.session is session and counted.take() == []
    assert outputs(workspace) == from_scratch(workspace, tmp_path)

    # one genrule's command: that target alone (its providers are the same)
    edit(workspace / "BUILD", 'echo b >> $@', 'echo B >> $@')
    assert build(workspace, cache, warm) == 0
    assert warm.session is session and warm.analyzer is analyzer
    assert counted.take() == ["//:b"]
    assert outputs(workspace) == from_scratch(workspace, tmp_path)

    # a provider's value changes: its dependents run again
    edit(workspace / "BUILD", 'text = "one"', 'text = "uno"')
    assert build(workspace, cache, warm) == 0
    assert counted.take() == ["//:n1", "//:n2"]
    assert outputs(workspace) == from_scratch(workspace, tmp_path)

    # an output renamed: the target and what reads its files
    edit(workspace / "BUILD", 'outs = ["b.out"]', 'outs = ["b2.out"]')
    assert build(workspace, cache, warm) == 0
    assert counted.take() == ["//:b", "//:c"]
    assert outputs(workspace) == from_scratch(workspace, tmp_path) | {
        "b.out": outputs(workspace)["b.out"]}   # (a stale output stays, as in Bazel)

    # a file added where a glob looks: the package loads again
    (workspace / "docs" / "two.md").write_text("two\n")
    assert build(workspace, cache, warm) == 0
    assert counted.take() == ["//:d", "//:docs"]
    assert outputs(workspace)["d.out"] == b"one\ntwo\n"

    # a new target
    append(workspace / "BUILD",
           'genrule(name = "e", srcs = [":c"], outs = ["e.out"], cmd = "cp $< $@")\n')
    assert build(workspace, cache, warm) == 0
    assert counted.take() == ["//:e"]
    assert outputs(workspace)["e.out"] == outputs(workspace)["c.out"]


@pytest.mark.parametrize("part", [1000, 1], ids=["one part", "a part per target"])
def test_analyses_again_after_the_first_is_frozen(workspace: Path, tmp_path: Path,
                                                  monkeypatch, part):
    """Between builds a long-lived bp freezes the first analysis's Starlark state and
    goes on in a module of its own (Warm.prepare): the providers kept from the first
    analysis are read by targets analyzed again, a rule kind new to the state joins
    it, and a target that fails and is mended analyzes again, as before. Also when the
    first analysis ran each target in a part (a module) of its own."""
    monkeypatch.setattr(analyzer_module, "_PART", part)
    counted = Counted(monkeypatch)
    warm = Warm()
    cache = tmp_path / "cache"
    assert build(workspace, cache, warm) == 0
    analyzer = warm.analyzer
    warm.prepare()
    warm.prepare()   # (once is enough)
    assert warm.analyzer is analyzer

    # n2 runs again, reading n1's providers as the first analysis left them
    edit(workspace / "BUILD", 'text = "two"', 'text = "deux"')
    assert build(workspace, cache, warm) == 0
    assert warm.analyzer is analyzer and counted.take() == ["//:n2"]
    assert outputs(workspace)["n2.name"] == b"deuxone"

    # a rule kind the first analysis never ran, in a .bzl file of its own
    (workspace / "more.bzl").write_text(
        'load("//:defs.bzl", "NameInfo")\n'
        "def _shout_impl(ctx):\n"
        '    out = ctx.actions.declare_file(ctx.label.name + ".shout")\n'
        "    ctx.actions.write(out, ctx.attr.dep[NameInfo].text.upper())\n"
        "    return [DefaultInfo(files = depset([out]))]\n"
        'shout = rule(implementation = _shout_impl, attrs = {"dep": attr.label()})\n')
    edit(workspace / "BUILD", 'load("//:defs.bzl", "named")',
         'load("//:defs.bzl", "named")\nload("//:more.bzl", "shout")\n'
         'shout(name = "s", dep = ":n2")')
    assert build(workspace, cache, warm) == 0
    assert warm.analyzer is analyzer and counted.take() == ["//:s"]
    assert outputs(workspace)["s.shout"] == b"DEUXONE"
    warm.prepare()
    edit(workspace / "BUILD", 'text = "one"', 'text = "un"')
    assert build(workspace, cache, warm) == 0
    assert outputs(workspace)["s.shout"] == b"DEUXUN"

    # an analysis error after the freeze; mended, the analysis goes on
    edit(workspace / "BUILD", 'dep = ":n2"', 'dep = ":a"')
    with pytest.raises(BpError) as error:
        build(workspace, cache, warm)
    assert "NameInfo" in error.value.render()
    edit(workspace / "BUILD", 'dep = ":a"', 'dep = ":n2"')
    assert build(workspace, cache, warm) == 0
    assert outputs(workspace) == from_scratch(workspace, tmp_path)


def test_an_analysis_that_cannot_be_frozen_is_forgotten(workspace: Path, tmp_path: Path,
                                                       monkeypatch):
    """Warm.prepare: an Analyzer whose freezing fails is let go, and the next build
    analyzes afresh, with the right outputs."""
    from buildpy.core.errors import UserError

    def fails(analyzer) -> None:
        raise UserError("freezing failed")

    warm = Warm()
    cache = tmp_path / "cache"
    assert build(workspace, cache, warm) == 0
    monkeypatch.setattr(analyzer_module.Analyzer, "prepare_again", fails)
    warm.prepare()
    assert warm.analyzer is None
    monkeypatch.undo()
    edit(workspace / "BUILD", 'text = "two"', 'text = "deux"')
    assert build(workspace, cache, warm) == 0
    assert warm.analyzer is not None
    assert outputs(workspace) == from_scratch(workspace, tmp_path)


GROW = (
    'GrowInfo = provider(fields = ["items"])\n'
    "def _grow_impl(ctx):\n"
    "    items = [ctx.label.name]\n"
    "    for dep in ctx.attr.deps:\n"
    "        items = dep[GrowInfo].items\n"
    "        items.append(ctx.attr.text)\n"
    "    return [GrowInfo(items = items)]\n"
    'grow = rule(implementation = _grow_impl,\n'
    '            attrs = {"deps": attr.label_list(), "text": attr.string()})\n')


def with_grow(workspace: Path) -> None:
    """A rule that appends to a list it got from a dependency's providers."""
    (workspace / "grow.bzl").write_text(GROW)
    append(workspace / "BUILD", 'load("//:grow.bzl", "grow")\n'
           'grow(name = "g1")\ngrow(name = "g2", deps = [":g1"], text = "x")\n')


def test_a_frozen_provider_changed_by_a_dependent_is_an_error(workspace: Path,
                                                              tmp_path: Path):
    """Once the first analysis is frozen, a rule that appends to a list it got from a
    dependency's providers fails as in Bazel, with a hint to copy it."""
    with_grow(workspace)
    warm = Warm()
    cache = tmp_path / "cache"
    assert build(workspace, cache, warm) == 0
    warm.prepare()
    edit(workspace / "BUILD", 'text = "x"', 'text = "y"')
    with pytest.raises(BpError) as error:
        build(workspace, cache, warm)
    assert "Immutable" in error.value.render()
    assert "copy it first" in (error.value.hint or "")


def test_a_provider_of_an_earlier_part_changed_by_a_dependent_is_an_error(
        workspace: Path, tmp_path: Path, monkeypatch):
    """Each part of the first analysis is frozen before the next runs: a dependency
    analyzed in an earlier part gives its providers frozen, as Bazel does."""
    monkeypatch.setattr(analyzer_module, "_PART", 1)
    with_grow(workspace)
    with pytest.raises(BpError) as error:
        build(workspace, tmp_path / "cache", None)
    assert "Immutable" in error.value.render()
    assert "copy it first" in (error.value.hint or "")


def test_errors_and_bzl_edits(workspace: Path, tmp_path: Path, monkeypatch):
    counted = Counted(monkeypatch)
    warm = Warm()
    cache = tmp_path / "cache"
    assert build(workspace, cache, warm) == 0
    session = warm.session

    def broken_then_mended(old: str, new: str) -> BpError:
        """The error of a build after an edit of the BUILD file; the edit undone, the
        next build succeeds."""
        edit(workspace / "BUILD", old, new)
        with pytest.raises(BpError) as error:
            build(workspace, cache, warm)
        edit(workspace / "BUILD", new, old)
        assert build(workspace, cache, warm) == 0
        return error.value

    # a syntax error is reported; fixing it goes on from the state kept
    assert "Parse error" in broken_then_mended('name = "c",', 'name = "c",,').render()
    assert warm.session is session and counted.take() == []

    # an analysis error (a missing dependency) likewise
    broken_then_mended('deps = [":n1"]', 'deps = [":n0"]')
    assert outputs(workspace) == from_scratch(workspace, tmp_path)

    # a cycle made by an edit is named; undoing it goes on
    assert "cycle" in broken_then_mended('srcs = ["a.txt"]', 'srcs = ["a.txt", ":c"]').render()
    assert outputs(workspace) == from_scratch(workspace, tmp_path)

    # a .bzl file: a new session
    edit(workspace / "defs.bzl", "write(out, text)", 'write(out, text + "!")')
    assert build(workspace, cache, warm) == 0
    assert warm.session is not session
    assert outputs(workspace)["n2.name"] == b"twoone!"
    assert outputs(workspace) == from_scratch(workspace, tmp_path)


def test_a_tool_analyzed_again_keeps_its_runfiles_tree(workspace: Path, tmp_path: Path,
                                                      monkeypatch):
    """A tool's runfiles tree belongs to the tool: when only the tool runs again (its
    providers the same), the tree is made again with it, for the genrule that uses it."""
    counted = Counted(monkeypatch)
    (workspace / "tool.sh").write_text('#!/bin/sh\ncat "$0.runfiles/__main__/data.txt" > "$1"\n')
    (workspace / "tool.sh").chmod(0o755)
    (workspace / "data.txt").write_text("data\n")
    append(workspace / "BUILD",
           'sh_binary(name = "tool", srcs = ["tool.sh"], data = ["data.txt"])\n'
           'genrule(name = "use", outs = ["use.out"], tools = [":tool"], '
           'cmd = "$(location :tool) $@")\n')
    warm = Warm()
    cache = tmp_path / "cache"
    assert build(workspace, cache, warm) == 0
    assert outputs(workspace)["use.out"] == b"data\n"
    edit(workspace / "BUILD", 'data = ["data.txt"])', 'data = ["data.txt"], tags = ["x"])')
    (workspace / "data.txt").write_text("data, edited\n")
    assert build(workspace, cache, warm) == 0
    assert counted.take() == ["//:tool", "//:tool"]   # (target and exec configurations)
    assert outputs(workspace)["use.out"] == b"data, edited\n"
    assert outputs(workspace) == from_scratch(workspace, tmp_path)


def test_tests_kept_warm(workspace: Path, tmp_path: Path, monkeypatch):
    """bp test in a long-lived bp: a test's changed attribute runs it (and only it) again."""
    from buildpy.session import TestOptions, run_test

    counted = Counted(monkeypatch)
    (workspace / "check.sh").write_text('#!/bin/sh\ntest "$1" = yes\n')
    (workspace / "check.sh").chmod(0o755)
    append(workspace / "BUILD",
           'sh_test(name = "check", srcs = ["check.sh"], args = ["yes"])\n')
    warm = Warm()

    def test() -> int:
        err, out = io.StringIO(), io.StringIO()
        code = run_test(str(workspace), ["//:check"], BuildOptions(),
                        ExecutionOptions(jobs=2, spawn_strategy="local",
                                         disk_cache=tmp_path / "cache"),
                        TestOptions(), progress=PlainProgress(err, False, False), err=err,
                        out=out, warm=warm)
        print(err.getvalue(), out.getvalue())
        return code

    assert test() == 0
    session = warm.session
    edit(workspace / "BUILD", 'args = ["yes"]', 'args = ["no"]')
    assert test() == 3   # Bazel's exit code for failed tests
    assert warm.session is session and counted.take() == ["//:check"]
    edit(workspace / "BUILD", 'args = ["no"]', 'args = ["yes"]')
    assert test() == 0


def test_actions_no_change_touched_are_not_looked_at(workspace: Path, tmp_path: Path,
                                                     monkeypatch):
    """Told every path that changed (watch mode's file events), a long-lived bp looks
    only at the actions those paths touch and what depends on them; the others are up
    to date without a look. Anything else (a build between, a path outside) looks at all."""
    from buildpy.execution.executor import Executor
    from buildpy.watch import WatchState

    looked: list[str] = []
    original = Executor.up_to_date

    def up_to_date(executor, action, inputs):
        looked.append(action.owner_label)
        return original(executor, action, inputs)

    monkeypatch.setattr(Executor, "up_to_date", up_to_date)
    state = WatchState()
    cache = tmp_path / "cache"

    def watched(touched: set[str] | None) -> int:
        looked.clear()
        state.begin(touched)
        err = io.StringIO()
        code = run_build(str(workspace), ["//..."], BuildOptions(),
                         ExecutionOptions(jobs=2, spawn_strategy="local", disk_cache=cache),
                         progress=PlainProgress(err, False, False), err=err,
                         state=state).code
        print(err.getvalue())
        looked.sort()
        return code

    assert watched(None) == 0
    assert watched(set()) == 0   # nothing changed: nothing looked at
    assert looked == []
    (workspace / "a.txt").write_text("a, again\n")
    assert watched({str(workspace / "a.txt"), str(workspace / "README")}) == 0
    assert looked == ["//:a", "//:b", "//:c"]   # what reads a.txt, and what reads that
    assert outputs(workspace)["c.out"] == b"a, again\nb\nc\n"
    assert outputs(workspace) == from_scratch(workspace, tmp_path)

    # an output changed behind bp's back (its event seen): made again
    c_out = next((workspace / "bp-out").glob("*-fastbuild")) / "bin" / "c.out"
    c_out.write_text("tampered\n")
    assert watched({str(c_out)}) == 0
    assert looked == ["//:c"]
    assert c_out.read_text() == "a, again\nb\nc\n"

    # another bp built in between: everything is looked at again
    assert build(workspace, cache, None) == 0
    assert watched(set()) == 0
    assert looked == ["//:a", "//:b", "//:c", "//:d", "//:n1", "//:n2"]   # every action


def test_a_rule_with_aspects_appearing_analyzes_afresh(workspace: Path, tmp_path: Path):
    """Aspects read across targets: a BUILD edit that brings the first target of a rule
    applying one analyzes the whole graph again, in the same session."""
    append(workspace / "defs.bzl", '''
Seen = provider(fields = ["names"])

def _seen_impl(target, ctx):
    return [Seen(names = [str(target.label.name)])]

seen = aspect(implementation = _seen_impl)

def _report_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".seen")
    ctx.actions.write(out, ",".join([n for d in ctx.attr.deps for n in d[Seen].names]))
    return [DefaultInfo(files = depset([out]))]

report = rule(implementation = _report_impl,
              attrs = {"deps": attr.label_list(aspects = [seen])})
''')
    warm = Warm()
    cache = tmp_path / "cache"
    assert build(workspace, cache, warm) == 0
    session = warm.session
    edit(workspace / "BUILD", 'load("//:defs.bzl", "named")',
         'load("//:defs.bzl", "named", "report")')
    append(workspace / "BUILD", 'report(name = "r", deps = [":n1", ":n2"])\n')
    assert build(workspace, cache, warm) == 0
    assert warm.session is session and warm.analyzer is None   # (aspects: never again)
    assert outputs(workspace)["r.seen"] == b"n1,n2"
    assert outputs(workspace) == from_scratch(workspace, tmp_path)


def test_a_failure_an_analysis_test_allows_is_told_and_the_rest_analyzed(
        workspace: Path, tmp_path: Path):
    """An edit that makes an analysis test's target under test fail (which the test's
    configuration allows): the test sees the failure, and the targets analyzed again
    after it in the same batch are analyzed too. The target itself, manual, is
    configured for //... but not needed in the top configuration: it is not analyzed
    there (where its failure would be an error), as the first analysis did not."""
    append(workspace / "defs.bzl", '''
def _maybe_impl(ctx):
    if ctx.attr.fail:
        fail("no way: " + ctx.label.name)
    return [NameInfo(text = "fine")]

maybe = rule(implementation = _maybe_impl, attrs = {"fail": attr.bool()})

def _fails_test_impl(ctx):
    dep = ctx.attr.target_under_test
    return [AnalysisTestResultInfo(success = AnalysisFailureInfo in dep,
                                   message = "failed: %s" % (AnalysisFailureInfo in dep))]

fails_test = rule(
    implementation = _fails_test_impl,
    test = True,
    analysis_test = True,
    attrs = {"target_under_test": attr.label(cfg = analysis_test_transition(
        settings = {"//command_line_option:allow_analysis_failures": "True"},
    ))},
)
''')
    edit(workspace / "BUILD", 'load("//:defs.bzl", "named")',
         'load("//:defs.bzl", "fails_test", "maybe", "named")')
    append(workspace / "BUILD", 'maybe(name = "m", fail = False, tags = ["manual"])\n'
           'fails_test(name = "m_test", target_under_test = ":m")\n'
           'named(name = "a1", text = "a")\n'
           'named(name = "z1", text = "z")\n')
    warm = Warm()
    cache = tmp_path / "cache"
    assert build(workspace, cache, warm) == 0
    edit(workspace / "BUILD", 'fail = False', 'fail = True')
    edit(workspace / "BUILD", 'text = "a")', 'text = "a, again")')
    edit(workspace / "BUILD", 'text = "z")', 'text = "z, again")')
    assert build(workspace, cache, warm) == 0
    built = outputs(workspace)
    assert built["a1.name"] == b"a, again" and built["z1.name"] == b"z, again"
    assert built == from_scratch(workspace, tmp_path)


def test_graphs_made_when_first_asked_for_equal_those_grown_as_targets_are_added(
        workspace: Path):
    """A build makes no networkx graph (it walks the targets' own dependencies); a
    long-lived bp that did not make them as it went (the analysis server, forked from a
    build's analysis process) makes them between builds (Warm.prepare), ahead of the
    edits whose forgetting walks them: the same nodes, edges and orders."""
    from buildpy.config.configured import ConfiguredGraph
    from buildpy.core.label import parse_label
    from buildpy.loading.graph import GraphLoader
    from buildpy.session import open_session

    def configured(grown: bool) -> ConfiguredGraph:
        session = open_session(str(workspace))
        loader = GraphLoader(session.loader, graph=grown)
        labels = [parse_label(f"//:{name}") for name in ("n2", "c", "d", "n1", "a")]
        assert loader.add(labels) == []
        graph = ConfiguredGraph(loader, BuildOptions(), session.loader.workspace_settings(),
                                graph=grown)
        assert graph.add([graph.key(label, graph.top) for label in labels]) == []
        return graph

    def shape(graph) -> tuple:
        return (list(graph.nodes(data=True)), list(graph.edges(data=True)),
                [list(graph.pred[node]) for node in graph])

    grown, asked = configured(True), configured(False)
    assert asked._graph is None and asked.graph_loader._graph is None
    Warm(configured=asked).prepare()
    assert None not in (asked._graph, asked.graph_loader._graph)
    assert shape(asked.graph) == shape(grown.graph)
    assert shape(asked.graph_loader.graph) == shape(grown.graph_loader.graph)


def test_a_target_needed_again_is_analyzed_with_what_changed_meanwhile(
        workspace: Path, tmp_path: Path):
    """A target that the build stopped needing (a manual one, no longer a dependency) is
    not analyzed while it is not needed; needed again, it is analyzed anew, with what
    its dependencies became meanwhile."""
    append(workspace / "BUILD",
           'named(name = "t", text = "t:", deps = [":n1"], tags = ["manual"])\n'
           'named(name = "user", text = "u:", deps = [":t"])\n')
    warm = Warm()
    cache = tmp_path / "cache"
    assert build(workspace, cache, warm) == 0
    assert outputs(workspace)["user.name"] == b"u:t:one"
    edit(workspace / "BUILD", 'deps = [":t"]', 'deps = []')
    assert build(workspace, cache, warm) == 0
    edit(workspace / "BUILD", 'text = "one"', 'text = "uno"')
    assert build(workspace, cache, warm) == 0
    edit(workspace / "BUILD", 'text = "u:", deps = []', 'text = "u:", deps = [":t"]')
    assert build(workspace, cache, warm) == 0
    assert outputs(workspace)["user.name"] == b"u:t:uno"
    assert outputs(workspace) == from_scratch(workspace, tmp_path)
