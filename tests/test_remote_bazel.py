"""Bazel itself (where installed) builds a genrule workspace on bp's BuildGrid, `bp worker`s as bots."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

pytestmark = pytest.mark.skipif(shutil.which("bazel") is None,
                                reason="bazel is not installed (Debian: bazel-bootstrap)")


def test_bazel_runs_a_genrule_on_a_bp_worker(remote_cluster, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "WORKSPACE").write_text("")
    nonce = uuid.uuid4().hex   # a new action each run: never an earlier run's cache hit
    (ws / "BUILD").write_text(f"""
genrule(
    name = "where",
    srcs = ["in.txt"],
    outs = ["where.txt"],
    cmd = "(cat $(location in.txt); echo {nonce}; pwd) > $@",
)
""")
    (ws / "in.txt").write_text("input from the client\n")
    base = ["bazel", f"--output_base={tmp_path / 'ob'}", "--nohome_rc", "--noworkspace_rc"]
    try:
        built = subprocess.run(
            [*base, "build", "--nosandbox_debug", f"--remote_executor={remote_cluster.endpoint}",
             "--remote_local_fallback=false", "--noremote_accept_cached", "--remote_timeout=60",
             "//:where"], cwd=ws, capture_output=True, text=True, timeout=300)
    finally:
        subprocess.run([*base, "shutdown"], cwd=ws, capture_output=True, timeout=120)
    assert built.returncode == 0, built.stderr[-3000:]
    assert "1 remote" in built.stderr   # "2 processes: 1 internal, 1 remote."
    lines = (ws / "bazel-bin" / "where.txt").read_text().splitlines()
    assert lines[:2] == ["input from the client", nonce]
    assert lines[2].startswith(str(remote_cluster.directory / "worker-"))   # a bp worker ran it
