"""Loading BUILD files into the target graph: what loads, and the exact error texts."""

from __future__ import annotations

from buildpy.core.label import Label
from buildpy.session import load_patterns, open_session

BAZEL_BUILD = '''
package(default_visibility = ["//visibility:public"])

load("//tools:defs.bzl", "shout")

exports_files(["data.txt"])

cc_library(
    name = "lib",
    srcs = ["lib.c"],
    hdrs = ["lib.h"],
    includes = ["."],
    defines = ["LIB=1"],
    copts = ["-O2"],
    linkopts = ["-lm"],
    linkstatic = 1,
    deps = [],
)

cc_binary(name = "bin", srcs = ["main.c"], deps = [":lib"], stamp = True)

cc_test(name = "lib_test", srcs = ["lib_test.c"], deps = [":lib"], size = "small")

py_library(name = "pylib", srcs = ["pylib.py"], imports = ["."])

py_binary(name = "pybin", srcs = ["pybin.py"], main = "pybin.py", deps = [":pylib"])

py_test(name = "pytest", srcs = ["pytest.py"], deps = [":pylib"], flaky = True,
        shard_count = 2, args = ["-v"], env = {"A": "b"}, data = ["data.txt"])

sh_library(name = "shlib", srcs = ["lib.sh"])

sh_binary(name = "shbin", srcs = ["bin.sh"], deps = [":shlib"])

sh_test(name = "shtest", srcs = ["test.sh"], data = [":shbin"], tags = ["exclusive"],
        timeout = "short", local = True)

genrule(
    name = "gen",
    srcs = glob(["*.txt"]),
    outs = ["gen.out"],
    cmd = "cat $(SRCS) > $@",
    tools = [":shbin"],
)

filegroup(name = "files", srcs = [":gen", "data.txt"])

alias(name = "lib_alias", actual = ":lib")

test_suite(name = "all_tests", tests = [":lib_test", ":shtest"])

config_setting(name = "opt", values = {"compilation_mode": "opt"})

constraint_setting(name = "flavor")

constraint_value(name = "sweet", constraint_setting = ":flavor")

platform(name = "candy", constraint_values = [":sweet"])

toolchain_type(name = "tc_type")

toolchain(name = "tc", toolchain_type = ":tc_type", toolchain = ":files",
          target_compatible_with = [":sweet"])

shout(name = "loud", text = "hi")
'''

DEFS_BZL = '''
def shout(name, text, **kwargs):
    native.genrule(
        name = name,
        outs = [name + ".txt"],
        cmd = "echo %s > $@" % text.upper(),
        **kwargs
    )
'''


def load(root, *patterns, keep_going=False):
    return load_patterns(open_session(str(root)), list(patterns), keep_going=keep_going)


def error_text(root, *patterns) -> str:
    try:
        load(root, *patterns)
    except Exception as error:  # noqa: BLE001 - the tests read the rendered text
        return error.render()
    raise AssertionError("no error")


def test_bazel_build_file_loads_unchanged(ws):
    root = ws({"pkg/BUILD": BAZEL_BUILD, "tools/BUILD": "", "tools/defs.bzl": DEFS_BZL,
               "pkg/data.txt": "x", "pkg/more.txt": "y"})
    loaded = load(root, "//pkg:all")
    assert [str(l) for l in sorted(loaded.labels)] == [
        "//pkg:all_tests", "//pkg:bin", "//pkg:candy", "//pkg:files", "//pkg:flavor",
        "//pkg:gen", "//pkg:lib", "//pkg:lib_alias", "//pkg:lib_test", "//pkg:loud",
        "//pkg:opt", "//pkg:pybin", "//pkg:pylib", "//pkg:pytest", "//pkg:shbin",
        "//pkg:shlib", "//pkg:shtest", "//pkg:sweet", "//pkg:tc", "//pkg:tc_type",
    ]
    graph = load(root, "//pkg:*").graph
    gen = graph.target(Label("", "pkg", "gen"))
    assert gen.kind_text == "genrule rule"
    assert gen.attrs["srcs"] == (Label("", "pkg", "data.txt"), Label("", "pkg", "more.txt"))
    assert graph.target(Label("", "pkg", "gen.out")).kind_text == "generated file"
    assert graph.target(Label("", "pkg", "data.txt")).kind_text == "source file"
    lib = graph.target(Label("", "pkg", "lib"))
    assert lib.attrs["linkstatic"] is True
    assert str(lib.location) == "pkg/BUILD:7:11"
    assert graph.target(Label("", "pkg", "pytest")).attrs["flaky"] is True
    loud = graph.target(Label("", "pkg", "loud"))
    assert (loud.generator.function, loud.generator.name) == ("shout", "loud")
    assert graph.target(Label("", "pkg", "lib")).generator is None
    assert set(graph.graph.successors(Label("", "pkg", "files"))) == {
        Label("", "pkg", "gen"), Label("", "pkg", "data.txt")}
    assert graph.target(Label("", "pkg", "lib_test")).attrs["testonly"] is True


