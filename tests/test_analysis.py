"""Analysis: rule implementations, their errors (exact text), and bp aquery."""

from __future__ import annotations

import json
import re

import pytest

RULES = '''
MyInfo = provider(doc = "A test provider.", fields = ["value"])

def _producer_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    args = ctx.actions.args()
    args.add("--out", out)
    args.add_all(ctx.files.srcs, before_each = "--in")
    args.add_joined(["a", "b"], join_with = ",", format_joined = "--list=%s")
    ctx.actions.run(executable = "/usr/bin/producer", arguments = [args], inputs = ctx.files.srcs,
                    outputs = [out], mnemonic = "Produce", env = {"MODE": ctx.var["COMPILATION_MODE"]},
                    progress_message = "Producing %{output}")
    return [DefaultInfo(files = depset([out])), MyInfo(value = ctx.label.name)]

producer = rule(implementation = _producer_impl, attrs = {"srcs": attr.label_list(allow_files = True)})

def _consumer_impl(ctx):
    values = [dep[MyInfo].value for dep in ctx.attr.deps if MyInfo in dep]
    labels = [dep.label.name for dep in ctx.attr.deps]
    out = ctx.actions.declare_file(ctx.label.name + ".list")
    ctx.actions.write(out, "\\n".join(values + labels))
    return [DefaultInfo(files = depset([out], transitive = [d[DefaultInfo].files for d in ctx.attr.deps]))]

consumer = rule(implementation = _consumer_impl,
                attrs = {"deps": attr.label_list(providers = [MyInfo])})

def _escape_impl(ctx):
    ctx.actions.declare_file("../elsewhere.txt")
    return []

escape = rule(implementation = _escape_impl)

def _same_impl(ctx):
    out = ctx.actions.declare_file("shared.txt")
    ctx.actions.write(out, "x")
    return []

same = rule(implementation = _same_impl)

def _twice_impl(ctx):
    out = ctx.actions.declare_file("twice.txt")
    ctx.actions.write(out, "1")
    ctx.actions.write(out, "2")
    return [DefaultInfo(files = depset([out]))]

twice = rule(implementation = _twice_impl)

def _vars_impl(ctx):
    return [TemplateVariableInfo(variables = {"GREETER": "/usr/bin/greet"})]

vars = rule(implementation = _vars_impl)

def _params_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    args = ctx.actions.args()
    args.add_all(["x", "y"])
    args.use_param_file("@%s", use_always = True)
    ctx.actions.run(executable = "/bin/tool", arguments = ["--flag", args], outputs = [out])
    return [DefaultInfo(files = depset([out]))]

params = rule(implementation = _params_impl)

def _typo_impl(ctx):
    return [DefaultInfo(files = depset(ctx.files.nope))]

typo = rule(implementation = _typo_impl)

def _greedy_impl(ctx):
    ctx.attr.words.append("mine")
    ctx.attr.deps.append(ctx.label.name)
    ctx.files.deps.append(ctx.label.name)
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, " ".join(ctx.attr.words + [str(len(ctx.attr.deps)),
                                                       str(len(ctx.files.deps))]))
    return [DefaultInfo(files = depset([out]))]

def _keyed_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, " ".join(["%s=%s" % (label.name, value)
                                     for label, value in ctx.attr.named.items()]))
    return [DefaultInfo(files = depset([out]))]

keyed = rule(implementation = _keyed_impl,
             attrs = {"named": attr.label_keyed_string_dict(allow_files = True)})

greedy = rule(implementation = _greedy_impl,
              attrs = {"words": attr.string_list(), "deps": attr.label_list()})
'''

WS = {
    "r/BUILD": "",
    "r/defs.bzl": RULES,
    "p/BUILD": '''
        load("//r:defs.bzl", "consumer", "escape", "greedy", "keyed", "params", "producer", "same",
             "twice", "typo", "vars")
        vars(name = "vars")
        params(name = "params")
        genrule(name = "greet", outs = ["g"], cmd = "$(GREETER) > $@", toolchains = [":vars"])
        producer(name = "prod", srcs = ["in.txt", "more.txt"])
        consumer(name = "cons", deps = [":prod"])
        filegroup(name = "plain")
        consumer(name = "bad_dep", deps = [":plain"])
        escape(name = "escape")
        same(name = "one")
        same(name = "two")
        twice(name = "twice")
        typo(name = "typo")
        genrule(name = "unknown_var", outs = ["u"], cmd = "echo $(NOPE) > $@")
        genrule(name = "make_vars", srcs = ["in.txt"], outs = ["m1", "m2"],
                cmd = "cat $(SRCS) $< $(location in.txt) > $(@D)/m1; echo $$HOME $(COMPILATION_MODE) > $(RULEDIR)/m2")
        greedy(name = "greedy1")
        greedy(name = "greedy2")
        keyed(name = "keyed", named = {":prod": "first", "in.txt": "second"})
        ''',
}


