"""Bazel's C++ flags of the command line (--copt, --cxxopt, --conlyopt, --linkopt): where
they go in compile and link commands, that tools built for the exec configuration do not
get them, that the output directory keeps its name, and, end to end with gcc, that they
reach the compiler from the command line and from a .bprc, that `bp why` names a changed
flag and that `bp log` lists every action of a build that had nothing to do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from buildpy.analysis.analyzer import AnalysisResult, Analyzer
from buildpy.config.configuration import BuildOptions
from buildpy.config.configured import ConfiguredGraph
from buildpy.core.host import host_cpu, host_os
from buildpy.core.label import parse_label
from buildpy.loading.graph import GraphLoader
from buildpy.session import open_session

# bp's default C++ toolchains are for Linux targets and run on Linux hosts.
pytestmark = pytest.mark.skipif(host_os() != "linux", reason="needs a Linux host")

BP = [sys.executable, "-m", "buildpy"]

FILES = {
    "BUILD": """
        cc_library(name = "lib", srcs = ["lib.c", "more.cc"], copts = ["-DOWN"])
        cc_binary(name = "app", srcs = ["app.c"], deps = [":lib"], linkopts = ["-lm"])
        genrule(name = "gen", outs = ["gen.txt"], tools = [":tool"],
                cmd = "$(location :tool) > $@")
        cc_binary(name = "tool", srcs = ["tool.c"])
        cc_library(name = "needs_foo", srcs = ["needs_foo.c"])
    """,
    # needs_foo.c compiles only with -DFOO: proof that the flag reached the compiler
    "needs_foo.c": "#ifndef FOO\n#error FOO is not defined\n#endif\nint f(void) { return 1; }\n",
    "lib.c": "int lib(void) { return 1; }\n",
    "more.cc": "int more() { return 2; }\n",
    "app.c": "int lib(void);\nint main(void) { return lib() - 1; }\n",
    "tool.c": '#include <stdio.h>\nint main(void) { puts("made"); return 0; }\n',
}


def analyze(workspace: Path, label: str, options: BuildOptions) -> AnalysisResult:
    session = open_session(str(workspace))
    graph = GraphLoader(session.loader)
    assert not graph.add([parse_label(label)])
    configured = ConfiguredGraph(graph, options, session.loader.workspace_settings())
    return Analyzer(configured).analyze([configured.key(parse_label(label), configured.top)])


def _argv(result: AnalysisResult, output_end: str) -> tuple[str, ...]:
    found = [a for a in result.actions.actions if a.outputs[0].endswith(output_end)]
    assert len(found) == 1, [a.outputs[0] for a in result.actions.actions]
    return found[0].argv


def test_flags_go_where_bazel_puts_them(ws):
    root = ws(FILES)
    options = BuildOptions(copts=("-DFOO", "-Wl,-a,b"), cxxopts=("-DCXX",),
                           conlyopts=("-DCONLY",), linkopts=("-s", "-Wl,--as-needed"))
    result = analyze(root, "//:app", options)
    c = _argv(result, "/_objs/lib/lib.o")
    # the toolchain's and the mode's flags, includes and defines; --copt (a value with
    # commas stays one argument), --conlyopt for C; the target's copts last
    assert c[c.index("-DFOO"):c.index("-c")] == ("-DFOO", "-Wl,-a,b", "-DCONLY", "-DOWN")
    assert c.index("-O0") < c.index("-DFOO")
    cxx = _argv(result, "/_objs/lib/more.o")
    assert cxx[cxx.index("-DFOO"):cxx.index("-c")] == ("-DFOO", "-Wl,-a,b", "-DCXX", "-DOWN")
    link = _argv(result, "/app")
    assert link[-3:] == ("-lm", "-s", "-Wl,--as-needed")   # after the targets' linkopts
    assert "-DFOO" not in link
    archive = _argv(result, "/liblib.a")
    assert "-s" not in archive and "-DFOO" not in archive
    # the output directory keeps its name: the flags are not in it
    assert link[link.index("-o") + 1] == f"bp-out/{host_os()}_{host_cpu()}-fastbuild/bin/app"


def test_tools_built_for_the_exec_configuration_do_not_get_them(ws):
    root = ws(FILES)
    result = analyze(root, "//:gen", BuildOptions(copts=("-DFOO",), linkopts=("-s",)))
    tool = _argv(result, "/_objs/tool/tool.o")
    assert "-exec/bin/" in tool[-1] and "-DFOO" not in tool
    assert "-s" not in _argv(result, "-exec/bin/tool")


def test_the_configuration_hash_changes_with_them(ws):
    root = ws(FILES)
    hashes = set()
    for options in (BuildOptions(), BuildOptions(copts=("-DFOO",)),
                    BuildOptions(cxxopts=("-DFOO",)), BuildOptions(linkopts=("-DFOO",))):
        session = open_session(str(root))
        configured = ConfiguredGraph(GraphLoader(session.loader), options,
                                     session.loader.workspace_settings())
        hashes.add(configured.top.hash)
        assert configured.top.option("copt") == list(options.copts)
    assert len(hashes) == 4


# ---- end to end: bp with gcc ---------------------------------------------------------------

def _bp(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*BP, "--nohome_rc", *args], cwd=root, capture_output=True,
                          text=True, timeout=300)


def test_copt_reaches_the_compiler_and_why_names_it(ws, tmp_path):
    root = ws(FILES)
    cache = f"--disk_cache={tmp_path / 'cache'}"
    failed = _bp(root, "build", cache, "//:needs_foo")
    assert failed.returncode == 1 and "FOO is not defined" in failed.stderr
    done = _bp(root, "build", cache, "--copt", "-DFOO", "//:needs_foo")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "libneeds_foo.a").exists()

    assert _bp(root, "build", cache, "//:lib").returncode == 0
    done = _bp(root, "build", cache, "--copt=-DFOO", "//:lib")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-out" / f"{host_os()}_{host_cpu()}-fastbuild" / "bin" / "liblib.a").exists()
    lines = _bp(root, "why", "//:lib").stdout.splitlines()
    at = lines.index("  command line changed (one argument a line):")
    assert "      +-DFOO" in lines[at:at + 8], lines
    # bp log: one line per action, summing up what changed on the command line
    log = [line for line in _bp(root, "log").stdout.splitlines() if "lib.o" in line]
    assert log and log[0].endswith("command line changed: +-DFOO"), log


def test_a_bprc_gives_copt_to_build_and_aquery(ws, tmp_path):
    root = ws({**FILES, ".bprc": "build --copt=-DFOO --cxxopt=-DCXX\n"})
    cache = f"--disk_cache={tmp_path / 'cache'}"
    done = _bp(root, "build", cache, "//:needs_foo")   # -DFOO from the .bprc
    assert done.returncode == 0, done.stderr
    done = _bp(root, "aquery", "--output=jsonproto", 'mnemonic("CppCompile", //:lib)')
    assert done.returncode == 0, done.stderr
    argvs = {a["outputs"][0].rsplit("/", 1)[-1]: a["argv"] for a in json.loads(done.stdout)}
    lib_c, more = argvs["lib.o"], argvs["more.o"]
    assert lib_c[lib_c.index("-DFOO"):lib_c.index("-c")] == ["-DFOO", "-DOWN"]
    assert more[more.index("-DFOO"):more.index("-c")] == ["-DFOO", "-DCXX", "-DOWN"]
    # the command line adds to the .bprc's, in order
    done = _bp(root, "aquery", "--output=jsonproto", "--copt=-DMORE",
               'mnemonic("CppCompile", //:lib)')
    argv = json.loads(done.stdout)[0]["argv"]
    assert argv[argv.index("-DFOO"):argv.index("-DFOO") + 2] == ["-DFOO", "-DMORE"]
    done = _bp(root, "cquery", "--copt=-DMORE", "//:lib")
    assert done.returncode == 0, done.stderr


def test_log_lists_every_action_of_a_build_that_had_nothing_to_do(ws, tmp_path):
    root = ws(FILES)
    cache = f"--disk_cache={tmp_path / 'cache'}"
    assert _bp(root, "build", cache, "--copt=-DFOO", "//:app").returncode == 0
    first = [json.loads(line) for line in _bp(root, "log", "--json").stdout.splitlines()]
    assert {e["how"] for e in first} <= {"local", "sandboxed", "linux-sandbox", "in-process"}
    assert _bp(root, "build", cache, "--copt=-DFOO", "//:app").returncode == 0
    again = [json.loads(line) for line in _bp(root, "log", "--json").stdout.splitlines()]
    assert [(e["label"], e["output"]) for e in again] == \
        [(e["label"], e["output"]) for e in first]
    for entry, before in zip(again, first):
        assert entry["how"] == "up-to-date" and entry["duration"] == 0.0
        assert entry["last_run"]["how"] == before["how"]
        assert entry["reasons"][0].startswith(
            "up to date: nothing it depends on changed since its last run (")
    text = _bp(root, "log").stdout.splitlines()
    assert len(text) == len(again) and all(line.startswith("up-to-date") for line in text)
    why = _bp(root, "why", "//:app").stdout.splitlines()
    assert why and all("up to date in the last build" in line for line in why)
    # one target rebuilt, by a changed source: the rest listed as up to date
    (root / "app.c").write_text("int lib(void);\nint main(void) { return 0; }\n")
    assert _bp(root, "build", cache, "--copt=-DFOO", "//:app").returncode == 0
    hows = {e["output"].rsplit("/", 1)[-1]: e["how"] for e in
            (json.loads(line) for line in _bp(root, "log", "--json").stdout.splitlines())}
    assert hows["liblib.a"] == hows["lib.o"] == "up-to-date"
    assert hows["app.o"] != "up-to-date"
    # another target built: //:app's actions were not part of that build
    assert _bp(root, "build", cache, "//:tool").returncode == 0
    assert all(e["label"] == "//:tool" for e in (
        json.loads(line) for line in _bp(root, "log", "--json").stdout.splitlines()))
    why = _bp(root, "why", "//:app").stdout.splitlines()
    assert "not part of the last build" in why[0], why