def test_a_rule_call_returns_none_with_plain_and_with_configurable_attributes(ws):
    """A rule's closure gives a BUILD file None, whichever way its attributes crossed to
    Python (one JSON text, or values one by one for a select())."""
    root = ws({"p/BUILD": (
        'a = genrule(name = "a", outs = ["a.txt"], cmd = "")\n'
        'b = genrule(name = "b", outs = ["b.txt"], cmd = select({"//conditions:default": ""}))\n'
        'c = native.genrule(name = "c", outs = ["c.txt"], cmd = "")\n'
        '[fail("a rule call returned %s" % [a, b, c]) for _ in [1]\n'
        ' if [a, b, c] != [None, None, None] or type(a) != "NoneType"]\n')})
    assert [str(l) for l in sorted(load(root, "//p:all").labels)] == ["//p:a", "//p:b", "//p:c"]


def test_star_pattern_includes_files_and_build_file(ws):
    root = ws({"p/BUILD": 'genrule(name = "g", srcs = ["in.txt"], outs = ["o.txt"], cmd = "")'})
    assert [str(l) for l in sorted(load(root, "//p:*").labels)] == [
        "//p:BUILD", "//p:g", "//p:in.txt", "//p:o.txt"]


def test_unknown_attribute_suggests_the_right_one(ws):
    root = ws({"a/BUILD": '''
        genrule(
            name = "x",
            srcss = ["in.txt"],
            outs = ["x.out"],
            cmd = "true",
        )
        '''})
    assert error_text(root, "//a:x") == (
        "a/BUILD:3:5: genrule rule '//a:x': no such attribute 'srcss' in 'genrule' rule; "
        "did you mean 'srcs'?\n"
        '3 |     srcss = ["in.txt"],\n'
        "  |     ^")


def test_wrong_type_and_missing_mandatory_are_all_reported(ws):
    root = ws({"a/BUILD": '''
        genrule(name = "x", outs = ["x.out"], cmd = 3)
        genrule(name = "y", cmd = "true")
        cc_library(name = "z", srcs = "z.c")
        '''})
    assert error_text(root, "//a:all") == (
        "a/BUILD:1:39: genrule rule '//a:x': expected value of type 'string' for attribute "
        "'cmd', but got 3 (int)\n"
        '1 | genrule(name = "x", outs = ["x.out"], cmd = 3)\n'
        "  |                                       ^\n"
        "a/BUILD:2:8: genrule rule '//a:y': missing value for mandatory attribute 'outs'\n"
        '2 | genrule(name = "y", cmd = "true")\n'
        "  |        ^\n"
        "hint: add outs = ... to the call\n"
        "a/BUILD:3:24: cc_library rule '//a:z': expected value of type 'list(Label)' for "
        "attribute 'srcs', but got \"z.c\" (string)\n"
        '3 | cc_library(name = "z", srcs = "z.c")\n'
        "  |                        ^\n"
        'hint: wrap it in a list: ["z.c"]')


