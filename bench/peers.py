"""Runs the experiments for bp and ninja on one generated workspace, returning Stats.

Each measure_* function gets a Lab (sizes, repetitions, a scratch directory, a log) and
generates a fresh workspace of its own; it knows the tool's commands and the order of
the experiments, and nothing about tables or the other tools. The process and timing
helpers here are shared with bazel.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.gen_monorepo import generate
from bench.table import Stat, format_stat

TIME = "/usr/bin/time"   # GNU time: `-v` reports the maximum resident set size


class BenchError(Exception):
    """A tool failed or is missing; the message says which command and why."""


@dataclass(frozen=True)
class Lab:
    """What every experiment needs: sizes, repetitions, a scratch directory, a log."""

    packages: int
    targets: int
    seed: int
    runs: int
    scratch: Path
    say: Callable[[str], None]

    def workspace(self, tool: str) -> Path:
        """A freshly generated workspace for one tool (the tools never share outputs)."""
        path = self.scratch / f"ws-{tool}"
        if path.exists():
            remove(path)
        generate(path, self.packages, self.targets, self.seed)
        return path

    @property
    def leaf(self) -> str:
        return f"pkg{self.packages - 1}/src0.txt"

    @property
    def root(self) -> str:
        return "pkg0/src0.txt"

    @property
    def build_file(self) -> str:
        """The BUILD file whose genrule t1 the BUILD-edit experiments change: the leaf
        package's (as the leaf source's, nothing else reads what t1 makes)."""
        return f"pkg{self.packages - 1}/BUILD"


def edited_build(text: str, unique: str) -> str:
    """`text` (a generated BUILD file) with one attribute of one genrule changed: t1's
    command gains `; true <unique>` (a new command: its one action runs again)."""
    start = text.index('name = "t1",')
    line = text.index("    cmd = ", start)
    end = text.index("\n", line)
    quote = text.rindex('"', line, end)   # (a select()'s cmd: its last branch)
    return text[:quote] + f"; true {unique}" + text[quote:]


def remove(path: Path) -> None:
    """rm -rf, also through read-only directories (Bazel's output bases have them)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    if not path.exists():
        return

    def retry_writable(function, name, _error) -> None:
        os.chmod(os.path.dirname(name), 0o755)
        if os.path.isdir(name) and not os.path.islink(name):
            os.chmod(name, 0o755)
        function(name)

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry_writable)
    else:
        shutil.rmtree(path, onerror=retry_writable)


def run(argv: list[str], cwd: Path, env: dict | None = None,
        stdout=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    """Runs a command to completion; raises BenchError with its stderr tail on failure."""
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE,
                              check=False)
    except OSError as error:
        raise BenchError(f"cannot run {argv[0]}: {error.strerror}") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-15:]
        raise BenchError(f"`{' '.join(argv)}` in {cwd} exited with {done.returncode}:\n  " +
                         "\n  ".join(tail))
    return done


def timed(argv: list[str], cwd: Path, env: dict | None = None) -> float:
    """Wall-clock seconds of one successful run of the command."""
    return timed_output(argv, cwd, env)[0]


def timed_output(argv: list[str], cwd: Path, env: dict | None = None) -> tuple[float, str]:
    """Wall-clock seconds of one successful run, and what it wrote to stderr."""
    start = time.perf_counter()
    done = run(argv, cwd, env)
    return time.perf_counter() - start, done.stderr.decode(errors="replace")


def timed_rss(argv: list[str], cwd: Path, env: dict | None, scratch: Path
              ) -> tuple[float, float | None]:
    """Seconds and peak RSS (MiB, of the largest process in the tree) of one run."""
    if not os.access(TIME, os.X_OK):
        return timed(argv, cwd, env), None
    report = scratch / "time-v.txt"
    seconds = timed([TIME, "-v", "-o", str(report)] + argv, cwd, env)
    for line in report.read_text().splitlines():
        if "Maximum resident set size" in line:
            return seconds, int(line.rsplit(":", 1)[1]) / 1024
    return seconds, None


