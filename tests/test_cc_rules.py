"""The prelude's C and C++ rules, analyzed end to end: the exact compile, archive and link
commands for examples/monorepo (//app:hello) and for small workspaces. Nothing is
compiled: the tests read the action graph that analysis produces."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildpy.actions.graph import Action
from buildpy.analysis.analyzer import AnalysisResult, Analyzer
from buildpy.config.configuration import BuildOptions
from buildpy.config.configured import ConfiguredGraph
from buildpy.core.errors import BpError
from buildpy.core.host import host_cpu, host_os
from buildpy.core.label import parse_label
from buildpy.loading.graph import GraphLoader
from buildpy.session import open_session

MONOREPO = Path(__file__).resolve().parent.parent / "examples" / "monorepo"

# bp's default C++ toolchains are for Linux targets and run on Linux hosts.
pytestmark = pytest.mark.skipif(host_os() != "linux", reason="needs a Linux host")

X86_64 = "//platforms:linux_x86_64"
BIN = "bp-out/linux_x86_64-fastbuild/bin"
# The x86_64 toolchain runs the native GNU tools on an x86_64 host, cross tools elsewhere.
GCC = ("" if host_cpu() == "x86_64" else "x86_64-linux-gnu-") + "gcc"
AR = ("" if host_cpu() == "x86_64" else "x86_64-linux-gnu-") + "ar"


def analyze(workspace: Path, label: str, platform: str | None = X86_64,
            mode: str = "fastbuild") -> AnalysisResult:
    """Analyzes one label as `bp build` would, for `platform` (None: the host)."""
    session = open_session(str(workspace))
    graph = GraphLoader(session.loader)
    errors = graph.add([parse_label(label)])
    if errors:
        raise errors[0]
    options = BuildOptions(platforms=(platform,) if platform else (), compilation_mode=mode)
    configured = ConfiguredGraph(graph, options, session.loader.workspace_settings())
    return Analyzer(configured).analyze([configured.key(parse_label(label), configured.top)])


def action(result: AnalysisResult, output: str) -> Action:
    """The action that produces `output`."""
    matches = [a for a in result.actions.actions if output in a.outputs]
    assert len(matches) == 1, f"{len(matches)} actions produce {output}"
    return matches[0]


def actions_of(result: AnalysisResult, label: str, mnemonic: str) -> list[Action]:
    return [a for a in result.actions.actions
            if a.owner_label == label and a.mnemonic == mnemonic]


# ---- examples/monorepo: //app:hello ------------------------------------------------------

@pytest.fixture(scope="module")
def hello() -> AnalysisResult:
    return analyze(MONOREPO, "//app:hello")


def test_a_cc_binary_has_bazels_implicit_outputs(bp, hello):
    """`<name>.stripped` and `<name>.dwp` are targets of the package (`//app:*`), made
    only when asked for, as in Bazel."""
    result = bp("-C", str(MONOREPO), "query", 'kind("generated file", //app:*)')
    assert {"//app:hello.stripped", "//app:hello.dwp"} <= set(result.out.split())
    strip = action(hello, f"{BIN}/app/hello.stripped")
    assert strip.mnemonic == "CcStrip"
    assert strip.argv[2].startswith(("strip -S -p -o ", "x86_64-linux-gnu-strip -S -p -o "))
    assert strip.inputs == (f"{BIN}/app/hello",)
    assert action(hello, f"{BIN}/app/hello.dwp").content == ""


def test_hello_compiles_each_source_once_and_no_header(hello):
    compiled = [a.argv[a.argv.index("-c") + 1] for a in actions_of(hello, "//app:hello",
                                                                   "CppCompile")]
    assert compiled == ["app/hello.c", "app/cpu_x86_64.c"]


def test_hello_compile_command(hello):
    compile_hello = action(hello, f"{BIN}/app/_objs/hello/hello.o")
    assert compile_hello.mnemonic == "CppCompile"
    assert compile_hello.argv == (
        GCC, "-O0", "-g0",
        "-iquote", ".", "-iquote", BIN,
        "-Ilib/strutil", f"-I{BIN}/lib/strutil",
        "-DSTRUTIL_VERSION=2",
        "-c", "app/hello.c", "-o", f"{BIN}/app/_objs/hello/hello.o",
    )
    # The source, its own header, and every header of the libraries it depends on.
    assert compile_hello.inputs == (
        "lib/strutil/strutil.h", "lib/mathx/mathx.h", "app/cpu.h", "app/hello.c")
    assert compile_hello.outputs == (f"{BIN}/app/_objs/hello/hello.o",)


def test_library_compile_has_its_copts_after_the_mode_flags(hello):
    compile_strutil = action(hello, f"{BIN}/lib/strutil/_objs/strutil/strutil.o")
    assert compile_strutil.argv == (
        GCC, "-O0", "-g0",
        "-iquote", ".", "-iquote", BIN,
        "-Ilib/strutil", f"-I{BIN}/lib/strutil",
        "-DSTRUTIL_VERSION=2",
        "-O0", "-g",
        "-c", "lib/strutil/strutil.c", "-o", f"{BIN}/lib/strutil/_objs/strutil/strutil.o",
    )
    assert compile_strutil.inputs == ("lib/strutil/strutil.h", "lib/strutil/strutil.c")


def test_libraries_are_archived(hello):
    archive = action(hello, f"{BIN}/lib/mathx/libmathx.a")
    assert archive.mnemonic == "CppArchive"
    assert archive.argv == (AR, "rcsD", f"{BIN}/lib/mathx/libmathx.a",
                            f"{BIN}/lib/mathx/_objs/mathx/mathx.o")
    assert archive.inputs == (f"{BIN}/lib/mathx/_objs/mathx/mathx.o",)


def test_hello_link_command(hello):
    link = action(hello, f"{BIN}/app/hello")
    assert link.mnemonic == "CppLink"
    assert link.argv == (
        GCC, "-o", f"{BIN}/app/hello",
        f"{BIN}/app/_objs/hello/hello.o", f"{BIN}/app/_objs/hello/cpu_x86_64.o",
        f"{BIN}/lib/mathx/libmathx.a", f"{BIN}/lib/strutil/libstrutil.a",
    )
    assert sorted(link.inputs) == sorted([
        f"{BIN}/app/_objs/hello/hello.o", f"{BIN}/app/_objs/hello/cpu_x86_64.o",
        f"{BIN}/lib/mathx/libmathx.a", f"{BIN}/lib/strutil/libstrutil.a"])


def test_archives_are_linked_dependents_first(hello):
    # hello depends on mathx and strutil, and mathx on strutil: strutil must come last
    # although hello lists it after mathx anyway; see also the diamond test below.
    link = action(hello, f"{BIN}/app/hello")
    archives = [arg for arg in link.argv if arg.endswith(".a")]
    assert archives == [f"{BIN}/lib/mathx/libmathx.a", f"{BIN}/lib/strutil/libstrutil.a"]


def test_hello_target_result(hello):
    results = {str(key.label): result for key, result in hello.targets.items()}
    assert results["//app:hello"].files == (f"{BIN}/app/hello",)
    assert results["//app:hello"].executable == f"{BIN}/app/hello"
    assert results["//app:hello"].runfiles == (f"{BIN}/app/hello",)
    assert results["//lib/strutil:strutil"].files == (f"{BIN}/lib/strutil/libstrutil.a",)


def test_select_picks_the_arm64_source_define_and_cross_compiler():
    result = analyze(MONOREPO, "//app:hello", platform="//platforms:linux_arm64")
    arm_bin = "bp-out/linux_arm64-fastbuild/bin"
    gcc = ("" if host_cpu() == "arm64" else "aarch64-linux-gnu-") + "gcc"
    compile_cpu = action(result, f"{arm_bin}/app/_objs/hello/cpu_arm64.o")
    assert compile_cpu.argv[0] == gcc
    assert "-DSTRUTIL_ARM64=1" in compile_cpu.argv
    assert action(result, f"{arm_bin}/app/hello").argv[0] == gcc


def test_opt_mode_flags():
    result = analyze(MONOREPO, "//app:hello", mode="opt")
    opt_bin = "bp-out/linux_x86_64-opt/bin"
    compile_strutil = action(result, f"{opt_bin}/lib/strutil/_objs/strutil/strutil.o")
    assert compile_strutil.argv[1:3] == ("-O2", "-DNDEBUG")
    assert compile_strutil.argv[-5] == "-O2"  # its copts select()ed for opt


def test_generated_headers_are_compile_inputs():
    result = analyze(MONOREPO, "//codegen:banner_test")
    compile_banner = action(result, f"{BIN}/codegen/_objs/banner/banner.o")
    assert compile_banner.inputs == (
        "codegen/banner.h", f"{BIN}/codegen/version.h", f"{BIN}/codegen/banner_text.h",
        "codegen/banner.c")
    assert ("-iquote", BIN) == compile_banner.argv[5:7]
    compile_test = action(result, f"{BIN}/codegen/_objs/banner_test/banner_test.o")
    assert f"{BIN}/codegen/version.h" in compile_test.inputs


# ---- small workspaces ----------------------------------------------------------------------

def test_diamond_archive_order(ws):
    root = ws({
        "BUILD": """
            cc_library(name = "base", srcs = ["base.c"])
            cc_library(name = "left", srcs = ["left.c"], deps = [":base"])
            cc_library(name = "right", srcs = ["right.c"], deps = [":base", ":left"])
            cc_binary(name = "app", srcs = ["app.c"], deps = [":base", ":right", ":left"])
        """,
        "base.c": "", "left.c": "", "right.c": "", "app.c": ""})
    result = analyze(root, "//:app", platform=None)
    link = next(a for a in result.actions.actions if a.mnemonic == "CppLink")
    archives = [arg.rsplit("/", 1)[1] for arg in link.argv if arg.endswith(".a")]
    assert archives == ["libright.a", "libleft.a", "libbase.a"]


def test_cxx_alwayslink_linkopts_and_implementation_deps(ws):
    root = ws({
        "BUILD": r"""
            cc_library(name = "private", hdrs = ["private.h"], defines = ["PRIVATE=1"])
            cc_library(
                name = "lib",
                srcs = ["lib.cc"],
                implementation_deps = [":private"],
                alwayslink = True,
                copts = ["-DGREETING='\"hi there\"' -Wall"],
                linkopts = ["-framework A", "-framework B"],
            )
            cc_binary(name = "app", srcs = ["app.c"], deps = [":lib"])
        """,
        "private.h": "", "lib.cc": "", "app.c": ""})
    result = analyze(root, "//:app", platform=None)
    bin_dir = next(a for a in result.actions.actions
                   if a.mnemonic == "CppLink").outputs[0].rsplit("/", 1)[0]
    compile_lib = action(result, f"{bin_dir}/_objs/lib/lib.o")
    assert compile_lib.argv[0] == "g++"
    assert compile_lib.argv[-7:-4] == ("-DPRIVATE=1", '-DGREETING="hi there"', "-Wall")
    assert "private.h" in compile_lib.inputs
    compile_app = action(result, f"{bin_dir}/_objs/app/app.o")
    assert "-DPRIVATE=1" not in compile_app.argv
    assert "private.h" not in compile_app.inputs
    link = action(result, f"{bin_dir}/app")
    assert link.argv == (
        "g++", "-o", f"{bin_dir}/app", f"{bin_dir}/_objs/app/app.o",
        "-Wl,--whole-archive", f"{bin_dir}/liblib.lo", "-Wl,--no-whole-archive",
        "-framework", "A", "-framework", "B")


def test_strip_include_prefix_links_headers_under_virtual_includes(ws):
    root = ws({
        "third_party/z/BUILD": """
            cc_library(name = "z", hdrs = ["include/z.h"], strip_include_prefix = "include",
                       include_prefix = "zlib", visibility = ["//visibility:public"])
        """,
        "third_party/z/include/z.h": "",
        "BUILD": 'cc_binary(name = "app", srcs = ["app.c"], deps = ["//third_party/z"])',
        "app.c": ""})
    result = analyze(root, "//:app", platform=None)
    link = next(a for a in result.actions.actions if a.kind.value == "symlink")
    bin_dir = link.outputs[0].split("/third_party/")[0]
    virtual = f"{bin_dir}/third_party/z/_virtual_includes/z"
    assert link.outputs == (f"{virtual}/zlib/z.h",)
    assert link.target == "third_party/z/include/z.h"
    compile_app = action(result, f"{bin_dir}/_objs/app/app.o")
    assert f"-I{virtual}" in compile_app.argv
    assert f"{virtual}/zlib/z.h" in compile_app.inputs


def test_a_file_that_is_not_cc_is_an_error(ws):
    root = ws({"BUILD": 'cc_library(name = "lib", srcs = ["notes.txt"])', "notes.txt": ""})
    with pytest.raises(BpError) as error:
        analyze(root, "//:lib", platform=None)
    assert ("'notes.txt' in 'srcs' is not a file this attribute takes (expected .c, .S, .s, "
            ".cc, .cpp, .cxx, .c++, .C, .h, .hh, .hpp, .hxx, .h++, .H, .inc, .inl, .ipp, "
            ".tcc, .o, .a, .lo, .so, .dylib)") in error.value.render()


def test_deps_must_provide_ccinfo(ws):
    root = ws({"BUILD": """
        filegroup(name = "files", srcs = ["a.h"])
        cc_binary(name = "app", srcs = ["app.c"], deps = [":files"])
    """, "a.h": "", "app.c": ""})
    with pytest.raises(BpError) as error:
        analyze(root, "//:app", platform=None)
    assert "in 'deps': '//:files' does not have mandatory provider 'CcInfo'" in \
        error.value.render()


IMPORTS = {
    "lib/reg.c": '#include <stdio.h>\n'
                 'static void hello(void) __attribute__((constructor));\n'
                 'static void hello(void) { printf("registered\\n"); }\n',
    "lib/foo.c": "int foo(void) { return 42; }\n",
    "lib/foo.h": "int foo(void);\n",
    "lib/BUILD": """
        package(default_visibility = ["//visibility:public"])
        genrule(name = "reg_a", srcs = ["reg.c"], outs = ["libreg.a"],
                cmd = "gcc -c $< -o $(@D)/reg.o && ar rcs $@ $(@D)/reg.o")
        genrule(name = "so", srcs = ["foo.c"], outs = ["libfoo.so"],
                cmd = "gcc -shared -fPIC $< -o $@")
        cc_import(name = "reg", static_library = ":libreg.a", alwayslink = True)
        cc_import(name = "foo", hdrs = ["foo.h"], shared_library = ":libfoo.so")
    """,
    "app/main.c": '#include <stdio.h>\n#include "lib/foo.h"\n'
                  'int main(void) { printf("foo=%d\\n", foo()); return 0; }\n',
    "app/BUILD": """
        cc_binary(name = "app", srcs = ["main.c"], deps = ["//lib:foo", "//lib:reg"])
        genrule(name = "run", outs = ["run.txt"], tools = [":app"],
                cmd = "$(location :app) > $@")
    """,
}


def test_cc_import_links_prebuilt_libraries(bp, ws):
    """An alwayslink archive is linked whole (its constructor runs though nothing calls
    it); a shared library is found at run time through the program's rpath."""
    root = ws(IMPORTS)
    result = bp("-C", str(root), "build", "//app:run")
    assert result.code == 0, result.err
    assert (root / "bp-bin/app/run.txt").read_text() == "registered\nfoo=42\n"
    assert (root / "bp-out/linux_x86_64-opt-exec/bin/lib/_solib/libfoo.so").is_file()