def test_duplicate_target_names_both_locations(ws):
    root = ws({"a/BUILD": '''
        genrule(name = "x", outs = ["1"], cmd = "")

        genrule(name = "x", outs = ["2"], cmd = "")
        '''})
    assert error_text(root, "//a:x") == (
        "a/BUILD:3:9: target 'x' is already defined as a genrule rule at a/BUILD:1:8\n"
        '3 | genrule(name = "x", outs = ["2"], cmd = "")\n'
        "  |         ^\n"
        "hint: give one of them another name")


def test_output_conflicting_with_a_rule(ws):
    root = ws({"a/BUILD": '''
        genrule(name = "x", outs = ["y"], cmd = "")
        genrule(name = "y", outs = ["z"], cmd = "")
        '''})
    assert error_text(root, "//a:all") == (
        "a/BUILD:1:8: generated file 'y' in rule 'x' conflicts with existing genrule rule "
        "defined at a/BUILD:2:8\n"
        "hint: rename the output or the other target")


def test_missing_target_suggests_a_close_name(ws):
    root = ws({
        "a/BUILD": 'filegroup(name = "a", srcs = ["//b:lbi"])',
        "b/BUILD": 'filegroup(name = "lib", visibility = ["//visibility:public"])',
    })
    assert error_text(root, "//a") == (
        "a/BUILD:1:31: in 'srcs' of filegroup rule '//a:a': no such target '//b:lbi': "
        "target 'lbi' not declared in package 'b' defined by b/BUILD; did you mean '//b:lib'?\n"
        '1 | filegroup(name = "a", srcs = ["//b:lbi"])\n'
        "  |                               ^")


def test_missing_package(ws):
    root = ws({"a/BUILD": 'filegroup(name = "a", srcs = ["//nope:x"])'})
    assert error_text(root, "//a") == (
        "a/BUILD:1:31: in 'srcs' of filegroup rule '//a:a': no such package '//nope': "
        "BUILD file not found in directory 'nope'\n"
        '1 | filegroup(name = "a", srcs = ["//nope:x"])\n'
        "  |                               ^\n"
        "hint: add a BUILD file to a directory to mark it as a package")


def test_requested_target_missing(ws):
    root = ws({"a/BUILD": 'filegroup(name = "files")'})
    assert error_text(root, "//a:file") == (
        "no such target '//a:file': target 'file' not declared in package 'a' defined by "
        "a/BUILD; did you mean '//a:files'?")


def test_unexported_source_file_of_another_package(ws):
    root = ws({"a/BUILD": 'filegroup(name = "a", srcs = ["//b:x.txt"])',
               "b/BUILD": "", "b/x.txt": ""})
    assert error_text(root, "//a").endswith(
        "hint: a source file of this name exists; add exports_files([\"x.txt\"]) to b/BUILD")


def test_label_crossing_into_a_subpackage(ws):
    root = ws({"a/BUILD": 'filegroup(name = "a", srcs = ["sub/x.txt"])',
               "a/sub/BUILD": 'exports_files(["x.txt"])'})
    assert error_text(root, "//a") == (
        "a/BUILD:1:31: in 'srcs' of filegroup rule '//a:a': label '//a:sub/x.txt' crosses "
        "into package 'a/sub'\n"
        '1 | filegroup(name = "a", srcs = ["sub/x.txt"])\n'
        "  |                               ^\n"
        "hint: write '//a/sub:x.txt' instead")


VISIBILITY = {
    "lib/BUILD": '''
        package_group(name = "friends", packages = ["//app/...", "-//app/secret"])
        filegroup(name = "private")
        filegroup(name = "pkg_only", visibility = ["//app:__pkg__"])
        filegroup(name = "subpackages", visibility = ["//app:__subpackages__"])
        filegroup(name = "group", visibility = [":friends"])
        filegroup(name = "public", visibility = ["//visibility:public"])
        ''',
}


def _dep(ws, package, dep):
    return ws({**VISIBILITY, f"{package}/BUILD": f'filegroup(name = "x", srcs = ["{dep}"])'})


def test_visibility_allows_what_it_names(ws):
    for package, dep in [("app", "//lib:pkg_only"), ("app/deep", "//lib:subpackages"),
                         ("app/deep", "//lib:group"), ("other", "//lib:public")]:
        root = _dep(ws, package, dep)
        assert load(root, f"//{package}:x").labels