@pytest.fixture
def aq(bp, ws):
    root = ws(WS)

    def run(*args: str, code: int = 0):
        result = bp("-C", str(root), "aquery", *args)
        assert result.code == code, result.err
        return result.out if code == 0 else result.err

    return run


def test_actions_args_and_providers(aq):
    records = json.loads(aq("//p:prod + //p:cons", "--output=jsonproto"))
    write, produce = sorted(records, key=lambda r: r["mnemonic"])
    assert produce["mnemonic"] == "Produce"
    out = produce["outputs"][0]
    assert out.startswith("bp-out/") and out.endswith("/bin/p/prod.txt")
    assert produce["argv"] == ["/usr/bin/producer", "--out", out, "--in", "p/in.txt",
                               "--in", "p/more.txt", "--list=a,b"]
    assert produce["env"] == {"MODE": "fastbuild"}
    assert produce["progress_message"] == f"Producing {out}"
    assert write["kind"] == "write" and write["content"] == "prod\nprod"


def test_targets_do_not_share_attribute_values(aq):
    """Defaults are sent once per rule kind; each target still gets its own lists."""
    records = json.loads(aq("//p:greedy1 + //p:greedy2", "--output=jsonproto"))
    assert [r["content"] for r in records] == ["mine 1 1", "mine 1 1"]


def test_label_keyed_dict_attribute(aq):
    records = json.loads(aq("//p:keyed", "--output=jsonproto"))
    assert records[0]["content"] == "prod=first in.txt=second"


def test_make_variables_of_genrule(aq):
    command = aq("//p:make_vars", "--output=commands")
    assert "cat p/in.txt p/in.txt p/in.txt > bp-out/" in command
    assert "echo $HOME fastbuild > bp-out/" in command and "/bin/p/m2" in command


def test_toolchain_make_variables_and_param_files(aq):
    assert aq("//p:greet", "--output=commands").startswith(
        "/bin/bash -c 'set -euo pipefail\n/usr/bin/greet > bp-out/")
    records = json.loads(aq("//p:params", "--output=jsonproto"))
    write, run = sorted(records, key=lambda r: r["kind"], reverse=True)
    assert write["content"] == "x\ny\n" and write["outputs"][0].endswith("/p/params-1.params")
    assert run["argv"] == ["/bin/tool", "--flag", "@" + write["outputs"][0]]
    assert write["outputs"][0] in run["inputs"]


def test_emit_pipeline(aq):
    assert aq("//p:cons | deps | inputs '.*more.*' | emit outputs").strip().endswith(
        "/bin/p/prod.txt")
    lines = aq("//p:cons | deps | emit mnemonic").splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["FileWrite", "Produce"]
    assert lines[0].startswith("FileWrite //p:cons (") and lines[1].startswith(
        "Produce //p:prod (")
    assert aq("deps(//p:cons)", "--output=mnemonic") == "\n".join(lines) + "\n"
    assert aq("//p:cons | deps | mnemonic Produce | emit commands").startswith(
        "/usr/bin/producer --out bp-out/")


def test_missing_provider(aq):
    err = aq("//p:bad_dep", code=2)
    assert re.fullmatch(
        r"ERROR: p/BUILD:9:9: in consumer rule '//p:bad_dep \([0-9a-f]{7}\)': in 'deps': "
        r"'//p:plain' does not have mandatory provider 'MyInfo'\n", err)


def test_output_outside_the_package(aq):
    err = aq("//p:escape", code=2)
    assert "cannot declare 'bp-out/" in err and "/bin/p/../elsewhere.txt': it is outside " \
        "the output directory of package 'p'" in err
    assert "Starlark stack (most recent call last):\n  r/defs.bzl:" in err
    assert ", in _escape_impl" in err


def test_output_conflicts(aq):
    err = aq("//p:twice", code=2)
    assert err.startswith("ERROR: file 'bp-out/")
    assert "/bin/p/twice.txt' is generated by two actions: FileWrite of '//p:twice (" in err


