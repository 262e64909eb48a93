"""The benchmark's rows, goals and Markdown table: numbers in, text out.

Knows nothing about how a figure was measured or which tools are installed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Stat:
    """A figure measured `runs` times: its median, minimum and maximum."""

    median: float
    low: float
    high: float
    runs: int
    unit: str = "s"          # "s" (seconds) or "MiB"

    @staticmethod
    def of(samples: list[float] | tuple[float, ...], unit: str = "s") -> Stat:
        if not samples:
            raise ValueError("a Stat needs at least one sample")
        return Stat(statistics.median(samples), min(samples), max(samples), len(samples),
                    unit)


@dataclass(frozen=True)
class Goal:
    """bp's median must be at most `factor` times the peer's (or `factor` itself if no
    peer); strictly below it when `strict`."""

    peer: str | None
    factor: float
    text: str
    strict: bool = False


@dataclass(frozen=True)
class Row:
    key: str
    title: str
    goals: tuple[Goal, ...] = ()


ROWS = (
    Row("cold_query", "cold `query //...`", (Goal("bazel", 0.5, "<= 0.5x Bazel"),)),
    Row("rdeps", "`rdeps(//..., //pkg0:t0)` after loading",
        (Goal(None, 0.5, "< 0.5 s", strict=True),)),
    Row("full", "full build -j2", (Goal("ninja", 1.5, "<= 1.5x ninja"),)),
    Row("noop", "no-op build",
        (Goal("bazel", 1.0, "<= Bazel"), Goal("ninja", 5.0, "<= 5x ninja"))),
    Row("leaf", "rebuild, one leaf source changed",
        (Goal("bazel", 1.0, "<= Bazel"), Goal("ninja", 5.0, "<= 5x ninja"))),
    Row("root", "rebuild, one root source changed"),
    Row("build_edit", "rebuild, one genrule attribute changed in a BUILD file",
        (Goal(None, 1.5, "<= 1.5 s"),)),
    Row("watch_leaf", "watch mode: leaf source edit to build done (Bazel: warm rebuild)"),
    Row("watch_build", "watch mode: BUILD edit to build done (Bazel: warm rebuild)"),
    Row("cached", "fully cached rebuild (bp-out removed)", (Goal("copy", 2.0, "<= 2x cp -r"),)),
    Row("rss", "peak RSS", (Goal("bazel", 1.0, "< Bazel server", strict=True),)),
)

PEER_NAMES = {"bp": "bp", "ninja": "ninja", "bazel": "Bazel", "copy": "cp -r"}

# results[size][tool][row key] -> Stat; tool is "bp" or a peer
Results = dict[int, dict[str, dict[str, Stat]]]


def format_value(value: float, unit: str) -> str:
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if value < 0.1:
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value:.3f} s"
    if value < 10:
        return f"{value:.2f} s"
    return f"{value:.1f} s"


def format_stat(stat: Stat | None) -> str:
    if stat is None:
        return "-"
    text = format_value(stat.median, stat.unit)
    if stat.runs == 1:
        return f"{text} (1 run)"
    low, high = format_value(stat.low, stat.unit), format_value(stat.high, stat.unit)
    if low.split()[1] == high.split()[1] == text.split()[1]:   # one unit: say it once
        return f"{text} ({low.split()[0]}-{high.split()[0]})"
    return f"{text} ({low} - {high})"


def ratio(bp: Stat | None, peer: Stat | None) -> float | None:
    if bp is None or peer is None or peer.median <= 0:
        return None
    return bp.median / peer.median


def goal_verdicts(row: Row, figures: dict[str, dict[str, Stat]]) -> str:
    """'<= 1.5x ninja: no; ...' for the goals whose figures were measured."""
    bp = figures.get("bp", {}).get(row.key)
    parts = []
    for goal in row.goals:
        if bp is None:
            continue
        if goal.peer is None:
            value = bp.median
        else:
            value = ratio(bp, figures.get(goal.peer, {}).get(row.key))
            if value is None:
                continue
        met = value < goal.factor if goal.strict else value <= goal.factor
        parts.append(f"{goal.text}: {'yes' if met else 'no'}")
    return "; ".join(parts)


def format_table(results: Results, peers: list[str]) -> str:
    """The Markdown table: one line per size and row, bp's figure as a ratio to each peer."""
    shown = [p for p in peers if any(p in tools for tools in results.values())]
    header = ["P", "measurement", "bp"] + [PEER_NAMES.get(p, p) for p in shown] + \
             [f"bp / {PEER_NAMES.get(p, p)}" for p in shown] + ["goal met?"]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if i != 1 and i != len(header) - 1 else "---"
                            for i in range(len(header))) + "|"]
    for size in sorted(results):
        figures = results[size]
        for row in ROWS:
            cells = [figures.get(tool, {}).get(row.key) for tool in ["bp"] + shown]
            if all(c is None for c in cells):
                continue
            bp = cells[0]
            ratios = []
            for peer, stat in zip(shown, cells[1:]):
                r = ratio(bp, stat)
                ratios.append("-" if r is None else f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x")
            line = [str(size), row.title] + [format_stat(c) for c in cells] + ratios + \
                   [goal_verdicts(row, figures)]
            lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines) + "\n"