def test_visibility_errors_name_both_targets_and_the_fix(ws):
    root = _dep(ws, "other", "//lib:private")
    assert error_text(root, "//other:x") == (
        "other/BUILD:1:31: in 'srcs' of filegroup rule '//other:x': target '//lib:private' "
        "is not visible from target '//other:x'\n"
        '1 | filegroup(name = "x", srcs = ["//lib:private"])\n'
        "  |                               ^\n"
        "hint: add \"//other:__pkg__\" (or a package_group holding it) to the visibility of "
        "'//lib:private', which is now [\"//visibility:private\"]")
    for package, dep in [("app/deep", "//lib:pkg_only"), ("app/secret", "//lib:group"),
                         ("other", "//lib:subpackages")]:
        root = _dep(ws, package, dep)
        assert "is not visible from target" in error_text(root, f"//{package}:x")


def test_package_default_visibility(ws):
    root = ws({"lib/BUILD": '''
        package(default_visibility = ["//app:__pkg__"])
        filegroup(name = "l")
        ''', "app/BUILD": 'filegroup(name = "a", srcs = ["//lib:l"])'})
    assert load(root, "//app:a").labels


def test_dependency_cycle_shows_the_path(ws):
    root = ws({
        "a/BUILD": 'filegroup(name = "x", srcs = ["//b:y"], visibility = ["//visibility:public"])',
        "b/BUILD": 'filegroup(name = "y", srcs = ["//a:x"], visibility = ["//visibility:public"])',
    })
    assert error_text(root, "//a:x") == (
        "a/BUILD:1:10: cycle in dependency graph: //a:x -> //b:y -> //a:x\n"
        "hint: break the cycle by removing one of these dependencies")


def test_load_cycle_shows_the_chain(ws):
    root = ws({"a/BUILD": 'load(":one.bzl", "x")',
               "a/one.bzl": 'load(":two.bzl", "y")\nx = 1',
               "a/two.bzl": 'load(":one.bzl", "x")\ny = 2'})
    assert error_text(root, "//a:all") == (
        "cycle in load() statements: //a:one.bzl -> //a:two.bzl -> //a:one.bzl\n"
        "hint: move the shared definitions into a .bzl file that both can load")


def test_load_of_a_missing_file(ws):
    root = ws({"a/BUILD": 'load("//a:nope.bzl", "x")'})
    assert error_text(root, "//a:all") == (   # at the load statement, in Bazel's words
        "a/BUILD:1:6: cannot load '//a:nope.bzl': no such file\n"
        '1 | load("//a:nope.bzl", "x")\n'
        "  |      ^\n"
        "hint: there is no a/nope.bzl: create it, or load another file")


def test_load_from_a_directory_that_is_no_package(ws):
    root = ws({"a/BUILD": 'load("//tools/sub:defs.bzl", "x")', "tools/BUILD": "",
               "tools/sub/defs.bzl": "x = 1"})
    assert error_text(root, "//a:all") == (
        "a/BUILD:1:6: cannot load '//tools/sub:defs.bzl': 'tools/sub' is not a package (it "
        "has no BUILD file)\n"
        '1 | load("//tools/sub:defs.bzl", "x")\n'
        "  |      ^\n"
        "hint: perhaps you meant '//tools:sub/defs.bzl'")


def test_runaway_evaluation_is_stopped(ws):
    root = ws({"a/BUILD": "x = [i for i in range(1000000000)]\n"})
    session = open_session(str(root), eval_timeout=0.2)
    try:
        load_patterns(session, ["//a:all"])
    except Exception as error:  # noqa: BLE001
        text = error.render()
    assert text.startswith("error loading package '//a': evaluation took longer than 0.2s "
                           "and was stopped\n")
    assert "a/BUILD:1:" in text
    assert text.endswith("hint: look for a runaway loop or comprehension in this file")


