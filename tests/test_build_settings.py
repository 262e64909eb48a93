"""User-defined build settings: rule(build_setting = config.*), --//pkg:flag=value,
config_setting(flag_values), ctx.build_setting_value, and their errors."""

from __future__ import annotations

import pytest

SETTINGS = '''
Info = provider(fields = ["value"])

def _impl(ctx):
    return Info(value = ctx.build_setting_value)

string_flag = rule(implementation = _impl, build_setting = config.string(flag = True))
bool_flag = rule(implementation = _impl, build_setting = config.bool(flag = True))
int_setting = rule(implementation = _impl, build_setting = config.int())

def _show_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.write(out, "%s %s\\n" % (ctx.attr.mode, ctx.attr.dep[Info].value))
    return [DefaultInfo(files = depset([out]))]

show = rule(implementation = _show_impl, attrs = {"mode": attr.string(), "dep": attr.label()})
'''

BUILD = '''
load(":defs.bzl", "bool_flag", "int_setting", "show", "string_flag")

string_flag(name = "color", build_setting_default = "red")

bool_flag(name = "fast", build_setting_default = False)

int_setting(name = "fixed", build_setting_default = 1)

config_setting(name = "fast_blue", flag_values = {":color": "blue", ":fast": "1"})

show(
    name = "show",
    mode = "mode=" + select({":fast_blue": "fast-blue", "//conditions:default": "other"}),
    dep = ":color",
)
'''


@pytest.fixture
def root(ws):
    return ws({"p/defs.bzl": SETTINGS, "p/BUILD": BUILD})


def _output(root):
    return next((root / "bp-out").glob("*/bin/p/show.out")).read_text()


@pytest.mark.parametrize("flags, expected", [
    ([], "mode=other red\n"),
    (["--//p:color=blue"], "mode=other blue\n"),
    (["--//p:color=blue", "--//p:fast"], "mode=fast-blue blue\n"),
    (["--//p:color=blue", "--//p:fast=yes", "--no//p:fast"], "mode=other blue\n"),
    (["--//p:color=green", "--//p:color=blue", "--//p:fast=true"], "mode=fast-blue blue\n"),
])
def test_flags_set_build_settings_and_flag_values_match_them(bp, root, flags, expected):
    result = bp("-C", str(root), "build", *flags, "//p:show")
    assert result.code == 0, result.err
    assert _output(root) == expected


def test_a_flag_in_an_rc_file_sets_a_build_setting(bp, root):
    (root / ".bazelrc").write_text("build --//p:color=blue\nbuild --//p:fast\n")
    result = bp("-C", str(root), "build", "//p:show")
    assert result.code == 0, result.err
    assert _output(root) == "mode=fast-blue blue\n"


def test_a_flag_changes_the_configuration(bp, root):
    plain = bp("-C", str(root), "cquery", "//p:show").out
    flagged = bp("-C", str(root), "cquery", "--//p:color=blue", "//p:show").out
    assert plain.split()[0] == flagged.split()[0] == "//p:show"
    assert plain != flagged


@pytest.mark.parametrize("flag, message", [
    ("--//p:show=1", "Unrecognized option --//p:show=1: '//p:show' is a show rule, not a "
                     "build setting"),
    ("--//p:fixed=2", "--//p:fixed=2: '//p:fixed' is a build setting that is not a flag"),
    ("--//p:fast=maybe", "--//p:fast=maybe: 'maybe' is not a boolean (true or false)"),
    ("--//p:nothere=1", "no such target '//p:nothere'"),
])
def test_a_bad_build_setting_flag_is_a_clear_error(bp, root, flag, message):
    result = bp("-C", str(root), "build", flag, "//p:show")
    assert result.code == 2, result.err
    assert message in result.err


def test_flag_values_must_name_build_settings(bp, ws):
    root = ws({"p/defs.bzl": SETTINGS, "p/BUILD": '''
        load(":defs.bzl", "show")
        genrule(name = "g", outs = ["g.txt"], cmd = "touch $@")
        config_setting(name = "c", flag_values = {":g": "x"})
        show(name = "show", mode = select({":c": "a", "//conditions:default": "b"}))
    '''})
    result = bp("-C", str(root), "build", "//p:show")
    assert result.code != 0
    assert "config_setting '//p:c': flag_values: '//p:g' is a genrule rule, not a build " \
           "setting" in result.err


def test_a_string_and_selects_concatenate_and_query_prints_them(bp, root):
    result = bp("-C", str(root), "query", "--output=build", "//p:show")
    assert result.code == 0, result.err
    assert 'mode = "mode=" + select({' in result.out


LABEL_SETTINGS = {
    "BUILD": """
        load(":tools.bzl", "tool", "toolbox")
        label_flag(name = "tool", build_setting_default = ":hammer")
        label_setting(name = "fixed", build_setting_default = ":hammer")
        tool(name = "hammer")
        tool(name = "screwdriver")
        toolbox(name = "box")
    """,
    "tools.bzl": """
        ToolInfo = provider(fields = ["type"])

        def _tool(ctx):
            return [ToolInfo(type = ctx.label.name)]

        tool = rule(implementation = _tool)

        def _box(ctx):
            out = ctx.actions.declare_file("box.txt")
            ctx.actions.write(out, "using the " + ctx.attr._tool[ToolInfo].type)
            return [DefaultInfo(files = depset([out]))]

        toolbox = rule(implementation = _box, attrs = {"_tool": attr.label(default = ":tool")})
    """,
}


def test_a_label_flag_stands_for_the_target_its_value_names(bp, ws):
    root = ws(LABEL_SETTINGS)
    plain = bp("-C", str(root), "build", "//:box")
    assert plain.code == 0, plain.err
    assert (root / "bp-bin/box.txt").read_text() == "using the hammer"
    flagged = bp("-C", str(root), "build", "//:box", "--//:tool=//:screwdriver")
    assert flagged.code == 0, flagged.err
    assert (root / "bp-bin/box.txt").read_text() == "using the screwdriver"


@pytest.mark.parametrize("flag, message", [
    ("--//:fixed=//:screwdriver", "--//:fixed=//:screwdriver: '//:fixed' is a build setting "
                                  "that is not a flag, so only transitions may set it"),
    ("--//:tool=//:", "--//:tool=//:: invalid label '//:': empty target name"),
    ("--//:tool=//nowhere:x", "BUILD:2:11: label_flag '//:tool' is set to '//nowhere:x': "
                              "no such package '//nowhere'"),
])
def test_label_settings_take_labels_from_flags_only(bp, ws, flag, message):
    root = ws(LABEL_SETTINGS)
    result = bp("-C", str(root), "build", "//:box", flag)
    assert result.code == 2
    assert message in result.err
