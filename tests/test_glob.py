"""glob(): pattern checks, listing a package without its subpackages, matching semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildpy.core.workspace import Workspace
from buildpy.loading.glob import GlobError, check_pattern, glob, list_package


# ---- check_pattern ----------------------------------------------------------------------

BAD = [
    ("", "empty glob pattern", None),
    ("/abs/*.c", "glob pattern '/abs/*.c' is absolute",
     "glob patterns are relative to the package directory"),
    ("../x.c", "glob pattern '../x.c' contains a '..' segment",
     "glob() cannot reach outside its package"),
    ("a/../b", "glob pattern 'a/../b' contains a '..' segment",
     "glob() cannot reach outside its package"),
    ("./a", "glob pattern './a' contains a '.' segment",
     "glob() cannot reach outside its package"),
    ("a//b", "glob pattern 'a//b' contains an empty segment", None),
    ("a/", "glob pattern 'a/' contains an empty segment", None),
    ("dir/**.c", "glob pattern 'dir/**.c': '**' must be a whole path segment",
     "write 'dir/**/*.c' rather than 'dir/**.c'"),
    ("a**/x", "glob pattern 'a**/x': '**' must be a whole path segment",
     "write 'dir/**/*.c' rather than 'dir/**.c'"),
    ("***", "glob pattern '***': '**' must be a whole path segment",
     "write 'dir/**/*.c' rather than 'dir/**.c'"),
    (3, "glob patterns must be strings, got 3", None),
]


@pytest.mark.parametrize("pattern, message, hint", BAD, ids=[repr(b[0]) for b in BAD])
def test_check_pattern_errors(pattern, message, hint):
    with pytest.raises(GlobError) as info:
        check_pattern(pattern)
    assert str(info.value) == message
    assert info.value.hint == hint


@pytest.mark.parametrize("pattern", ["*", "**", "a/**/b", "*.c", "a*b*c", ".*", "x.y/z"])
def test_check_pattern_accepts(pattern):
    check_pattern(pattern)


def test_glob_checks_include_and_exclude():
    with pytest.raises(GlobError) as info:
        glob(([], []), ["*.c"], ["../x"], True)
    assert str(info.value) == "glob pattern '../x' contains a '..' segment"


# ---- list_package -----------------------------------------------------------------------

@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    for name in ["WORKSPACE", "p/BUILD", "p/a.c", "p/.dot", "p/src/b.c", "p/src/sub/c.c",
                 "p/src/empty_dir/.keep", "p/sp/BUILD.bazel", "p/sp/x.c", "p/sp/inner/y.c",
                 "p/gen/g.c", "p/.hid/z.c", "top.c", "BUILD", "bp-out/o.c", "q/BUILD"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    (tmp_path / "p" / "nothing").mkdir()
    (tmp_path / ".bazelignore").write_text("# generated\np/gen\n")
    return Workspace.at(tmp_path)


def test_list_package_skips_subpackages_and_ignored_directories(ws):
    files, dirs = list_package(ws, "p")
    assert sorted(files) == [".dot", ".hid/z.c", "BUILD", "a.c", "src/b.c",
                             "src/empty_dir/.keep", "src/sub/c.c"]
    assert sorted(dirs) == [".hid", "nothing", "src", "src/empty_dir", "src/sub"]


def test_list_root_package_skips_outputs_and_every_package(ws):
    files, dirs = list_package(ws, "")
    assert sorted(files) == [".bazelignore", "BUILD", "WORKSPACE", "top.c"]
    assert dirs == []


def test_list_package_with_only_a_build_file(ws):
    assert list_package(ws, "q") == (["BUILD"], [])


# ---- glob matching ----------------------------------------------------------------------

FILES = ["BUILD", "a.c", "b.h", ".dot", ".hid/z.c", "src/b.c", "src/b.h", "src/sub/c.c",
         "src/sub/deep/d.c", "docs/README.md", "x.c.bak"]
DIRS = [".hid", "src", "src/sub", "src/sub/deep", "docs"]
LISTING = (FILES, DIRS)


@pytest.mark.parametrize("include, expected", [
    (["*.c"], ["a.c"]),
    (["*"], [".dot", "BUILD", "a.c", "b.h", "x.c.bak"]),
    (["src/*"], ["src/b.c", "src/b.h"]),
    (["src/*.c"], ["src/b.c"]),
    (["**/*.c"], [".hid/z.c", "a.c", "src/b.c", "src/sub/c.c", "src/sub/deep/d.c"]),
    (["src/**/*.c"], ["src/b.c", "src/sub/c.c", "src/sub/deep/d.c"]),
    (["src/**/deep/*"], ["src/sub/deep/d.c"]),
    (["**/sub/**"], ["src/sub/c.c", "src/sub/deep/d.c"]),
    (["src/**"], ["src/b.c", "src/b.h", "src/sub/c.c", "src/sub/deep/d.c"]),
    (["*/*.c"], [".hid/z.c", "src/b.c"]),
    (["*.c*"], ["a.c", "x.c.bak"]),
    (["a.c", "b.h"], ["a.c", "b.h"]),
    (["a.c", "*.c"], ["a.c"]),  # no duplicates
    (["nope.c", "src"], []),  # directories are not files
    ([".*"], [".dot"]),
    (["*/*/*/*"], ["src/sub/deep/d.c"]),
    ([], []),
])
def test_glob_include(include, expected):
    assert glob(LISTING, include, [], True) == expected


def test_glob_exclude():
    assert glob(LISTING, ["**/*.c"], ["src/sub/**"], True) == [".hid/z.c", "a.c", "src/b.c"]
    assert glob(LISTING, ["**"], ["**/*.c", "**/*.h", ".*", ".hid/*"], True) == [
        "BUILD", "docs/README.md", "x.c.bak"]
    assert glob(LISTING, ["*.c"], ["*"], True) == []
    assert glob(LISTING, ["src/*"], ["*.h"], True) == ["src/b.c", "src/b.h"]


def test_exclude_directories_zero_includes_matching_directories():
    assert glob(LISTING, ["src/*"], [], False) == ["src/b.c", "src/b.h", "src/sub"]
    assert glob(LISTING, ["*"], [], False) == [
        ".dot", ".hid", "BUILD", "a.c", "b.h", "docs", "src", "x.c.bak"]
    assert glob(LISTING, ["src/**"], ["**/*.c", "**/*.h"], False) == [
        "src", "src/sub", "src/sub/deep"]
    assert glob(LISTING, ["src/**"], ["**/*.c", "**/*.h"], True) == []


def test_results_are_sorted_whatever_the_listing_order():
    shuffled = (list(reversed(FILES)), list(reversed(DIRS)))
    assert glob(shuffled, ["**"], [], False) == sorted(FILES + DIRS)


def test_glob_over_a_real_package(ws):
    listing = list_package(ws, "p")
    assert glob(listing, ["**/*.c"], [], True) == [".hid/z.c", "a.c", "src/b.c",
                                                  "src/sub/c.c"]
    assert glob(listing, ["*"], [], False) == [".dot", ".hid", "BUILD", "a.c", "nothing",
                                               "src"]