def test_starlark_errors_are_shown_unchanged_with_the_package(ws):
    root = ws({"a/BUILD": "genrule(\n"})
    text = error_text(root, "//a:all")
    assert text.startswith("error loading package '//a':\nerror: Parse error")
    root = ws({"b/BUILD": 'load("//b:m.bzl", "m")\nm()', "b/m.bzl": 'def m():\n    fail("no way")'})
    text = error_text(root, "//b:all")
    assert text.startswith("error loading package '//b':\n")
    assert "no way" in text and "b/m.bzl:2" in text


def test_glob_honours_package_boundaries_and_ignores(ws):
    root = ws({
        "p/BUILD": 'filegroup(name = "g", srcs = glob(["**/*.txt"], exclude = ["skip.txt"]))',
        "p/a.txt": "", "p/skip.txt": "", "p/d/b.txt": "", "p/sub/BUILD": "", "p/sub/c.txt": "",
        "p/ignored/e.txt": "", ".bazelignore": "# comment\np/ignored\n",
    })
    target = load(root, "//p:g").graph.target(Label("", "p", "g"))
    assert [l.name for l in target.attrs["srcs"]] == ["a.txt", "d/b.txt"]
    assert [str(l) for l in load(root, "//...").labels] == ["//p:g"]


def test_select_is_kept_with_every_branch(ws):
    root = ws({"p/BUILD": '''
        config_setting(name = "fast", values = {"compilation_mode": "opt"})
        genrule(
            name = "g",
            srcs = ["a.txt"] + select({":fast": ["fast.txt"], "//conditions:default": []}),
            outs = ["o"],
            cmd = select({":fast": "fast", "//conditions:default": "slow"}),
        )
        '''})
    graph = load(root, "//p:g").graph
    g = graph.target(Label("", "p", "g"))
    assert repr(g.attrs["cmd"]) == (
        "select({Label(repo='', package='p', name='fast'): 'fast', "
        "Label(repo='', package='conditions', name='default'): 'slow'})")
    assert {str(l) for l in graph.graph.successors(g.label)} == {
        "//p:a.txt", "//p:fast", "//p:fast.txt"}


def test_select_type_errors_name_the_branch(ws):
    root = ws({"p/BUILD": 'genrule(name = "g", outs = ["o"], cmd = select({"//conditions:default": 1}))'})
    assert "expected value of type 'string' for attribute 'cmd', but got 1 (int) (in the " \
           "select() branch for '//conditions:default')" in error_text(root, "//p:g")


def test_custom_rule_and_provider(ws):
    root = ws({
        "r/BUILD": '''
            load(":defs.bzl", "my_rule")
            my_rule(name = "m", src = "in.txt", out = "m.out", count = 2)
            ''',
        "r/defs.bzl": '''
            MyInfo = provider(fields = ["value"])

            def _impl(ctx):
                return [MyInfo(value = 1)]

            my_rule = rule(
                implementation = _impl,
                attrs = {
                    "src": attr.label(allow_single_file = True, mandatory = True),
                    "out": attr.output(mandatory = True),
                    "count": attr.int(default = 1, values = [1, 2, 3]),
                    "deps": attr.label_list(providers = [MyInfo]),
                    "_tool": attr.label(default = ":tool.sh", executable = True, cfg = "exec"),
                },
            )
            ''',
    })
    graph = load(root, "//r:*").graph
    m = graph.target(Label("", "r", "m"))
    assert m.kind_text == "my_rule rule"
    assert m.attrs["count"] == 2 and m.attrs["_tool"] == Label("", "r", "tool.sh")
    assert graph.target(Label("", "r", "m.out")).generating_rule == m.label
    assert m.explicit == frozenset({"name", "src", "out", "count"})