def test_bad_ctx_use_shows_the_starlark_stack(aq):
    err = aq("//p:typo", code=2)
    assert re.fullmatch(
        r"ERROR: p/BUILD:14:5: error analyzing typo rule '//p:typo \([0-9a-f]{7}\)':\n"
        r"error: Object of type `struct` has no attribute `nope`\n"
        r"  --> r/defs.bzl:63:40\n(.|\n)*", err), err


def test_unknown_make_variable(aq):
    err = aq("//p:unknown_var", code=2)
    assert "in genrule rule '//p:unknown_var (" in err
    assert "$(NOPE) not defined; known variables: " in err


def test_a_declared_file_cannot_also_be_a_directory(bp, ws):
    root = ws({**WS, "r/clash.bzl": '''
def _impl(ctx):
    a = ctx.actions.declare_file("clash")
    b = ctx.actions.declare_file("clash/inner.txt")
    ctx.actions.write(a, "")
    ctx.actions.write(b, "")
    return []

clash = rule(implementation = _impl)
''', "q/BUILD": 'load("//r:clash.bzl", "clash")\nclash(name = "c")'})
    err = bp("-C", str(root), "aquery", "//q:c").err
    assert "/bin/q/clash/inner.txt' clashes with 'bp-out/" in err
    assert "a file cannot also be a directory" in err


def test_aquery_docs_examples_run_on_the_example(bp):
    from conftest import REPO_ROOT
    import shlex

    example = str(REPO_ROOT / "examples" / "monorepo")
    docs = (REPO_ROOT / "docs" / "aquery.md").read_text()
    commands = [line for line in docs.splitlines() if line.startswith("bp aquery ")]
    assert len(commands) >= 5
    for line in commands:
        args = shlex.split(line.split("  #")[0])[2:]
        result = bp("-C", example, "aquery", *args)
        assert result.code == 0 and result.out, (line, result.err)
    piped = bp("-C", example, "aquery", '//app:hello | deps | inputs ".*\\.c" | emit commands')
    plain = bp("-C", example, "aquery", 'inputs(".*\\.c", deps(//app:hello))',
               "--output=commands")
    assert piped.out == plain.out
    assert len(piped.out.splitlines()) == 4
    assert all(" -c " in line and line.startswith("gcc ") for line in piped.out.splitlines())


def test_cc_make_variables_in_a_genrule(bp, ws):
    root = ws({"g/BUILD": 'genrule(name = "v", outs = ["v.txt"], cmd = "$(CC) --version > $@",'
                          ' toolchains = ["@toolchains//cc:current"])',
               "platforms/BUILD": 'platform(name = "arm", constraint_values = '
                                  '["@platforms//os:linux", "@platforms//cpu:arm64"])'})
    out = bp("-C", str(root), "aquery", "//g:v", "--output=commands",
             "--platforms=//platforms:arm").out
    assert "gcc --version > bp-out/linux_arm64-fastbuild/bin/g/v.txt" in out


def test_a_toolchain_that_needs_itself_is_a_cycle(bp, ws):
    root = ws({
        "WORKSPACE": 'register_toolchains("//tc:all")\n',
        "tc/defs.bzl": '''
            def _impl(ctx):
                return []
            uses_tool = rule(implementation = _impl, toolchains = ["//tc:type"])
            ''',
        "tc/BUILD": '''
            load(":defs.bzl", "uses_tool")
            toolchain_type(name = "type")
            uses_tool(name = "self_tool")
            toolchain(name = "self", toolchain_type = ":type", toolchain = ":self_tool")
            ''',
    })
    result = bp("-C", str(root), "build", "//tc:self_tool")
    assert result.code == 2
    assert re.fullmatch(
        r"ERROR: tc/BUILD:3:\d+: cycle in the configured graph: //tc:self_tool \(\w+\) -> "
        r"//tc:self_tool \(\w+\)\nhint: a target cannot depend on itself, directly or "
        r"through the toolchains it resolves \(a toolchain's target that needs that same "
        r"toolchain type\)\n", result.err), result.err