@pytest.mark.parametrize("attrs, message", [
    ('shared_library = "libx.so", system_provided = True',
     "cc_import x: 'shared_library' should not be set when 'system_provided' is True"),
    ('interface_library = "libx.so"',
     "cc_import x: 'interface_library' needs 'shared_library' (or system_provided = True)"),
])
def test_cc_import_errors(bp, ws, attrs, message):
    root = ws({"BUILD": f'cc_import(name = "x", {attrs})\n', "libx.so": ""})
    result = bp("-C", str(root), "build", "//:x")
    assert result.code == 2
    assert message in result.err


def test_cc_common_reports_what_bp_does_not_do(bp, ws):
    root = ws({
        "BUILD": 'load(":r.bzl", "r")\nr(name = "r")\n',
        "r.bzl": """
            load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain")

            def _impl(ctx):
                toolchain = find_cpp_toolchain(ctx)
                print("compiler: %s %s" % (toolchain.compiler, toolchain.ar_executable))
                cc_common.compile(actions = ctx.actions)

            r = rule(implementation = _impl, attrs = {
                "_cc_toolchain": attr.label(default = "@bazel_tools//tools/cpp:current_cc_toolchain"),
            })
        """,
    })
    result = bp("-C", str(root), "build", "//:r")
    assert result.code == 2
    assert "cc_common.compile is not supported by bp: bp reads and makes CcInfo" in result.err
    assert "r.bzl:6, in _impl" in result.err   # the user's call


