"""The benchmark harness (bench/): the generated monorepo loads in bp and parses in ninja,
and the table prints what the numbers say. Runs no benchmark."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.gen_monorepo import generate, plan
from bench.table import (ROWS, Stat, format_growth, format_stat, format_table, goal_verdicts,
                         growth_exponent)


def _query(workspace: Path, text: str) -> list[str]:
    from buildpy.query.engine import evaluate
    from buildpy.query.syntax import parse_query
    from buildpy.query.uquery import TargetQueryEnvironment
    from buildpy.session import open_session

    session = open_session(str(workspace))
    env = TargetQueryEnvironment(session.loader, session.offset)
    result, errors = evaluate(env, parse_query(text))
    assert errors == []
    return sorted(env.label(node) for node in result)


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bench") / "ws"
    generate(root, packages=5, targets=3, seed=0)
    return root


def test_generated_workspace_lists_the_expected_labels(monorepo):
    expected = ["//pkg0:opt"] + [
        f"//pkg{p}:{name}" for p in range(5)
        for name in ("all", "exists_test", "nonempty_test", "t0", "t1", "t2")]
    assert _query(monorepo, "//...") == sorted(expected)


def test_every_genrule_reads_its_source_and_the_chain_below(monorepo):
    graph = plan(5, 3, seed=0)
    for rules in graph[1:]:
        for rule in rules:
            assert (rule.package - 1, rule.index) == rule.deps[0]
            assert 2 <= len(rule.deps) <= 3
            assert all(q < rule.package for q, _ in rule.deps)
    deps = _query(monorepo, "deps(//pkg4:t1, 1)")
    assert "//pkg4:src1.txt" in deps and "//pkg3:t1" in deps
    # the longest chain runs through every package
    assert "//pkg0:t1" in _query(monorepo, "deps(//pkg4:t1)")


def test_generator_is_deterministic_for_a_seed():
    assert plan(20, 4, seed=7) == plan(20, 4, seed=7)
    assert plan(20, 4, seed=7) != plan(20, 4, seed=8)


def test_one_genrule_selects_on_the_config_setting(monorepo):
    build = (monorepo / "pkg2" / "BUILD").read_text()
    assert '"//pkg0:opt":' in build and '"//conditions:default":' in build
    assert 'values = {"compilation_mode": "opt"}' in (monorepo / "pkg0" / "BUILD").read_text()


@pytest.mark.skipif(shutil.which("ninja") is None, reason="ninja is not installed")
def test_build_ninja_parses_and_has_one_edge_per_genrule(monorepo):
    done = subprocess.run(["ninja", "-C", str(monorepo), "-n"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "[15/15]" in done.stdout


def test_table_shows_medians_ranges_ratios_and_goals():
    results = {
        100: {
            "bp": {"full": Stat(3.0, 2.9, 3.5, 3), "noop": Stat(0.05, 0.04, 0.06, 3),
                   "rdeps": Stat(0.2, 0.2, 0.2, 3), "rss": Stat(100, 99, 101, 3, "MiB")},
            "ninja": {"full": Stat(1.5, 1.4, 1.6, 3), "noop": Stat(0.005, 0.004, 0.006, 3)},
            "bazel": {"full": Stat(30.0, 30.0, 30.0, 1), "noop": Stat(0.5, 0.4, 0.6, 3),
                      "rss": Stat(400, 390, 410, 3, "MiB")},
        }}
    table = format_table(results, ["ninja", "bazel", "copy"]).splitlines()
    assert table[0] == ("| P | measurement | bp | ninja | Bazel | bp / ninja | bp / Bazel "
                        "| goal met? |")
    assert table[2] == ("| 100 | `rdeps(//..., //pkg0:t0)` after loading | 0.200 s (0.200-0.200)"
                        " | - | - | - | - | < 0.5 s: yes |")
    assert table[3] == ("| 100 | full build -j2 | 3.00 s (2.90-3.50) | 1.50 s (1.40-1.60) "
                        "| 30.0 s (1 run) | 2.00x | 0.10x | <= 1.5x ninja: no |")
    assert table[4] == ("| 100 | no-op build | 50.0 ms (40.0-60.0) | 5.0 ms (4.0-6.0) "
                        "| 0.500 s (0.400-0.600) | 10.00x | 0.10x "
                        "| <= Bazel: yes; <= 5x ninja: no |")
    assert table[5] == ("| 100 | peak RSS | 100 MiB (99-101) | - | 400 MiB (390-410) | - "
                        "| 0.25x | < Bazel server: yes |")
    assert len(table) == 6   # rows nobody measured are left out


def test_stat_and_goal_edge_cases():
    assert Stat.of([3.0, 1.0, 2.0]) == Stat(2.0, 1.0, 3.0, 3)
    assert format_stat(Stat(0.05, 0.09, 0.2, 3)) == "50.0 ms (90.0 ms - 0.200 s)"
    assert format_stat(None) == "-"
    rss = next(r for r in ROWS if r.key == "rss")
    equal = {"bp": {"rss": Stat(5, 5, 5, 1, "MiB")}, "bazel": {"rss": Stat(5, 5, 5, 1, "MiB")}}
    assert goal_verdicts(rss, equal) == "< Bazel server: no"
    assert goal_verdicts(rss, {"bp": equal["bp"]}) == ""   # no peer, no verdict


def test_growth_table_fits_a_power_law_and_judges_the_scale_goals():
    def figures(full: float, noop: float, ninja_full: float) -> dict:
        return {"bp": {"full": Stat(full, full, full, 1), "noop": Stat(noop, noop, noop, 1)},
                "ninja": {"full": Stat(ninja_full, ninja_full, ninja_full, 1)}}

    results = {100: figures(2.0, 0.1, 1.0), 1000: figures(20.0, 0.5, 10.0),
               10000: figures(200.0, 2.5, 100.0)}
    assert growth_exponent([(100, 2.0), (1000, 20.0), (10000, 200.0)]) == pytest.approx(1.0)
    assert growth_exponent([(100, 1.0), (1000, 100.0)]) == pytest.approx(2.0)
    assert growth_exponent([(100, 1.0)]) is None
    table = format_growth(results, ["ninja"]).splitlines()
    assert table[0] == "| measurement | tool | P=100 | P=1000 | P=10000 | exponent | goal met? |"
    assert table[2] == ("| full build -j2 | bp | 2.00 s | 20.0 s | 200.0 s | 1.00 "
                        "| at most linear: yes; <= 1.6x ninja at P=10000: no |")
    assert table[3] == "| full build -j2 | ninja | 1.00 s | 10.0 s | 100.0 s | 1.00 | |"
    assert table[4] == ("| no-op build | bp | 0.100 s | 0.500 s | 2.50 s | 0.70 "
                        "| at most linear: yes; <= 3 s at P=10000: yes |")
    assert format_growth({100: results[100]}, ["ninja"]) == ""   # one size: no growth