def edit(path: Path, text: str, scratch: Path) -> None:
    """Writes `text` so that the file's mtime is newer than anything built before.

    ninja compares mtimes, and this file system's clock is coarse: a file written in the
    same tick as an output would look unchanged to ninja. A stamp file written first
    marks "now"; the edit is repeated until its mtime is past the stamp's.
    """
    stamp = scratch / "stamp"
    stamp.write_text("")
    reference = stamp.stat().st_mtime_ns
    while True:
        path.write_text(text)
        if path.stat().st_mtime_ns > reference:
            return
        time.sleep(0.002)


def stats(samples: list[float], unit: str = "s") -> Stat:
    return Stat.of(samples, unit)


# A build for the experiments: returns its seconds and a summary of what it did.
Build = Callable[[], tuple[float, str]]


def repeated(lab: Lab, name: str, build: Build) -> Stat:
    """Times `build` lab.runs times in a row."""
    samples = []
    for i in range(lab.runs):
        seconds, summary = build()
        lab.say(f"  {name} {i + 1}/{lab.runs}: {seconds:.3f} s {summary}")
        samples.append(seconds)
    return stats(samples)


def summarize_full(figures: dict, samples: list, rss: list) -> None:
    """Record the full-build times and, when measured, the peak RSS."""
    figures["full"] = stats(samples)
    if rss:
        figures["rss"] = stats(rss, "MiB")


def incremental(lab, figures: dict, tool: str, workspace, build) -> None:
    """The no-op build and the leaf and root rebuilds, with `build` as the command."""
    figures["noop"] = repeated(lab, f"{tool} no-op build", build)
    figures["leaf"] = changed_rebuilds(lab, f"{tool} leaf rebuild", workspace, lab.leaf, build)
    figures["root"] = changed_rebuilds(lab, f"{tool} root rebuild", workspace, lab.root, build)


def edited_source(text: str, i: int) -> str:
    """A source's text, changed for run `i` (a new content every time)."""
    return f"{text.rstrip()} edited {i} {time.time_ns()}\n"


def edited_genrule(text: str, i: int) -> str:
    """A generated BUILD file's text with genrule t1's command changed for run `i`."""
    return edited_build(text, f"{i}{time.time_ns()}")


def changed_rebuilds(lab: Lab, name: str, workspace: Path, source: str, build: Build,
                     change: Callable[[str, int], str] = edited_source) -> Stat:
    """Times `build` after changing `source` (its text by `change`); restores it (and
    rebuilds, untimed) after."""
    path = workspace / source
    original = path.read_text()
    samples = []
    try:
        for i in range(lab.runs):
            edit(path, change(original, i), lab.scratch)
            seconds, summary = build()
            lab.say(f"  {name} {i + 1}/{lab.runs}: {seconds:.3f} s {summary}")
            samples.append(seconds)
            edit(path, original, lab.scratch)
            build()
    finally:
        if path.read_text() != original:
            path.write_text(original)
    return stats(samples)


def build_edits(lab: Lab, name: str, workspace: Path, build: Build) -> Stat:
    """Times `build` after changing one genrule's attribute in a BUILD file."""
    return changed_rebuilds(lab, name, workspace, lab.build_file, build, edited_genrule)


