"""transition() on rules and attributes, aspect() on attributes, and the main
repository's own name in labels: their errors (the happy paths are compat cases)."""

from __future__ import annotations

import pytest

DEFS = '''
Info = provider(fields = ["value"])

def _setting_impl(ctx):
    return Info(value = ctx.build_setting_value)

int_setting = rule(implementation = _setting_impl, build_setting = config.int())

def _bad_impl(settings, attr):
    return {"//p:level": "many"}

bad = transition(implementation = _bad_impl, inputs = [], outputs = ["//p:level"])

def _missing_impl(settings, attr):
    return {}

missing = transition(implementation = _missing_impl, inputs = [], outputs = ["//p:level"])

def _cpu_impl(settings, attr):
    return {"//command_line_option:host_javabase": "//jdk"}

cpu = transition(implementation = _cpu_impl, inputs = [],
                 outputs = ["//command_line_option:host_javabase"])

def _use_impl(ctx):
    return [Info(value = [d[Info].value for d in ctx.attr.deps])]

use_bad = rule(implementation = _use_impl, attrs = {"deps": attr.label_list(cfg = bad)})
use_missing = rule(implementation = _use_impl, attrs = {"deps": attr.label_list(cfg = missing)})
use_cpu = rule(implementation = _use_impl, attrs = {"deps": attr.label_list(cfg = cpu)})

def _twice_impl(target, ctx):
    return [Info(value = 1)]

twice = aspect(implementation = _twice_impl)

use_twice = rule(implementation = _use_impl,
                 attrs = {"deps": attr.label_list(aspects = [twice])})
'''

BUILD = '''
load(":defs.bzl", "int_setting", "use_bad", "use_cpu", "use_missing", "use_twice")

int_setting(name = "level", build_setting_default = 1)

use_bad(name = "bad", deps = [":level"])

use_missing(name = "missing", deps = [":level"])

use_cpu(name = "cpu", deps = [":level"])

use_twice(name = "twice", deps = [":level"])
'''


def _build(bp, ws, target):
    root = ws({"p/defs.bzl": DEFS, "p/BUILD": BUILD})
    return bp("-C", str(root), "build", target)


def test_a_transition_must_give_a_setting_a_value_of_its_type(bp, ws):
    result = _build(bp, ws, "//p:bad")
    assert result.code != 0
    assert "a transition set '//p:level' to 'many': 'many' is not an integer" in result.err


def test_a_transition_must_return_every_declared_output(bp, ws):
    result = _build(bp, ws, "//p:missing")
    assert result.code != 0
    assert "returned no value for //p:level" in result.err
    assert "ERROR: p/defs.bzl:16:21: transition 'missing' (applied to '//p:missing')" in result.err


def test_a_transition_cannot_set_an_option_bp_does_not_model(bp, ws):
    result = _build(bp, ws, "//p:cpu")
    assert result.code != 0
    assert "a transition cannot set '//command_line_option:host_javabase' in bp" in result.err


def test_an_aspect_cannot_return_a_provider_its_target_has(bp, ws):
    result = _build(bp, ws, "//p:twice")
    assert result.code != 0
    assert "both provide Info" in result.err


def test_labels_may_name_the_main_repository_by_its_workspace_name(bp, ws):
    root = ws({"WORKSPACE": 'workspace(name = "my_ws")\n',
               "p/defs.bzl": 'X = "x"\n',
               "p/BUILD": 'load("@my_ws//p:defs.bzl", "X")\n'
                          'filegroup(name = "a", srcs = ["@my_ws//p:b"])\n'
                          'filegroup(name = "b")\n'})
    result = bp("-C", str(root), "query", "deps(@my_ws//p:a)")
    assert result.code == 0, result.err
    assert result.out.split() == ["//p:a", "//p:b"]


DECLARATION_ERRORS = [
    ('a = aspect(implementation = _impl, attrs = {"t": attr.label(default = "//x")})',
     "p/defs.bzl:3:11: aspect attribute 't': an aspect's public attributes are string, "
     "bool or int (not label); only private ones (named _t) may be labels"),
    ('a = aspect(implementation = _impl, attrs = {"_t": attr.label(executable = True)})',
     "p/defs.bzl:3:11: aspect(): private attribute '_t' must have a default value"),
    ('a = aspect(implementation = _impl, attrs = {"_t": attr.label(default = "//x", '
     'executable = True)})',
     "p/defs.bzl:3:11: aspect(): attribute '_t' is executable, so it must set cfg"),
    ('a = aspect(implementation = _impl, requires = ["x"])',
     "p/defs.bzl:3:11: aspect() 'requires' takes aspect() values, got string"),
    ('a = aspect(implementation = _impl, attrs = {"mode": attr.string()})',
     "p/defs.bzl:3:11: aspect attribute 'mode' must declare its 'values'"),
    ('r = rule(implementation = _impl, outputs = "x")',
     "p/defs.bzl:3:9: rule() 'outputs' must be a dict of output names to templates"),
    ('r = rule(implementation = _impl, outputs = {"out": 3})',
     "p/defs.bzl:3:9: rule() 'outputs': the template of 'out' must be a string"),
    ('t = transition(implementation = _impl, inputs = "x", outputs = [])',
     "p/defs.bzl:3:15: transition() 'inputs' must be a list of setting labels"),
]


