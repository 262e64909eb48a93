"""`bp why` and `--explain`: why each action of the last build ran (what changed in its
manifest since its run before: an input, the command line, the content it writes), or
which cache it came from, or that it was up to date."""

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