def test_a_rule_asking_for_bazels_cpp_toolchain_type_gets_bps(bp, ws):
    root = ws({
        "BUILD": 'load(":r.bzl", "r")\nr(name = "r")\n',
        "r.bzl": """
            load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain",
                 "use_cpp_toolchain")

            def _impl(ctx):
                out = ctx.actions.declare_file("cc.txt")
                ctx.actions.write(out, find_cpp_toolchain(ctx).compiler_executable)
                return [DefaultInfo(files = depset([out]))]

            r = rule(implementation = _impl, toolchains = use_cpp_toolchain())
        """,
    })
    result = bp("-C", str(root), "build", "//:r")
    assert result.code == 0, result.err
    assert (root / "bp-bin/cc.txt").read_text().endswith("gcc")


def test_find_cpp_toolchain_needs_a_way_to_the_toolchain(bp, ws):
    root = ws({
        "BUILD": 'load(":r.bzl", "r")\nr(name = "r")\n',
        "r.bzl": """
            load("@bazel_tools//tools/cpp:toolchain_utils.bzl", "find_cpp_toolchain")

            def _impl(ctx):
                find_cpp_toolchain(ctx)

            r = rule(implementation = _impl)
        """,
    })
    result = bp("-C", str(root), "build", "//:r")
    assert result.code == 2
    assert "find_cpp_toolchain: the rule has no '_cc_toolchain' attribute and asks for no " \
           "C++ toolchain; add toolchains = use_cpp_toolchain()" in result.err
    assert "r.bzl:4, in _impl" in result.err