@pytest.mark.parametrize("line, message", DECLARATION_ERRORS)
def test_declarations_are_checked_where_they_are_made(bp, ws, line, message):
    root = ws({"p/defs.bzl": "def _impl(ctx):\n    pass\n" + line + "\nX = 1\n",
               "p/BUILD": 'load(":defs.bzl", "X")\n'})
    result = bp("-C", str(root), "query", "//p:all")
    assert result.code != 0
    assert message in result.err


def test_an_implicit_output_cannot_be_set(bp, ws):
    root = ws({"p/defs.bzl": 'def _impl(ctx):\n    pass\n'
                             'r = rule(implementation = _impl, outputs = {"out": "%{name}.o"})\n',
               "p/BUILD": 'load(":defs.bzl", "r")\nr(name = "x", out = "y")\n'})
    result = bp("-C", str(root), "query", "//p:all")
    assert result.code != 0
    assert "p/BUILD:2:2: 'out' is an implicit output of this rule; it cannot be set" \
        in result.err


@pytest.mark.parametrize("flag, message", [
    ("--aspects=//p:defs.bzl", "--aspects=//p:defs.bzl: expected a .bzl file and the "
                               "aspect it exports, as //tools:lint.bzl%lint_aspect"),
    ("--aspects=//p:defs.bzl%nope", "--aspects=//p:defs.bzl%nope: the file exports no "
                                    "aspect named 'nope'"),
])
def test_a_bad_aspects_flag_is_a_clear_error(bp, ws, flag, message):
    result = bp("-C", str(ws({"p/defs.bzl": DEFS, "p/BUILD": BUILD})), "build", flag,
                "//p:level")
    assert result.code != 0
    assert message in result.err


REQUIRES = {
    "p/BUILD": """
        load(":defs.bzl", "lib", "use")
        lib(name = "base")
        lib(name = "top", deps = [":base"])
        use(name = "use", deps = [":top"])
    """,
    "p/defs.bzl": """
        NameInfo = provider(fields = ["names"])
        ShoutInfo = provider(fields = ["text"])

        def _names(target, ctx):
            names = [target.label.name]
            for dep in getattr(ctx.rule.attr, "deps", []):
                names += dep[NameInfo].names
            return [NameInfo(names = names)]

        names = aspect(implementation = _names, attr_aspects = ["deps"])

        def _shout(target, ctx):   # reads what the required aspect gave the same target
            return [ShoutInfo(text = ",".join(target[NameInfo].names).upper())]

        shout = aspect(implementation = _shout, attr_aspects = ["deps"], requires = [names])

        def _lib(ctx):
            return []

        lib = rule(implementation = _lib, attrs = {"deps": attr.label_list()})

        def _use(ctx):
            out = ctx.actions.declare_file("use.txt")
            dep = ctx.attr.deps[0]
            ctx.actions.write(out, dep[ShoutInfo].text + " " + str(dep[NameInfo].names))
            return [DefaultInfo(files = depset([out]))]

        use = rule(implementation = _use, attrs = {"deps": attr.label_list(aspects = [shout])})
    """,
}


def test_a_required_aspect_runs_first_and_its_providers_are_seen(bp, ws):
    root = ws(REQUIRES)
    result = bp("-C", str(root), "build", "//p:use")
    assert result.code == 0, result.err
    assert (root / "bp-bin/p/use.txt").read_text() == 'TOP,BASE ["top", "base"]'


def test_an_aspects_tool_is_configured_for_the_exec_platform(bp, ws):
    root = ws({
        "p/BUILD": """
            load(":defs.bzl", "use")
            sh_binary(name = "tool", srcs = ["tool.sh"])
            genrule(name = "dep", outs = ["dep.txt"], cmd = "echo dep > $@")
            use(name = "use", deps = [":dep"])
        """,
        "p/tool.sh": "#!/bin/sh\necho tool\n",
        "p/defs.bzl": """
            ToolInfo = provider(fields = ["path"])

            def _tool(target, ctx):
                return [ToolInfo(path = ctx.executable._tool.path)]

            tool_aspect = aspect(implementation = _tool, attrs = {
                "_tool": attr.label(default = ":tool", executable = True, cfg = "exec"),
            })

            def _use(ctx):
                out = ctx.actions.declare_file("use.txt")
                ctx.actions.write(out, ctx.attr.deps[0][ToolInfo].path)
                return [DefaultInfo(files = depset([out]))]

            use = rule(implementation = _use,
                       attrs = {"deps": attr.label_list(aspects = [tool_aspect])})
        """,
    })
    (root / "p/tool.sh").chmod(0o755)
    result = bp("-C", str(root), "build", "//p:use")
    assert result.code == 0, result.err
    assert (root / "bp-bin/p/use.txt").read_text() == \
        "bp-out/linux_x86_64-opt-exec/bin/p/tool"
    query = bp("-C", str(root), "cquery", "deps(//p:use)")
    assert "//p:tool (" in query.out   # the aspect's tool is in the configured graph
