"""The `remote_cluster` fixture: one real BuildGrid (PostgreSQL, bgd, `bp worker`s) per test session.

Clusters live under one known parent directory, so that a test run killed with -9 leaves
nothing running for long: the next run reaps clusters whose owning process is dead.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

from buildpy.execution.local import default_cache_dir
from buildpy.remote.cluster import Cluster, postgres_available, reap_abandoned

PARENT = Path(tempfile.gettempdir()) / f"bp-test-clusters-{os.getuid()}"
WORKERS = 2
# The user's cache, read before tests give each test a private home: BuildGrid's venv is
# installed there once and shared by every test run.
BUILDGRID_CACHE = default_cache_dir()
SKIP_REASON = ("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin;"
               " scripts/install-test-deps installs it), and BuildGrid's scheduler needs it")


def start_cluster(parent: Path = PARENT, workers: int = WORKERS, **options) -> Cluster:
    """Reap clusters of dead test runs under `parent`, then start a fresh one there."""
    if not postgres_available():
        pytest.skip(SKIP_REASON)
    parent.mkdir(parents=True, exist_ok=True)
    reap_abandoned(parent)
    directory = Path(tempfile.mkdtemp(prefix="cluster-", dir=parent))
    options.setdefault("cache_dir", BUILDGRID_CACHE)
    cluster = Cluster(directory, workers=workers,
                      say=lambda message: print(message, file=sys.stderr), **options)
    cluster.start()
    return cluster


@pytest.fixture(scope="session")
def remote_cluster():
    """A started Cluster with 2 workers on instance ""; stopped at the end of the session."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
