"""Writes a synthetic monorepo that bp, Bazel 4.2 and ninja all build the same way.

    python bench/gen_monorepo.py OUT --packages P --targets-per-package T [--seed S]

OUT gets a `WORKSPACE`, packages `pkg0` .. `pkg{P-1}` and a `build.ninja` with the same
commands and DAG (outputs under `ninja-out/`). Each package holds T genrules `t0..`,
one source file per genrule (`src{t}.txt`), a `filegroup` `all` of its outputs and two
`sh_test`s. Genrule `//pkg{p}:t{t}` reads its own source, `//pkg{p-1}:t{t}` (so every
chain `t{t}` is P actions long) and one or two random targets of lower packages. Every
command pipes its inputs through `cksum`: a plain `cat` would double the output size
at every level of the DAG. `//pkg0:opt` is a `config_setting` (`-c opt`) that one
genrule's `cmd` selects on. Knows nothing about how the tools are run or timed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

# The two command shapes, as genrule `cmd` text and as ninja rule commands.
_CAT = "cat $(SRCS) | cksum > $@"
_ECHO = "{{ echo {tag}; cat $(SRCS) | cksum; }} > $@"
_OPT = "{ echo opt; cat $(SRCS) | cksum; } > $@"
_NINJA_RULES = """\
rule cat
  command = cat $in | cksum > $out
  description = cat $out
rule echocat
  command = { echo $tag; cat $in | cksum; } > $out
  description = echocat $out
"""
_EXISTS_SH = '#!/bin/sh\n# Passes when the file named by $1 exists.\ntest -e "$1"\n'
_NONEMPTY_SH = '#!/bin/sh\n# Passes when the file named by $1 is not empty.\ntest -s "$1"\n'


@dataclass(frozen=True)
class Genrule:
    package: int
    index: int
    deps: tuple[tuple[int, int], ...]   # (package, index) of the genrules it reads
    echo: bool                           # the `echo` + `cat` shape rather than plain `cat`
    selects: bool                        # its cmd is a select() on //pkg0:opt

    @property
    def tag(self) -> str:
        return f"pkg{self.package}_t{self.index}"


def plan(packages: int, targets: int, seed: int) -> list[list[Genrule]]:
    """The genrules of every package, deterministic from the seed."""
    if packages < 1 or targets < 1:
        raise ValueError("--packages and --targets-per-package must be at least 1")
    rng = random.Random(seed)
    select_at = (packages // 2, 0)
    result = []
    for p in range(packages):
        rules = []
        for t in range(targets):
            deps: list[tuple[int, int]] = []
            if p > 0:
                deps.append((p - 1, t))            # the long chain of t{t}
                extra = 1 + (rng.random() < 0.5)   # 2 or 3 deps in all
                candidates = p * targets - 1       # any genrule below p but (p-1, t)
                for _ in range(min(extra, candidates)):
                    while True:
                        q = rng.randrange(p)
                        u = rng.randrange(targets)
                        if (q, u) not in deps:
                            break
                    deps.append((q, u))
            rules.append(Genrule(p, t, tuple(deps), echo=rng.random() < 0.2,
                                 selects=(p, t) == select_at))
        result.append(rules)
    return result


def _label(p: int, t: int, here: int) -> str:
    return f":t{t}" if p == here else f"//pkg{p}:t{t}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_file(rules: list[Genrule]) -> str:
    p = rules[0].package
    lines = ['package(default_visibility = ["//visibility:public"])', ""]
    if p == 0:
        lines += ["config_setting(", '    name = "opt",',
                  '    values = {"compilation_mode": "opt"},', ")", ""]
    for rule in rules:
        srcs = [f"src{rule.index}.txt"] + [_label(q, u, p) for q, u in rule.deps]
        cmd = _ECHO.format(tag=rule.tag) if rule.echo else _CAT
        if rule.selects:
            cmd_text = (f'select({{\n        "//pkg0:opt": {_quote(_OPT)},\n'
                        f'        "//conditions:default": {_quote(cmd)},\n    }})')
        else:
            cmd_text = _quote(cmd)
        lines += ["genrule(", f'    name = "t{rule.index}",',
                  "    srcs = [" + ", ".join(_quote(s) for s in srcs) + "],",
                  f'    outs = ["t{rule.index}.out"],', f"    cmd = {cmd_text},", ")", ""]
    last = len(rules) - 1
    lines += ["filegroup(", '    name = "all",',
              "    srcs = [" + ", ".join(f'":t{r.index}"' for r in rules) + "],", ")", "",
              "sh_test(", '    name = "exists_test",', '    srcs = ["exists_test.sh"],',
              '    args = ["$(location :t0)"],', '    data = [":t0"],', ")", "",
              "sh_test(", '    name = "nonempty_test",', '    srcs = ["nonempty_test.sh"],',
              f'    args = ["$(location :t{last})"],', f'    data = [":t{last}"],', ")", ""]
    return "\n".join(lines)


def ninja_file(packages: list[list[Genrule]]) -> str:
    """The same DAG for ninja; paths are relative to the workspace directory."""
    out = ["# Generated by bench/gen_monorepo.py: the genrules of the BUILD files.",
           "ninja_required_version = 1.10", "", _NINJA_RULES]
    for rules in packages:
        for r in rules:
            inputs = " ".join([f"pkg{r.package}/src{r.index}.txt"] +
                              [f"ninja-out/pkg{q}/t{u}.out" for q, u in r.deps])
            target = f"ninja-out/pkg{r.package}/t{r.index}.out"
            if r.echo:
                out.append(f"build {target}: echocat {inputs}\n  tag = {r.tag}")
            else:
                out.append(f"build {target}: cat {inputs}")
    out.append("")
    return "\n".join(out)


def source_text(p: int, t: int) -> str:
    return f"source {t} of package {p}\n"


def generate(out: Path, packages: int, targets: int, seed: int = 0) -> list[list[Genrule]]:
    """Writes the workspace into `out` (created if missing); returns its genrules."""
    graph = plan(packages, targets, seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "WORKSPACE").write_text('workspace(name = "bench")\n')
    for p, rules in enumerate(graph):
        directory = out / f"pkg{p}"
        directory.mkdir(exist_ok=True)
        (directory / "BUILD").write_text(build_file(rules))
        for t in range(targets):
            (directory / f"src{t}.txt").write_text(source_text(p, t))
        for name, text in (("exists_test.sh", _EXISTS_SH), ("nonempty_test.sh", _NONEMPTY_SH)):
            script = directory / name
            script.write_text(text)
            os.chmod(script, 0o755)
    (out / "build.ninja").write_text(ninja_file(graph))
    return graph


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the workspace directory to write")
    parser.add_argument("--packages", type=int, required=True, metavar="P")
    parser.add_argument("--targets-per-package", type=int, default=10, metavar="T")
    parser.add_argument("--seed", type=int, default=0, metavar="S")
    args = parser.parse_args(argv)
    try:
        generate(args.out, args.packages, args.targets_per_package, args.seed)
    except ValueError as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
