"""Runs the experiments for Bazel 4.2, offline, as docs/bazel-peer.md describes.

Prepares the three stand-in repositories (rules_cc, rules_java, remote_coverage_tools),
gives every experiment a fresh --output_base and shuts its server down afterwards. Knows
nothing about bp, ninja or tables.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from bench.peers import (
    BenchError,
    Lab,
    build_edits,
    changed_rebuilds,
    remove,
    repeated,
    run,
    stats,
    summarize_full,
    timed,
    timed_output,
)
from bench.table import Stat, format_stat

_RULES_CC = ("cc_library", "cc_binary", "cc_test", "cc_toolchain", "cc_toolchain_suite",
             "cc_proto_library", "objc_library")
_COVERAGE_BUILD = """\
package(default_visibility = ["//visibility:public"])

filegroup(name = "coverage_report_generator")

filegroup(name = "lcov_merger")
"""
_INSTALLED_RULES_JAVA = Path("/usr/share/bazel/rules/java")


def prepare_repositories(directory: Path) -> list[str]:
    """The --override_repository flags for offline use; builds the stand-ins in `directory`.

    rules_java comes from $RULES_JAVA_DIR, the installed `bazel-rules-java`, or Debian's
    package unpacked with `apt-get download` + `dpkg -x` (nothing is installed).
    """
    rules_cc = directory / "rules_cc"
    (rules_cc / "cc").mkdir(parents=True, exist_ok=True)
    for name in ("WORKSPACE", "BUILD", "cc/BUILD"):
        (rules_cc / name).write_text("")
    (rules_cc / "cc" / "defs.bzl").write_text("".join(
        f"def {rule}(**kwargs):\n    native.{rule}(**kwargs)\n\n" for rule in _RULES_CC))
    coverage = directory / "remote_coverage_tools"
    coverage.mkdir(exist_ok=True)
    (coverage / "WORKSPACE").write_text("")
    (coverage / "BUILD").write_text(_COVERAGE_BUILD)
    return [f"--override_repository=rules_cc={rules_cc}",
            f"--override_repository=rules_java={_rules_java(directory)}",
            f"--override_repository=remote_coverage_tools={coverage}"]


def _rules_java(directory: Path) -> Path:
    if os.environ.get("RULES_JAVA_DIR"):
        found = Path(os.environ["RULES_JAVA_DIR"])
    elif (_INSTALLED_RULES_JAVA / "java" / "defs.bzl").exists():
        found = _INSTALLED_RULES_JAVA
    else:
        download = directory / "rules_java_deb"
        download.mkdir(exist_ok=True)
        fetched = subprocess.run(["apt-get", "download", "bazel-rules-java"], cwd=download,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        debs = sorted(download.glob("bazel-rules-java_*.deb"))
        if fetched.returncode != 0 or not debs:
            raise BenchError("cannot fetch Debian's bazel-rules-java (apt-get download "
                             "bazel-rules-java); set RULES_JAVA_DIR to an unpacked copy")
        run(["dpkg", "-x", str(debs[-1]), str(download / "x")], download)
        found = download / "x" / "usr" / "share" / "bazel" / "rules" / "java"
    if not (found / "java" / "defs.bzl").exists():
        raise BenchError(f"no java/defs.bzl in {found} (rules_java)")
    return found


def version(bazel: str) -> str:
    """Debian's build says `Build label: no_version`; the package knows better."""
    done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "bazel-bootstrap"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          check=False)
    if done.returncode == 0:
        return f"bazel-bootstrap {done.stdout}"
    return shutil.which(bazel) or bazel


class _Server:
    """One Bazel server on its own output base; `close` shuts it down and deletes the base."""

    def __init__(self, bazel: str, output_base: Path, workspace: Path, overrides: list[str]):
        remove(output_base)
        self.output_base = output_base
        self.workspace = workspace
        self.startup = [bazel, f"--output_base={output_base}", "--nohome_rc",
                        "--noworkspace_rc", "--max_idle_secs=3600"]
        self.common = overrides + ["--color=no", "--curses=no"]
        self.build_flags = self.common + ["--jobs=2", "--nosandbox_debug", "--symlink_prefix=/"]

    def query(self, expression: str) -> float:
        return timed(self.startup + ["query"] + self.common + [expression], self.workspace)

    def build(self) -> tuple[float, str]:
        """Seconds of `bazel build //...`, and its `INFO: N processes: ...` line."""
        seconds, stderr = timed_output(self.startup + ["build"] + self.build_flags + ["//..."],
                                       self.workspace)
        lines = [line for line in stderr.splitlines() if re.search(r"\d+ process", line)]
        return seconds, f"({lines[-1][6:]})" if lines else ""

    def rss(self) -> float | None:
        """The server's resident set size in MiB, from `ps`."""
        pid_file = self.output_base / "server" / "server.pid.txt"
        if not pid_file.exists():
            return None
        done = subprocess.run(["ps", "-o", "rss=", "-p", pid_file.read_text().strip()],
                              stdout=subprocess.PIPE, text=True, check=False)
        return int(done.stdout) / 1024 if done.returncode == 0 and done.stdout.strip() else None

    def close(self) -> None:
        if self.output_base.exists():
            subprocess.run(self.startup + ["shutdown"], cwd=self.workspace,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            remove(self.output_base)


def measure_bazel(lab: Lab, bazel: str, overrides: list[str]) -> dict[str, dict[str, Stat]]:
    """Cold query and cold builds on fresh output bases; the rest on the last warm server."""
    workspace = lab.workspace("bazel")
    figures: dict[str, Stat] = {}

    samples = []
    for i in range(lab.runs):
        server = _Server(bazel, lab.scratch / f"bazel-q{i}", workspace, overrides)
        try:
            samples.append(server.query("//..."))
        finally:
            server.close()
    figures["cold_query"] = stats(samples)
    lab.say(f"Bazel cold query //...: {format_stat(figures['cold_query'])}")

    samples, rss = [], []
    server = None
    try:
        for i in range(lab.runs):
            if server is not None:
                server.close()
            server = _Server(bazel, lab.scratch / f"bazel-b{i}", workspace, overrides)
            seconds, summary = server.build()
            peak = server.rss()
            lab.say(f"  Bazel cold build {i + 1}/{lab.runs}: {seconds:.2f} s {summary}, "
                    f"server RSS {peak or 0:.0f} MiB")
            samples.append(seconds)
            if peak is not None:
                rss.append(peak)
        summarize_full(figures, samples, rss)
        lab.say(f"Bazel cold full build: {format_stat(figures['full'])}")
        figures["noop"] = repeated(lab, "Bazel warm no-op build", server.build)
        figures["leaf"] = changed_rebuilds(lab, "Bazel warm leaf rebuild", workspace, lab.leaf,
                                           server.build)
        figures["root"] = changed_rebuilds(lab, "Bazel warm root rebuild", workspace, lab.root,
                                           server.build)
        figures["build_edit"] = build_edits(lab, "Bazel warm BUILD edit", workspace,
                                            server.build)
        # ibazel reacts to an edit with a warm `bazel build`: the same two figures
        figures["watch_leaf"], figures["watch_build"] = figures["leaf"], figures["build_edit"]
        rdeps = "rdeps(//..., //pkg0:t0)"
        server.query(rdeps)   # the warm-up: every package loaded in the server
        figures["rdeps"] = stats([server.query(rdeps) for _ in range(lab.runs)])
        lab.say(f"Bazel warm rdeps query: {format_stat(figures['rdeps'])}")
    finally:
        if server is not None:
            server.close()
    return {"bazel": figures}