RULE_DECLARATION_ERRORS = [
    ('x = rule(implementation = _impl, test = True)',
     "r/defs.bzl:3:9: invalid rule name 'x': test rule names must end with '_test' and other "
     "rule names must not"),
    ('x = rule(implementation = _impl, attrs = {"name": attr.string()})',
     "r/defs.bzl:3:9: there is already a built-in attribute 'name' which cannot be "
     "overridden"),
    ('x = rule(implementation = _impl, attrs = {"_t": attr.label()})',
     "r/defs.bzl:3:9: private attribute '_t' must have a default value"),
    ('x = rule(implementation = _impl, attrs = {"s": attr.string(allow_files = True)})',
     "r/defs.bzl:3:9: attr.string() got an unexpected parameter 'allow_files' for "
     "attribute 's'"),
    ('x = rule(implementation = _impl, attrs = {"s": "string"})',
     "r/defs.bzl:3:9: attribute 's' must be declared with attr.<type>(...), got 'string'"),
    ('x = rule(implementation = _impl, exectuable = True)',
     "r/defs.bzl:3:9: rule() got an unexpected keyword argument 'exectuable'"),
    ('x = rule(implementation = "impl")',
     "r/defs.bzl:3:9: rule() needs 'implementation', a function taking ctx, not string"),
]


def test_rule_declarations_are_validated(ws):
    for line, expected in RULE_DECLARATION_ERRORS:
        root = ws({"r/BUILD": 'load(":defs.bzl", "x")',
                   "r/defs.bzl": f"def _impl(ctx):\n    return []\n{line}\n"})
        assert error_text(root, "//r:all").startswith(expected), line


def test_rules_cannot_be_instantiated_at_bzl_top_level(ws):
    root = ws({"r/BUILD": 'load(":defs.bzl", "x")',
               "r/defs.bzl": 'x = 1\nnative.genrule(name = "g", outs = ["o"], cmd = "")\n'})
    assert error_text(root, "//r:all").startswith(
        "r/defs.bzl:2:15: genrule() can only be used while a BUILD file is evaluated, not at "
        "the top level of a .bzl file\n")


def test_macro_natives(ws):
    root = ws({
        "m/BUILD": '''
            load(":defs.bzl", "twice")
            genrule(name = "first", outs = ["f"], cmd = "")
            twice(name = "t")
            ''',
        "m/defs.bzl": '''
            def twice(name):
                if native.existing_rule("first") == None:
                    fail("existing_rule does not see earlier targets")
                for i in range(2):
                    native.genrule(
                        name = "%s_%d" % (name, i),
                        outs = ["%s_%d.out" % (name, i)],
                        cmd = native.package_name() + native.repository_name(),
                    )
                if len(native.existing_rules()) != 3:
                    fail("existing_rules should see 3 rules")
            ''',
    })
    graph = load(root, "//m:all").graph
    t0 = graph.target(Label("", "m", "t_0"))
    assert t0.attrs["cmd"] == "m@"
    assert (t0.generator.function, t0.generator.name, str(t0.generator.location)) == (
        "twice", "t", "m/BUILD:3:6")


def test_package_rules(ws):
    root = ws({"a/BUILD": 'genrule(name = "g", outs = ["o"], cmd = "")\npackage()'})
    assert error_text(root, "//a:all") == (
        "a/BUILD:2:8: package() must be called before any target is declared\n"
        "2 | package()\n  |        ^\nhint: move package(...) to the top of the BUILD file")
    root = ws({"b/BUILD": "package(default_visibilty = [])"})
    assert error_text(root, "//b:all").startswith(
        "b/BUILD:1:9: package() got an unexpected keyword argument 'default_visibilty'; "
        "did you mean 'default_visibility'?")


def test_build_bazel_wins_over_build(ws):
    root = ws({"a/BUILD": 'filegroup(name = "old")', "a/BUILD.bazel": 'filegroup(name = "new")'})
    assert [str(l) for l in load(root, "//a:all").labels] == ["//a:new"]


def test_keep_going_returns_the_good_packages(ws):
    root = ws({"good/BUILD": 'filegroup(name = "g")', "bad/BUILD": "genrule(\n"})
    loaded = load(root, "//...", keep_going=True)
    assert [str(l) for l in loaded.labels] == ["//good:g"]
    assert len(loaded.errors) == 1 and "//bad" in loaded.errors[0].render()


def test_workspace_file_settings(ws):
    root = ws({"WORKSPACE": 'workspace(name = "demo")\nregister_toolchains("//tc:all")\n'})
    settings = open_session(str(root)).loader.workspace_settings()
    assert settings.name == "demo" and settings.toolchains == ("//tc:all",)