def test_aquery_lists_the_runfiles_tree_of_an_executable_as_a_symlink_tree(bp, ws):
    """`bp build` links an executable's runfiles tree with a SymlinkTree action; aquery
    shows it with the target's other actions, as Bazel's does."""
    root = ws({"t/BUILD": 'sh_test(name = "t", srcs = ["t.sh"], data = ["d.txt"])',
               "t/t.sh": "true\n", "t/d.txt": ""})
    result = bp("-C", str(root), "aquery", "//t:t", "--output=jsonproto")
    assert result.code == 0, result.err
    records = json.loads(result.out)
    assert [r["mnemonic"] for r in records] == ["Symlink", "SymlinkTree", "TestRunner"]
    tree = records[1]
    assert tree["target"] == "//t:t" and "content" not in tree
    assert len(tree["outputs"]) == 1 and tree["outputs"][0].endswith("/bin/t/t.runfiles/MANIFEST")
    assert "t/d.txt" in tree["inputs"] and records[0]["outputs"][0] in tree["inputs"]
    text = bp("-C", str(root), "aquery", "mnemonic(SymlinkTree, //t:t)").out
    assert text.startswith("action 'Creating runfiles tree bp-out/")
    assert "FileWriteContents" not in text


def test_rules_take_the_name_of_the_global_they_are_exported_as(bp, ws):
    """A rule bound to a private name and wrapped by a macro (bazel-skylib's pattern), and
    rules made by factory functions (here and in another file), are named after the
    global that holds them when their file ends, as Bazel names them, and analyze."""
    root = ws({
        "factory.bzl": '''
            def _impl(ctx):
                out = ctx.actions.declare_file(ctx.label.name + ".txt")
                ctx.actions.write(out, ctx.attr.text + "\\n")
                return [DefaultInfo(files = depset([out]))]

            def make(test = False):
                r = rule(implementation = _impl, attrs = {"text": attr.string()}, test = test)
                return r   # named by the global that holds it, not `r`
            ''',
        "defs.bzl": '''
            load(":factory.bzl", "make")

            _private_rule = make()

            def public_macro(name, **kwargs):
                _private_rule(name = name, **kwargs)

            made = make()
            also_made = made   # the first global names it
            badly_named = make(test = True)
            ''',
        "BUILD": '''
            load(":defs.bzl", "made", "public_macro")
            public_macro(name = "a", text = "private")
            made(name = "b", text = "made")
            ''',
    })
    done = bp("-C", str(root), "query", "//:all", "--output=label_kind")
    assert done.code == 2, done.err
    assert "invalid rule name 'badly_named'" in done.err, done.err
    assert "defs.bzl:" in done.err and "| badly_named = make(test = True)" in done.err
    (root / "defs.bzl").write_text((root / "defs.bzl").read_text().replace(
        "badly_named = make(test = True)", "made_test = make(test = True)"))
    done = bp("-C", str(root), "query", "//:all", "--output=label_kind")
    assert done.code == 0, done.err
    assert done.out.splitlines() == ["_private_rule rule //:a", "made rule //:b"]
    done = bp("-C", str(root), "build", "//:all")
    assert done.code == 0, done.err
    assert (root / "bp-bin" / "a.txt").read_text() == "private\n"
    assert (root / "bp-bin" / "b.txt").read_text() == "made\n"


def test_an_implementation_may_return_one_provider_or_a_legacy_struct(bp, ws):
    root = ws({
        "defs.bzl": '''
            MyInfo = provider(fields = ["v"])

            def _single(ctx):
                out = ctx.actions.declare_file(ctx.label.name + ".txt")
                ctx.actions.write(out, "single\\n")
                return DefaultInfo(files = depset([out]))

            def _legacy(ctx):
                out = ctx.actions.declare_file(ctx.label.name + ".txt")
                ctx.actions.write(out, "legacy\\n")
                return struct(files = depset([out]), providers = [MyInfo(v = 7)])

            def _use(ctx):
                out = ctx.actions.declare_file(ctx.label.name + ".txt")
                names = [f.basename for d in ctx.attr.deps for f in d[DefaultInfo].files.to_list()]
                ctx.actions.write(out, "%d %s\\n" % (ctx.attr.deps[1][MyInfo].v, " ".join(names)))
                return [DefaultInfo(files = depset([out]))]

            single = rule(implementation = _single)
            legacy = rule(implementation = _legacy)
            use = rule(implementation = _use, attrs = {"deps": attr.label_list()})
            ''',
        "BUILD": '''
            load(":defs.bzl", "legacy", "single", "use")
            single(name = "s")
            legacy(name = "l")
            use(name = "u", deps = [":s", ":l"])
            ''',
    })
    done = bp("-C", str(root), "build", "//:u")
    assert done.code == 0, done.err
    assert (root / "bp-bin" / "u.txt").read_text() == "7 s.txt l.txt\n"