class _Watch:
    """A `bp build --watch` process and the lines it writes to stderr."""

    def __init__(self, argv: list[str], cwd: Path, env: dict):
        import queue
        import threading

        self.lines: queue.Queue[str] = queue.Queue()
        self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)

        def read() -> None:
            for line in self.process.stderr:
                self.lines.put(line)
            self.lines.put("")   # the end

        threading.Thread(target=read, daemon=True).start()

    def next_summary(self, timeout: float) -> tuple[float, str]:
        """When the next `[watch] ...: N actions run, ...` line came, and the line;
        returns once bp watches again (its `[watch] Watching` line)."""
        summary = self._line(lambda line: " run, " in line, timeout)
        self._line(lambda line: line.startswith("[watch] Watching"), timeout)
        return summary

    def _line(self, wanted, timeout: float) -> tuple[float, str]:
        import queue

        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(f"no watch iteration ended within {timeout:.0f} s") from None
            if not line:
                raise BenchError(f"bp --watch exited with {self.process.wait()}")
            if line.startswith("[watch]") and wanted(line):
                return time.perf_counter(), line.strip()

    def stop(self) -> None:
        import signal

        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def watch_rebuilds(lab: Lab, argv: list[str], workspace: Path, env: dict
                   ) -> dict[str, Stat]:
    """bp --watch: seconds from an edit (the file written) to the end of the iteration
    it starts, for a leaf source and for a BUILD file; each edit undone after, untimed."""
    watch = _Watch(argv, workspace, env)
    try:
        _, line = watch.next_summary(3600)
        lab.say(f"  bp --watch first build: {line}")
        figures = {}
        for key, relative, change in (("watch_leaf", lab.leaf, edited_source),
                                      ("watch_build", lab.build_file, edited_genrule)):
            path = workspace / relative
            original = path.read_text()
            samples = []
            try:
                for i in range(lab.runs):
                    start = time.perf_counter()
                    edit(path, change(original, i), lab.scratch)
                    end, line = watch.next_summary(600)
                    samples.append(end - start)
                    lab.say(f"  bp {key} {i + 1}/{lab.runs}: {end - start:.3f} s {line}")
                    edit(path, original, lab.scratch)
                    watch.next_summary(600)
            finally:
                if path.read_text() != original:
                    path.write_text(original)
            figures[key] = stats(samples)
        return figures
    finally:
        watch.stop()


def _count(workspace: Path, output_dir: str) -> int:
    return sum(len(files) for _, _, files in os.walk(workspace / output_dir))


# ---- bp --------------------------------------------------------------------------------

def _bp_summary(stderr: str) -> str:
    """bp's closing `INFO: N actions: X executed, Y cache hits` line."""
    lines = [line for line in stderr.splitlines() if line.startswith("INFO:")]
    return f"({lines[-1][6:]})" if lines else ""