def test_workspace_file_errors(ws):
    root = ws({"WORKSPACE": 'workspace(name = "bad name")\n'})
    try:
        open_session(str(root))
    except Exception as error:  # noqa: BLE001
        assert error.render().startswith("WORKSPACE:1:10: invalid workspace name 'bad name'")
    else:
        raise AssertionError("no error")


def test_loads_with_aliases_and_from_bazel_rule_repositories(ws):
    root = ws({
        "a/BUILD": '''
            load("@rules_cc//cc:defs.bzl", "cc_library")
            load("@rules_python//python:defs.bzl", "py_library")
            load("@rules_shell//shell:sh_test.bzl", "sh_test")
            load("@prelude//genrule:rules.bzl", my_genrule = "genrule")
            load(":defs.bzl", greeting = "GREETING")
            cc_library(name = "c", srcs = ["c.c"])
            py_library(name = "p", srcs = ["p.py"])
            sh_test(name = "t", srcs = ["t.sh"])
            my_genrule(name = "g", outs = ["g.txt"], cmd = "echo " + greeting)
            ''',
        "a/defs.bzl": 'GREETING = "hi"',
    })
    graph = load(root, "//a:all").graph
    assert graph.target(Label("", "a", "g")).attrs["cmd"] == "echo hi"
    assert graph.target(Label("", "a", "t")).kind_text == "sh_test rule"


def test_the_rule_repositories_one_file_per_rule_paths(ws):
    """Today's rules_cc and rules_python have a file per rule; a file bp's stand-in lacks
    is an error at the load() that lists what it has."""
    root = ws({"a/BUILD": '''
            load("@rules_cc//cc:cc_binary.bzl", "cc_binary")
            load("@rules_cc//cc:cc_library.bzl", "cc_library")
            load("@rules_cc//cc:cc_test.bzl", "cc_test")
            load("@rules_python//python:py_binary.bzl", "py_binary")
            load("@rules_python//python:py_library.bzl", "py_library")
            load("@rules_python//python:py_test.bzl", "py_test")
            cc_library(name = "c", srcs = ["c.c"])
            py_test(name = "p", srcs = ["p.py"])
            '''})
    graph = load(root, "//a:all").graph
    assert graph.target(Label("", "a", "c")).kind_text == "cc_library rule"
    assert graph.target(Label("", "a", "p")).kind_text == "py_test rule"
    root = ws({"b/BUILD": 'load("@rules_cc//cc:cc_shared_library.bzl", "cc_shared_library")'})
    text = error_text(root, "//b:all")
    assert text.startswith("b/BUILD:1:6: cannot load '@rules_cc//cc:cc_shared_library.bzl': "
                           "no such file"), text
    assert "bp stands in for @rules_cc with its own rules, and has " \
           "@rules_cc//cc:cc_binary.bzl, @rules_cc//cc:cc_import.bzl, " \
           "@rules_cc//cc:cc_library.bzl" in text


def test_unknown_repository_and_non_bzl_loads(ws):
    root = ws({"a/BUILD": 'load("@rules_go//go:def.bzl", "go_library")'})
    assert error_text(root, "//a:all").startswith(
        "a/BUILD:1:6: cannot load '@rules_go//go:def.bzl': repository '@rules_go' is not "
        "defined")
    root = ws({"b/BUILD": 'load(":defs.py", "x")'})
    assert error_text(root, "//b:all") == (
        "b/BUILD:1:6: cannot load '//b:defs.py': only .bzl files can be loaded\n"
        "1 | load(\":defs.py\", \"x\")\n"
        "  |      ^\n"
        "hint: name a file ending in '.bzl'")


def test_print_goes_to_stderr_with_its_location(ws, capsys):
    root = ws({"a/BUILD": 'print("hello", 1)\nfilegroup(name = "f")'})
    load(root, "//a:all")
    assert capsys.readouterr().err == "DEBUG: a/BUILD:1:6: hello 1\n"


