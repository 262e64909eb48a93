"""Genrule commands too long for one `bash -c` argument run from a script file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildpy.execution import sandbox
from buildpy.execution.sandbox import LinuxSandboxStrategy

COUNT = 10_000
NAME = "input_file_with_a_rather_long_name_{:05d}.txt"


def _workspace(ws, cmd: str) -> Path:
    root = ws({"BUILD": (
        f'genrule(name = "g", srcs = glob(["in/*.txt"]), outs = ["list.txt"], '
        f"cmd = {json.dumps(cmd)})\n")})
    (root / "in").mkdir()
    for i in range(COUNT):   # not through `ws`, which takes seconds for this many
        (root / "in" / NAME.format(i)).touch()
    return root


def test_a_genrule_with_ten_thousand_srcs_builds(bp, ws):
    root = _workspace(ws, "printf '%s\\n' $(SRCS) > $@")
    result = bp("build", "//:g", cwd=root)
    assert result.code == 0, result.err
    listed = (root / "bp-bin" / "list.txt").read_text().splitlines()
    assert listed == [f"in/{NAME.format(i)}" for i in range(COUNT)]


def test_a_long_command_runs_from_a_script_that_is_part_of_the_key(bp, ws):
    def write(word: str):
        return ws({"BUILD": (
            f'genrule(name = "g", outs = ["o"], cmd = "echo {word * 5000} > $@")\n')})

    root = write("abcdefg")   # 40,000 characters: over the limit of one `bash -c` argument
    result = bp("build", "//:g", cwd=root)
    assert result.code == 0, result.err
    assert (root / "bp-bin" / "o").read_text() == "abcdefg" * 5000 + "\n"
    script = (root / "bp-bin" / "g.genrule_script.sh").read_text()
    assert script == f"set -euo pipefail\necho {'abcdefg' * 5000} > " \
                     "bp-out/linux_x86_64-fastbuild/bin/o\n"
    aquery = bp("aquery", "//:g", cwd=root)
    assert aquery.code == 0, aquery.err
    assert ("Mnemonic: Genrule" in aquery.out and "Command Line: (/bin/bash \\\n    "
            "bp-out/linux_x86_64-fastbuild/bin/g.genrule_script.sh)" in aquery.out)
    # Same length, same argv: only the script's content differs, and the output follows.
    write("abcdefh")
    result = bp("build", "//:g", cwd=root)
    assert result.code == 0, result.err
    assert (root / "bp-bin" / "o").read_text() == "abcdefh" * 5000 + "\n"


def test_a_short_command_stays_on_the_command_line(bp, ws):
    root = ws({"in.txt": "x\n", "BUILD": (
        'genrule(name = "g", srcs = ["in.txt"], outs = ["o"], cmd = "cat $< > $@")\n')})
    result = bp("aquery", "//:g", cwd=root)
    assert result.code == 0, result.err
    assert "genrule_script" not in result.out
    assert "-c \\\n    'set -euo pipefail\ncat in.txt > bp-out/" in result.out


linux_sandbox = pytest.mark.skipif(not LinuxSandboxStrategy.available()[0],
                                   reason="bubblewrap cannot run here")


def _many_inputs(ws, count: int) -> Path:
    root = ws({"p/BUILD": (
        'genrule(name = "in", srcs = glob(["in/*"]), outs = ["in.out"], '
        'cmd = "cat $(SRCS) > $@")\n'
        'genrule(name = "top", srcs = glob(["*.txt"]), outs = ["top.out"], '
        'cmd = "cat $(SRCS) > $@")\n')})
    for i in range(count):
        (root / "p" / "in").mkdir(exist_ok=True)
        (root / "p" / "in" / f"{i}").write_text(f"{i}\n")
        (root / "p" / f"{i}.txt").write_text(f"{i}\n")
    return root


@linux_sandbox
def test_bubblewrap_mounts_a_fully_declared_directory_once(bp, ws, monkeypatch):
    monkeypatch.setattr(sandbox, "_MANY_MOUNTS", 10)
    monkeypatch.setattr(sandbox, "BWRAP_MAX_ARGS", 200)   # 40 mounts one by one: too many
    root = _many_inputs(ws, 40)
    result = bp("build", "//p:in", "--spawn_strategy=linux-sandbox", cwd=root)
    assert result.code == 0, result.err
    assert sorted((root / "bp-bin" / "p" / "in.out").read_text().split()) == \
        sorted(str(i) for i in range(40))


@linux_sandbox
def test_too_many_inputs_for_bubblewrap_is_a_clear_error(bp, ws, monkeypatch):
    monkeypatch.setattr(sandbox, "_MANY_MOUNTS", 10)
    monkeypatch.setattr(sandbox, "BWRAP_MAX_ARGS", 200)
    root = _many_inputs(ws, 40)   # p/ also holds BUILD, not an input: mounted one by one
    result = bp("build", "//p:top", "--spawn_strategy=linux-sandbox", cwd=root)
    assert result.code == 1
    assert ("cannot run /bin/bash: linux-sandbox cannot mount 40 inputs one by one "
            "(bubblewrap takes at most 9000 arguments, three a mount); declare every file "
            "of their directories, or run it with --strategy=Genrule=sandboxed\n"
            ) in result.err, result.err
    assert "Traceback" not in result.err