# At the largest size (P=10,000), issue 21's absolute bounds: (peer or None, factor,
# text); every bp figure must also grow at most linearly with P
SCALE_SIZE = 10000
SCALE_GOALS = {
    "cold_query": (None, 12.0, "<= 12 s"),
    "noop": (None, 3.0, "<= 3 s"),
    "rss": (None, 3 * 1024, "<= 3 GiB"),
    "full": ("ninja", 1.6, "<= 1.6x ninja"),
}


def growth_exponent(points: list[tuple[int, float]]) -> float | None:
    """The exponent k of the power law value = c * P^k that fits (P, value) best (least
    squares on logarithms); None with fewer than two sizes."""
    points = [(p, v) for p, v in points if p > 0 and v > 0]
    if len({p for p, _ in points}) < 2:
        return None
    xs = [math.log(p) for p, _ in points]
    ys = [math.log(v) for _, v in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / \
        sum((x - mx) ** 2 for x in xs)


def format_growth(results: Results, peers: list[str]) -> str:
    """How each figure grows with P, as a Markdown table (empty with one size): its
    median at each size, the exponent of the power law that fits them, and for bp the
    scale goals (at most linear; the bounds at P=10,000)."""
    sizes = sorted(results)
    if len(sizes) < 2:
        return ""
    lines = ["| measurement | tool | " + " | ".join(f"P={s}" for s in sizes) +
             " | exponent | goal met? |",
             "|---|---|" + "---:|" * len(sizes) + "---:|---|"]
    for row in ROWS:
        for tool in ["bp"] + peers:
            stats = [results[s].get(tool, {}).get(row.key) for s in sizes]
            points = [(s, stat.median) for s, stat in zip(sizes, stats) if stat is not None]
            exponent = growth_exponent(points)
            if exponent is None:
                continue
            verdicts = []
            if tool == "bp":
                verdicts.append(f"at most linear: {'yes' if exponent <= 1.0 else 'no'}")
                verdicts += _scale_verdicts(row, results.get(SCALE_SIZE, {}))
            cells = [format_value(stat.median, stat.unit) if stat is not None else "-"
                     for stat in stats]
            lines.append(f"| {row.title} | {PEER_NAMES.get(tool, tool)} | " +
                         " | ".join(cells) + f" | {exponent:.2f} | " +
                         "; ".join(verdicts) + (" |" if verdicts else "|"))
    return "\n".join(lines) + "\n"


def _scale_verdicts(row: Row, figures: dict[str, dict[str, Stat]]) -> list[str]:
    goal = SCALE_GOALS.get(row.key)
    bp = figures.get("bp", {}).get(row.key)
    if goal is None or bp is None:
        return []
    peer, factor, text = goal
    value = bp.median if peer is None else ratio(bp, figures.get(peer, {}).get(row.key))
    if value is None:
        return []
    return [f"{text} at P={SCALE_SIZE}: {'yes' if value <= factor else 'no'}"]