def test_existing_rule_returns_selects_and_labels(ws):
    root = ws({
        "a/BUILD": '''
            load(":defs.bzl", "copy_of")
            filegroup(name = "f", srcs = ["x.txt"] + select({"//conditions:default": []}))
            copy_of(name = "g", original = "f")
            ''',
        "a/defs.bzl": '''
            def copy_of(name, original):
                attrs = native.existing_rule(original)
                native.filegroup(name = name, srcs = attrs["srcs"])
            ''',
    })
    graph = load(root, "//a:all").graph
    assert repr(graph.target(Label("", "a", "g")).attrs["srcs"]) == \
        repr(graph.target(Label("", "a", "f")).attrs["srcs"])


def test_source_files_used_by_their_package_stay_usable_elsewhere(ws):
    """Bazel 4.2 exports a source file implicitly once a rule of its package uses it."""
    root = ws({"a/BUILD": 'filegroup(name = "a", srcs = ["//b:x.txt"])',
               "b/BUILD": 'filegroup(name = "b", srcs = ["x.txt"])', "b/x.txt": ""})
    graph = load(root, "//a").graph
    x = graph.target(Label("", "b", "x.txt"))
    assert x.implicitly_exported and x.visibility == (Label("", "visibility", "private"),)


def test_a_string_and_a_select_concatenate(ws):
    root = ws({"a/BUILD": 'genrule(name = "g", outs = ["o"], '
                          'cmd = "echo " + select({"//conditions:default": "x"}) + " y")'})
    cmd = load(root, "//a:g").graph.target(Label("", "a", "g")).attrs["cmd"]
    assert repr(cmd) == "'echo ' + select({Label(repo='', package='conditions', " \
                        "name='default'): 'x'}) + ' y'"


def test_adding_a_string_to_a_select_in_a_variable_explains_the_workaround(ws):
    root = ws({"a/BUILD": 'X = select({"//conditions:default": "x"})\n'
                          'genrule(name = "g", outs = ["o"], cmd = "echo " + X)'})
    assert error_text(root, "//a:g").endswith(
        "hint: if one side is a select() kept in a variable: bp adds a string to a select() "
        "only where the `+` is written next to the select(...) call; write it there, or "
        'move the string into each branch, e.g. select({"//c:x": "echo " + "a"})')


def test_visibility_public_means_the_same_in_every_repository(ws):
    root = ws({"a/BUILD": 'filegroup(name = "a", srcs = ["@platforms//os:linux"])'})
    graph = load(root, "//a").graph
    assert Label("platforms", "os", "linux") in graph


def test_a_finished_command_leaves_no_starlark_environment_behind(bp, ws, monkeypatch):
    """What Starlark's Rust objects hold must not hold the environment back: a cycle
    through them is never collected, and every in-process command (the test suite, the
    fuzz test, watch mode) leaked about 3 MB and a file descriptor."""
    import gc
    import weakref

    from buildpy.lang.env import StarlarkEnv

    made = []
    init = StarlarkEnv.__init__

    def recording(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(weakref.ref(self))

    monkeypatch.setattr(StarlarkEnv, "__init__", recording)
    root = ws({"p/BUILD": 'genrule(name = "g", outs = ["g.txt"], cmd = "echo > $@")\n'})
    for command in ("query", "cquery", "aquery"):
        assert bp("-C", str(root), command, "//p:all").code == 0
    gc.collect()
    assert made and [ref() for ref in made] == [None] * len(made)


def test_a_call_stack_text_parses_into_its_frames():
    """starlark's call_stack(): each frame's line, then the line of source it is at;
    a blank line may come between frames."""
    from buildpy.lang.values import CallStack, Frame

    text = ("Traceback (most recent call last):\n"
            "  * pkg/BUILD:3, in <module>\n"
            "      my_macro(name = \"a:1, in b\")\n"
            "  * pkg/defs.bzl:12, in my_macro\n"
            "      genrule(\n\n"
            "  * <builtins>:195, in _bp_rule_instance\n"
            "      return x\n")
    frames = CallStack(text)
    assert list(frames) == [Frame("pkg/BUILD", 3, "<module>"),
                            Frame("pkg/defs.bzl", 12, "my_macro"),
                            Frame("<builtins>", 195, "_bp_rule_instance")]
    assert frames.index(frames[1]) == 1 and len(frames) == 3
