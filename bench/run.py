"""Benchmarks bp against ninja and Bazel 4.2 on generated monorepos (docs/benchmarks.md).

    python bench/run.py [--sizes 100,1000] [--runs N] [--peers bp,ninja,bazel] [--out FILE.md]

For each size P it generates fresh workspaces (bench/gen_monorepo.py) in a temporary
directory, runs each tool's experiments there, and prints a Markdown table of medians
(min-max) with bp's figures as ratios to each peer. Installs nothing: a peer that is
missing is skipped with a note. The orchestrator; the experiments live in peers.py and
bazel.py, the table in table.py.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bazel import measure_bazel, prepare_repositories
from bench.bazel import version as bazel_version
from bench.peers import BenchError, Lab, measure_bp, measure_ninja, remove
from bench.table import Results, Stat, format_growth, format_table

TOOLS = ("bp", "ninja", "bazel")


def _find_bp() -> str | None:
    beside = Path(sys.executable).with_name("bp")
    return str(beside) if beside.exists() else shutil.which("bp")


def _python_of(script: str) -> str:
    """The interpreter of a console script (its #! line), which can import buildpy."""
    with open(script, "rb") as f:
        first = f.readline().decode(errors="replace").strip()
    if first.startswith("#!") and "python" in first:
        return first[2:].strip().split()[0]
    return sys.executable


def _output(argv: list[str]) -> str:
    """What a command prints, run from / (so that `python -c` does not import from here)."""
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=False, cwd="/")
    except OSError:
        return "?"
    return done.stdout.strip()


def _bp_source(python: str) -> Path:
    """The directory of the `buildpy` package that `python` imports."""
    return Path(_output([python, "-c", "import buildpy; print(buildpy.__file__)"])).parent


def byte_compile(python: str, notes: list[str]) -> None:
    """Compile bp's modules to bytecode once, as `pip install` does. Run from a source
    tree with PYTHONDONTWRITEBYTECODE set (as on this machine), every bp process would
    otherwise compile them again: about 50 ms of each start."""
    source = _bp_source(python)
    done = subprocess.run([python, "-m", "compileall", "-q", str(source)], cwd="/",
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        notes.append(f"bp's modules could not be byte-compiled in {source}")


def machine(tools: dict[str, str]) -> list[str]:
    """Lines describing the machine and the tools' versions."""
    memory = next((line.split()[1] for line in _output(["free", "-h"]).splitlines()
                   if line.startswith("Mem:")), "?")
    lines = [f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
             (f"machine: {os.cpu_count()} cores (`nproc`: {_output(['nproc'])}), "
              f"{memory} memory (`free -h`), {platform.system()} {platform.release()}"),
             f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
             f"`python3 --version`: {_output(['python3', '--version'])}"]
    if "bp" in tools:
        python = _python_of(tools["bp"])
        source = _bp_source(python)
        commit = _output(["git", "-C", str(source), "rev-parse", "--short", "HEAD"])
        changed = _output(["git", "-C", str(source), "status", "--porcelain", "--", "."])
        where = f"{source}" + (f", git {commit}" if " " not in commit else "") + \
            (" with uncommitted changes" if changed and " " not in commit else "")
        lines.append(f"bp: {_output([tools['bp'], '--version'])} "
                     f"(Python {_output([python, '--version']).split()[-1]}; code in {where})")
    if "ninja" in tools:
        lines.append(f"ninja: {_output([tools['ninja'], '--version'])}")
    if "bazel" in tools:
        lines.append(f"Bazel: {bazel_version(tools['bazel'])}")
    return lines


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000",
                        help="comma-separated package counts P (default: 100,1000)")
    parser.add_argument("--targets-per-package", type=int, default=10, metavar="T")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each figure")
    parser.add_argument("--bazel-runs", type=int, default=None, metavar="N",
                        help="repetitions for Bazel (default: --runs); a cold Bazel build "
                             "of P=1000 takes minutes")
    parser.add_argument("--bazel-sizes", default=None, metavar="P,...",
                        help="the sizes at which Bazel is measured (default: those up to "
                             "1000)")
    parser.add_argument("--peers", default="bp,ninja,bazel",
                        help="which tools to measure, among bp, ninja, bazel")
    parser.add_argument("--bp", default=None, help="the bp executable (default: the venv's)")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--note", action="append", default=[],
                        help="a line to add to the report's notes (repeatable)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s]
        args.bazel_sizes = [s for s in args.sizes if s <= 1000] if args.bazel_sizes is None \
            else [int(s) for s in args.bazel_sizes.split(",") if s]
    except ValueError:
        parser.error("--sizes and --bazel-sizes: expected numbers like 100,1000")
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in args.peers if p not in TOOLS]
    if unknown:
        parser.error(f"--peers: unknown {', '.join(unknown)} (choose from {', '.join(TOOLS)})")
    if args.runs < 1 or (args.bazel_runs is not None and args.bazel_runs < 1):
        parser.error("--runs and --bazel-runs must be at least 1")
    return args


