"""Shared fixtures: throwaway workspaces and an in-process `bp` runner."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildpy.cli import main
from tests.remote_cluster import remote_cluster  # noqa: F401  (a session fixture)

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory, monkeypatch):
    """Keep the user's ~/.bprc and bp's shared cache out of every test."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    # no analysis server outlives a test (forked from pytest itself, for an in-process
    # bp): the tests of the server ask for one with --analysis_server=yes
    monkeypatch.setenv("BP_ANALYSIS_SERVER", "no")


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def ws(tmp_path):
    """A function writing files into a fresh workspace; returns the workspace root."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "WORKSPACE").write_text("")

    def write(files: dict[str, str] | None = None) -> Path:
        for name, text in (files or {}).items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        return root

    return write


@pytest.fixture
def bp(capsys, monkeypatch):
    """Run `bp ARGS...` in-process from directory `cwd`; returns code, stdout, stderr."""

    def run(*args: str, cwd: Path | None = None) -> Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(list(args))
        captured = capsys.readouterr()
        return Result(exit_info.value.code, captured.out, captured.err)

    return run
