"""The workspace: finding its root, ignored directories, BUILD files and package discovery."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildpy.core.errors import UserError
from buildpy.core.workspace import Workspace, find_workspace_root


@pytest.fixture
def tmp_path(tmp_path: Path) -> Path:
    """Resolved, so that paths in messages match where /tmp is a symlink."""
    return tmp_path.resolve()


def touch(root: Path, *names: str) -> Path:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return root


# ---- find_workspace_root ----------------------------------------------------------------

@pytest.mark.parametrize("marker", ["WORKSPACE", "WORKSPACE.bazel"])
def test_root_is_the_nearest_ancestor_with_a_workspace_file(tmp_path, marker):
    touch(tmp_path, marker, "a/b/c/x.txt")
    assert find_workspace_root(tmp_path) == tmp_path
    assert find_workspace_root(tmp_path / "a" / "b" / "c") == tmp_path


def test_nested_workspace_wins(tmp_path):
    touch(tmp_path, "WORKSPACE", "inner/WORKSPACE.bazel", "inner/pkg/BUILD")
    assert find_workspace_root(tmp_path / "inner" / "pkg") == tmp_path / "inner"


def test_a_directory_named_workspace_does_not_count(tmp_path):
    touch(tmp_path, "WORKSPACE", "sub/WORKSPACE/x")
    assert find_workspace_root(tmp_path / "sub") == tmp_path


def test_relative_start_is_resolved(tmp_path, monkeypatch):
    touch(tmp_path, "WORKSPACE", "a/x")
    monkeypatch.chdir(tmp_path / "a")
    assert find_workspace_root(Path(".")) == tmp_path


def test_outside_a_workspace(tmp_path):
    start = tmp_path / "no" / "ws"
    start.mkdir(parents=True)
    if any((p / name).is_file() for p in start.parents for name in ("WORKSPACE",
                                                                   "WORKSPACE.bazel")):
        pytest.skip("the temporary directory is itself inside a workspace")
    with pytest.raises(UserError) as info:
        find_workspace_root(start)
    assert info.value.render() == (
        f"not inside a workspace: no WORKSPACE, WORKSPACE.bazel or MODULE.bazel file in '{start}' "
        "or any directory above it\n"
        "hint: create an empty file named WORKSPACE at the root of your source tree "
        "(see WORKSPACE.example), or point bp at one with -C DIR")
    assert info.value.exit_code == 2


# ---- ignored directories -------------------------------------------------------------

def test_ignore_files_with_comments_slashes_and_dot_prefix(tmp_path):
    (tmp_path / ".bazelignore").write_text(
        "# generated trees\n"
        "node_modules\n"
        "\n"
        "  third_party/big/   # trailing comment\n"
        "./vendor\n")
    (tmp_path / ".bpignore").write_text("scratch\n")
    ws = Workspace.at(tmp_path)
    assert ws.ignored == {"node_modules", "third_party/big", "vendor", "scratch"}


@pytest.mark.parametrize("rel, ignored", [
    ("", False),
    ("src", False),
    ("node_modules", True),
    ("node_modules/a/b", True),
    ("node_modules_not", False),
    ("third_party", False),
    ("third_party/big", True),
    ("third_party/big/x", True),
    ("third_party/bigger", False),
    ("bp-out", True),
    ("bp-out/bin/x", True),
    ("bazel-ws", True),
    ("bazel-out/k8", True),
    (".git", True),
    (".git/objects", True),
    ("src/.git", False),
    ("src/bp-out", False),
])
def test_is_ignored(tmp_path, rel, ignored):
    ws = Workspace(tmp_path, frozenset({"node_modules", "third_party/big"}))
    assert ws.is_ignored(rel) is ignored


# ---- BUILD files and packages --------------------------------------------------------

def test_build_file_prefers_build_bazel(tmp_path):
    touch(tmp_path, "WORKSPACE", "BUILD", "both/BUILD", "both/BUILD.bazel", "only/BUILD",
          "none/x.txt", "dir/BUILD/inner.txt")
    ws = Workspace.at(tmp_path)
    assert ws.build_file("") == tmp_path / "BUILD"
    assert ws.build_file("both") == tmp_path / "both" / "BUILD.bazel"
    assert ws.build_file("only") == tmp_path / "only" / "BUILD"
    assert ws.build_file("none") is None
    assert ws.build_file("missing") is None
    assert ws.build_file("dir") is None  # a directory named BUILD is no BUILD file


def test_build_file_of_an_ignored_directory_is_none(tmp_path):
    touch(tmp_path, "WORKSPACE", "gen/BUILD", "bp-out/BUILD")
    (tmp_path / ".bpignore").write_text("gen\n")
    ws = Workspace.at(tmp_path)
    assert ws.build_file("gen") is None
    assert ws.build_file("bp-out") is None


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    touch(tmp_path, "WORKSPACE", "BUILD",
          "b/BUILD.bazel", "a/BUILD", "a/sub/BUILD", "a/sub/deeper/BUILD",
          "a/plain/file.txt", "a/plain/pkg/BUILD", "a-b/BUILD", "c/only.txt",
          "ignored/BUILD", "ignored/x/BUILD", "keep/gen/BUILD", "keep/BUILD",
          "bp-out/bin/BUILD", "bazel-out/BUILD", ".git/hooks/BUILD",
          "dirbuild/BUILD/BUILD")
    (tmp_path / ".bazelignore").write_text("# not these\nignored\n")
    (tmp_path / ".bpignore").write_text("keep/gen  # generated\n")
    os.symlink(tmp_path / "a", tmp_path / "bazel-tree")
    return tmp_path


def test_packages_below_root_sorted_and_skipping_ignored(tree):
    ws = Workspace.at(tree)
    assert list(ws.packages_below("")) == [
        "", "a", "a-b", "a/plain/pkg", "a/sub", "a/sub/deeper", "b", "dirbuild/BUILD",
        "keep"]


def test_packages_below_a_directory(tree):
    ws = Workspace.at(tree)
    assert list(ws.packages_below("a")) == ["a", "a/plain/pkg", "a/sub", "a/sub/deeper"]
    assert list(ws.packages_below("a/plain")) == ["a/plain/pkg"]
    assert list(ws.packages_below("c")) == []
    assert list(ws.packages_below("missing")) == []
    assert list(ws.packages_below("ignored")) == []
    assert list(ws.packages_below("bp-out")) == []


def test_workspace_at_resolves_its_root(tree, monkeypatch):
    monkeypatch.chdir(tree / "a")
    ws = Workspace.at(Path(".."))
    assert ws.root == tree
    assert ws.ignored == {"ignored", "keep/gen"}