def _find_tools(args: argparse.Namespace, notes: list[str]) -> dict[str, str]:
    found = {}
    wanted = {"bp": args.bp or _find_bp(), "ninja": shutil.which("ninja"),
              "bazel": shutil.which("bazel")}
    install = {"bp": "pip install -e . in a venv",
               "ninja": "apt-get install ninja-build",
               "bazel": "apt-get install bazel-bootstrap, see docs/bazel-peer.md"}
    for tool in args.peers:
        if wanted[tool]:
            found[tool] = wanted[tool]
        else:
            notes.append(f"{tool} skipped: not installed ({install[tool]})")
    return found


def report(results: Results, peers: list[str], info: list[str], notes: list[str]) -> str:
    text = "".join(f"- {line}\n" for line in info)
    text += "".join(f"- note: {note}\n" for note in notes)
    columns = [p for p in peers if p != "bp"] + (["copy"] if "bp" in peers else [])
    growth = format_growth(results, [p for p in peers if p != "bp"])
    return text + "\n" + format_table(results, columns) + (
        "\nHow each figure grows with P (the exponent of the power law that fits):\n\n" +
        growth if growth else "")


def _measure(tool: str, lab: Lab, tools: dict[str, str], overrides: list[str] | None
             ) -> dict[str, dict[str, Stat]]:
    if tool == "bp":
        return measure_bp(lab, tools["bp"], _python_of(tools["bp"]))
    if tool == "ninja":
        return measure_ninja(lab, tools["ninja"])
    return measure_bazel(lab, tools["bazel"], overrides or [])


def _say(size: int):
    return lambda text: print(f"[P={size}] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    notes: list[str] = list(args.note)
    tools = _find_tools(args, notes)
    if "bp" in tools:
        byte_compile(_python_of(tools["bp"]), notes)
    info = machine(tools)
    for line in info + notes:
        print(f"# {line}", file=sys.stderr)
    scratch = Path(tempfile.mkdtemp(prefix="bp-bench-"))
    results: Results = {}
    failures = 0
    overrides = None
    try:
        if "bazel" in tools:
            try:
                overrides = prepare_repositories(scratch / "repos")
            except BenchError as error:
                notes.append(f"bazel skipped: {error}")
                del tools["bazel"]
        if "bazel" in tools and (args.bazel_runs or args.runs) != args.runs:
            notes.append(f"Bazel figures are of {args.bazel_runs} run(s), the others of "
                         f"{args.runs}")
        for size in args.sizes:
            results[size] = {}
            for tool in ("bp", "ninja", "bazel"):
                if tool not in tools:
                    continue
                if tool == "bazel" and size not in args.bazel_sizes:
                    notes.append(f"P={size}: Bazel not measured (see --bazel-sizes)")
                    continue
                runs = (args.bazel_runs or args.runs) if tool == "bazel" else args.runs
                directory = scratch / f"p{size}"
                directory.mkdir(exist_ok=True)
                lab = Lab(size, args.targets_per_package, args.seed, runs, directory,
                          _say(size))
                try:
                    figures = _measure(tool, lab, tools, overrides)
                except BenchError as error:
                    failures += 1
                    notes.append(f"P={size}: {tool} failed: {error}")
                    print(f"ERROR: {error}", file=sys.stderr)
                    continue
                results[size].update(figures)
                remove(directory / f"ws-{tool}")
    except KeyboardInterrupt:
        notes.append("interrupted: the table holds what was measured until then")
    finally:
        if args.keep:
            print(f"# kept {scratch}", file=sys.stderr)
        else:
            remove(scratch)
    info.append("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    text = report(results, args.peers, info, notes)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