def measure_bp(lab: Lab, bp: str, python: str) -> dict[str, dict[str, Stat]]:
    """bp's rows, plus the `copy` figure (cp -r of bp's outputs) for the cached rebuild."""
    workspace = lab.workspace("bp")
    env = dict(os.environ, XDG_CACHE_HOME=str(lab.scratch / "bp-xdg"))
    base = [bp, "--nohome_rc"]
    figures: dict[str, Stat] = {}

    samples = []
    for i in range(lab.runs):   # a fresh process, and a fresh XDG cache, each time
        env_i = dict(env, XDG_CACHE_HOME=str(lab.scratch / f"bp-xdg-{i}"))
        samples.append(timed(base + ["query", "//..."], workspace, env_i))
    figures["cold_query"] = stats(samples)
    lab.say(f"bp cold query //...: {format_stat(figures['cold_query'])}")

    probe = Path(__file__).with_name("query_probe.py")
    done = run([python, str(probe), str(workspace), "rdeps(//..., //pkg0:t0)", str(lab.runs)],
               workspace, env, stdout=subprocess.PIPE)
    answer = json.loads(done.stdout)
    figures["rdeps"] = stats(answer["times"])
    lab.say(f"bp rdeps after loading: {format_stat(figures['rdeps'])} (the first evaluation, "
            f"which loaded, took {answer['first']:.2f} s; {answer['size']} targets)")

    cache = lab.scratch / "bp-cache"
    command = base + ["build", "//...", "-j2", "--curses=no", "--color=no",
                      f"--disk_cache={cache}"]

    def build() -> tuple[float, str]:
        seconds, stderr = timed_output(command, workspace, env)
        return seconds, _bp_summary(stderr)

    def clean() -> None:   # (and the analysis server stopped, as Bazel's is)
        run(base + ["shutdown"], workspace, env)
        remove(workspace / "bp-out")
        remove(workspace / "bp-bin")

    samples, rss = [], []
    for i in range(lab.runs):   # from clean, with an empty cache
        clean()
        remove(cache)
        seconds, peak = timed_rss(command, workspace, env, lab.scratch)
        lab.say(f"  bp full build {i + 1}/{lab.runs}: {seconds:.2f} s, "
                f"peak RSS {peak or 0:.0f} MiB")
        samples.append(seconds)
        if peak is not None:
            rss.append(peak)
    summarize_full(figures, samples, rss)
    lab.say(f"bp full build: {format_stat(figures['full'])} "
            f"({_count(workspace, 'bp-out')} files in bp-out)")
    incremental(lab, figures, "bp", workspace, build)
    figures["build_edit"] = build_edits(lab, "bp BUILD edit (fresh process)", workspace, build)
    figures.update(watch_rebuilds(lab, command + ["--watch"], workspace, env))

    copies, samples = [], []
    saved = lab.scratch / "bp-out-saved"
    remove(saved)
    run(["cp", "-r", str(workspace / "bp-out"), str(saved)], lab.scratch)
    last = workspace / "bp-bin" / f"pkg{lab.packages - 1}" / f"t{lab.targets - 1}.out"

    def by_copy() -> None:   # bp-out restored by copying a saved copy of it
        clean()
        copies.append(timed(["cp", "-r", str(saved), str(workspace / "bp-out")], lab.scratch))

    def by_bp() -> None:     # bp-out restored by bp from its cache
        clean()
        seconds, summary = build()
        if not last.exists():
            raise BenchError(f"bp built nothing at {last}")
        samples.append(seconds)
        lab.say(f"  bp cached rebuild {len(samples)}/{lab.runs}: {seconds:.2f} s {summary}")

    for i in range(lab.runs):   # both right after removing bp-out; which goes first alternates
        for step in ((by_copy, by_bp) if i % 2 == 0 else (by_bp, by_copy)):
            step()
        lab.say(f"  cp -r {copies[-1]:.2f} s")
    remove(saved)
    figures["cached"] = stats(samples)
    clean()
    remove(cache)
    return {"bp": figures, "copy": {"cached": stats(copies)}}


# ---- ninja -----------------------------------------------------------------------------

def measure_ninja(lab: Lab, ninja: str) -> dict[str, dict[str, Stat]]:
    workspace = lab.workspace("ninja")
    figures: dict[str, Stat] = {}

    def build() -> tuple[float, str]:
        start = time.perf_counter()
        done = run([ninja, "-j2"], workspace, stdout=subprocess.PIPE)
        seconds = time.perf_counter() - start
        lines = done.stdout.decode(errors="replace").strip().splitlines()
        if not lines or lines[-1].startswith("ninja: no work"):
            return seconds, "(no work to do)"
        return seconds, f"({lines[-1].split(' ', 1)[0]} edges)"

    def clean() -> None:
        remove(workspace / "ninja-out")
        for name in (".ninja_log", ".ninja_deps"):
            remove(workspace / name)

    samples, rss = [], []
    for _ in range(lab.runs):
        clean()
        seconds, peak = timed_rss([ninja, "-j2"], workspace, None, lab.scratch)
        samples.append(seconds)
        if peak is not None:
            rss.append(peak)
    summarize_full(figures, samples, rss)
    lab.say(f"ninja full build: {format_stat(figures['full'])} "
            f"({_count(workspace, 'ninja-out')} files in ninja-out)")
    incremental(lab, figures, "ninja", workspace, build)
    expected = workspace / "ninja-out" / f"pkg{lab.packages - 1}" / f"t{lab.targets - 1}.out"
    if not expected.exists():
        raise BenchError(f"ninja built nothing at {expected}")
    clean()
    return {"ninja": figures}
