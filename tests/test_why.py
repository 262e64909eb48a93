"""`bp why`, `--explain` and `bp log`: why each action of the last build ran (what
changed in its manifest since its run before: an input, the command line, the content it
writes), or which cache it came from, or that it was up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BP = [sys.executable, "-m", "buildpy"]


def _bp(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*BP, "--nohome_rc", *args], cwd=root, capture_output=True,
                          text=True, timeout=300)


def _why(root: Path, what: str) -> list[str]:
    done = _bp(root, "why", what)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_why_names_what_changed(ws, tmp_path):
    root = ws({
        "a.txt": "one\n",
        "w.bzl": """
            def _impl(ctx):
                out = ctx.actions.declare_file(ctx.label.name + ".txt")
                ctx.actions.write(out, ctx.attr.text + "\\n")
                return [DefaultInfo(files = depset([out]))]

            w = rule(implementation = _impl, attrs = {"text": attr.string()})
        """,
        "BUILD": """
            load(":w.bzl", "w")
            genrule(name = "g", srcs = ["a.txt"], outs = ["g.txt"], cmd = "cat $< > $@")
            w(name = "w", text = "hello")
        """})
    cache = f"--disk_cache={tmp_path / 'cache'}"
    assert _bp(root, "build", cache, "//...").returncode == 0
    lines = _why(root, "//:g")
    assert lines[0].startswith("//:g: Genrule bp-out/") and "g.txt: ran (" in lines[0]
    assert lines[1] == "  first build: no earlier run of this action is recorded"

    (root / "a.txt").write_text("two\n")
    build = root / "BUILD"
    build.write_text(build.read_text().replace('"hello"', '"hello there"')
                     .replace("cat $< > $@", "cat $< $< > $@"))
    explain = tmp_path / "explain.txt"
    done = _bp(root, "build", cache, f"--explain={explain}", "//...")
    assert done.returncode == 0, done.stderr
    lines = _why(root, "//:g")
    assert any(line.startswith("  input a.txt changed: ") for line in lines), lines
    assert "  command line changed (one argument a line):" in lines
    assert any(line.strip().startswith("-") and "cat a.txt > bp-out" in line
               for line in lines), lines
    assert any(line.strip().startswith("+") and "cat a.txt a.txt > bp-out" in line
               for line in lines), lines
    lines = _why(root, "bp-bin/w.txt")   # by output file
    assert lines[0].endswith("w.txt: written by bp itself (0.00 s)") or \
        "written by bp itself" in lines[0], lines
    assert lines[1:] == ["  the content it writes changed:", "      --- before",
                         "      +++ now", "      @@ -1 +1 @@", "      -hello",
                         "      +hello there"]
    assert explain.read_text().splitlines() == _why(root, "//:g") + _why(root, "//:w")
    # bp log: the actions of the last build, how and why
    done = _bp(root, "log", "--json")
    entries = [__import__("json").loads(line) for line in done.stdout.splitlines()]
    assert [(e["label"], e["mnemonic"]) for e in entries] == [("//:g", "Genrule"),
                                                               ("//:w", "FileWrite")]
    assert entries[1]["how"] == "in-process"
    assert entries[0]["reasons"][0].startswith("input a.txt changed: ")
    done = _bp(root, "log")
    assert done.stdout.splitlines()[1].startswith("in-process")
    assert done.stdout.splitlines()[1].endswith("w.txt: the content it writes changed:")

    # back as it was: both come from the cache
    (root / "a.txt").write_text("one\n")
    build.write_text(build.read_text().replace('"hello there"', '"hello"')
                     .replace("cat $< $< > $@", "cat $< > $@"))
    assert _bp(root, "build", cache, "//...").returncode == 0
    assert _why(root, "//:g")[1:] == ["  a cache hit (local-cache)"]
    assert _why(root, "//:g")[0].endswith("a hit in the local cache")
    # nothing changed: up to date
    assert _bp(root, "build", cache, "//...").returncode == 0
    assert "up to date in the last build" in _why(root, "//:g")[0]


def test_why_without_a_record_says_so(ws):
    root = ws({"BUILD": 'genrule(name = "g", outs = ["g.txt"], cmd = "touch $@")\n'})
    done = _bp(root, "why", "//:g")
    assert done.returncode != 0
    assert "no build of this workspace is recorded" in done.stderr
    assert _bp(root, "build", "//:g").returncode == 0
    done = _bp(root, "why", "//:nope")
    assert "no action of '//:nope' is recorded in this workspace's builds" in done.stderr


def test_why_names_a_changed_copt_and_log_lists_a_no_op_build(ws, tmp_path):
    root = ws({"x/BUILD": 'cc_library(name = "lib", srcs = ["lib.c"])\n',
               "x/lib.c": "int lib(void) { return 1; }\n"})
    cache = f"--disk_cache={tmp_path / 'cache'}"
    assert _bp(root, "build", cache, "//x:lib").returncode == 0
    assert _bp(root, "build", cache, "--copt=-DFOO", "//x:lib").returncode == 0
    lines = _why(root, "//x:lib")
    compile_at = next(i for i, line in enumerate(lines) if " CppCompile " in line)
    assert lines[compile_at + 1] == "  command line changed (one argument a line):"
    assert "      +-DFOO" in lines[compile_at + 2:compile_at + 8], lines
    done = _bp(root, "log")
    assert any(line.endswith("lib.o: command line changed: +-DFOO")
               for line in done.stdout.splitlines()), done.stdout
    # nothing to do: every action is listed, up to date, with its last run
    assert _bp(root, "build", cache, "--copt=-DFOO", "//x:lib").returncode == 0
    entries = [__import__("json").loads(line)
               for line in _bp(root, "log", "--json").stdout.splitlines()]
    assert [e["mnemonic"] for e in entries] == ["CppCompile", "CppArchive"]
    assert all(e["how"] == "up-to-date" and e["duration"] == 0.0 for e in entries)
    assert entries[0]["last_run"]["how"] != "up-to-date"
    assert all("up to date in the last build" in line for line in _why(root, "//x:lib"))


def test_a_reason_on_one_line():
    from buildpy.execution.explain import differences, one_line

    found = differences({"argv": ["gcc", "-O0", "-c", "a.c"]},
                        {"argv": ["gcc", "-O2", "--x", "-c", "a.c"]})
    assert one_line(found[0]) == "command line changed: --O0 +-O2 +--x"
    assert one_line("input a.txt changed: 1… -> 2…") == "input a.txt changed: 1… -> 2…"
    assert one_line("the content it writes changed:\n    --- before") == \
        "the content it writes changed:"