def test_bazels_namespaces_of_builtin_providers(bp, ws):
    """platform_common, config_common, testing and coverage_common, as rule sets use them:
    TemplateVariableInfo with its positional dict, a toolchain type named through
    config_common, a test's environment from testing.TestEnvironment."""
    root = ws({
        "WORKSPACE": 'register_toolchains("//:tc")\n',
        "defs.bzl": '''
            def _vars(ctx):
                return [platform_common.TemplateVariableInfo({"GREETING": "hello"}),
                        platform_common.ToolchainInfo(word = "from-toolchain")]

            make_vars = rule(implementation = _vars)

            def _uses(ctx):
                out = ctx.actions.declare_file(ctx.label.name + ".txt")
                ctx.actions.write(out, ctx.toolchains["//:type"].word + "\\n")
                return [DefaultInfo(files = depset([out])),
                        coverage_common.instrumented_files_info(ctx, source_attributes = [])]

            uses_toolchain = rule(implementation = _uses,
                                  toolchains = [config_common.toolchain_type("//:type")])

            def _test(ctx):
                script = ctx.actions.declare_file(ctx.label.name + ".sh")
                ctx.actions.write(script, '#!/bin/sh\\ntest "$FROM_RULE" = yes\\n',
                                  is_executable = True)
                return [DefaultInfo(executable = script),
                        testing.TestEnvironment({"FROM_RULE": "yes"})]

            env_test = rule(implementation = _test, test = True)
            ''',
        "BUILD": '''
            load(":defs.bzl", "env_test", "make_vars", "uses_toolchain")
            toolchain_type(name = "type")
            make_vars(name = "vars")
            toolchain(name = "tc", toolchain_type = ":type", toolchain = ":vars")
            genrule(name = "g", outs = ["g.txt"], cmd = "echo $(GREETING) > $@",
                    toolchains = [":vars"])
            uses_toolchain(name = "u")
            env_test(name = "t")
            ''',
    })
    done = bp("-C", str(root), "test", "//...")
    assert done.code == 0, done.err
    assert (root / "bp-bin" / "g.txt").read_text() == "hello\n"
    assert (root / "bp-bin" / "u.txt").read_text() == "from-toolchain\n"


def test_misuses_of_the_builtin_namespaces_are_errors_at_their_line(bp, ws):
    root = ws({
        "defs.bzl": '''
            MyInfo = provider(fields = ["v"])

            def _impl(ctx):
                return [MyInfo(1)]

            r = rule(implementation = _impl)
            ''',
        "BUILD": 'load(":defs.bzl", "r")\nr(name = "a")\n',
    })
    done = bp("-C", str(root), "build", "//:a")
    assert done.code != 0
    assert "defs.bzl:4:" in done.err and "a provider takes keyword arguments only" in done.err
    (root / "defs.bzl").write_text(
        'def _impl(ctx):\n    return []\n\n'
        'r = rule(implementation = _impl, toolchains = [\n'
        '    config_common.toolchain_type("//:t", mandatory = False)])\n')
    done = bp("-C", str(root), "build", "//:a")
    assert done.code == 2, done.err
    assert "defs.bzl:5:" in done.err and "optional toolchains (mandatory = False) are not " \
        "supported yet" in done.err, done.err


def test_an_analysis_leaves_no_garbage_for_the_collector(ws):
    # bp runs with the cyclic collector off (its heap is large and long-lived): an
    # analysis no longer used (a forked one that saves its plan, aquery's) must be freed
    # by reference counts alone, its Starlark heaps with it
    import gc

    from buildpy.actions.graph import Action, Artifact
    from buildpy.analysis.analyzer import Analyzer
    from buildpy.analysis.results import TargetResult
    from buildpy.config.configuration import BuildOptions
    from buildpy.config.configured import ConfiguredGraph
    from buildpy.core.label import parse_label
    from buildpy.loading.graph import GraphLoader
    from buildpy.session import open_session

    root = ws({"rules.bzl": RULES, "BUILD": '''
        load(":rules.bzl", "consumer", "producer")
        producer(name = "p", srcs = ["a.txt"])
        consumer(name = "c", deps = [":p"])
        ''', "a.txt": ""})
    session = open_session(str(root))
    graph = GraphLoader(session.loader)
    graph.add([parse_label("//:c")])
    configured = ConfiguredGraph(graph, BuildOptions(), session.loader.workspace_settings())
    keys = [configured.key(parse_label("//:c"), configured.top)]
    enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        result = Analyzer(configured).analyze(keys)
        assert len(result.actions.actions) == 2
        del result
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [o for o in gc.garbage
                if isinstance(o, (Analyzer, Action, Artifact, TargetResult))]
        assert left == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()
