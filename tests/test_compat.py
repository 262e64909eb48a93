"""The compatibility cases of tests/compat/: small workspaces written against Bazel's
documented rule API, each built by bp and compared with what Bazel 4.2.3 built from the
same files (recorded by scripts/bazel-compat-goldens, see docs/bazel-peer.md). A case's
`needs` file lists files it uses from the machine (Debian's rule sets): without them it
is skipped, saying which is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

COMPAT = Path(__file__).parent / "compat"
CASES = sorted(p.name for p in COMPAT.iterdir() if (p / "ws").is_dir())


@pytest.mark.parametrize("case", CASES)
def test_bp_builds_what_bazel_built(bp, tmp_path, case):
    needs = COMPAT / case / "needs"
    missing = [p for p in (needs.read_text().split() if needs.exists() else ())
               if not Path(p).exists()]
    if missing:
        pytest.skip(f"{missing[0]} is missing (scripts/install-test-deps installs it)")
    expected = COMPAT / case / "expected"
    files = sorted(p.relative_to(expected) for p in expected.rglob("*") if p.is_file())
    assert files, f"{case} has no recorded outputs: run scripts/bazel-compat-goldens"
    root = tmp_path / "ws"
    shutil.copytree(COMPAT / case / "ws", root)
    flags = COMPAT / case / "flags"
    extra = flags.read_text().split() if flags.exists() else []
    result = bp("-C", str(root), "build", *extra, "//...")
    assert result.code == 0, result.err
    bin_dir = root / "bp-bin"   # the top-level configuration's, as bazel-bin
    for name in files:
        assert (bin_dir / name).read_text() == (expected / name).read_text(), name
