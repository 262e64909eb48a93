"""Target patterns: absolute and relative forms, wildcards, negation, errors, coverage."""

from __future__ import annotations

import pytest

from buildpy.core.label import Label, LabelError, PackageId
from buildpy.core.pattern import PatternKind, TargetPattern, parse_pattern

K = PatternKind
PACKAGES = {"", "foo", "foo/bar", "x/foo/bar", "a"}


def is_package(path: str) -> bool:
    return path in PACKAGES


def parts(p: TargetPattern) -> tuple:
    return p.kind, p.repo, p.package, p.name, p.negative


@pytest.mark.parametrize("text, expected", [
    ("//...", (K.RECURSIVE_RULES, "", "", "", False)),
    ("//pkg/...", (K.RECURSIVE_RULES, "", "pkg", "", False)),
    ("//pkg/...:all", (K.RECURSIVE_RULES, "", "pkg", "", False)),
    ("//pkg/...:*", (K.RECURSIVE_TARGETS, "", "pkg", "", False)),
    ("//pkg/...:all-targets", (K.RECURSIVE_TARGETS, "", "pkg", "", False)),
    ("//...:*", (K.RECURSIVE_TARGETS, "", "", "", False)),
    ("//pkg:all", (K.PACKAGE_RULES, "", "pkg", "", False)),
    ("//pkg:*", (K.PACKAGE_TARGETS, "", "pkg", "", False)),
    ("//pkg:all-targets", (K.PACKAGE_TARGETS, "", "pkg", "", False)),
    ("//:all", (K.PACKAGE_RULES, "", "", "", False)),
    ("//pkg:name", (K.TARGET, "", "pkg", "name", False)),
    ("//pkg/sub", (K.TARGET, "", "pkg/sub", "sub", False)),
    ("//:x", (K.TARGET, "", "", "x", False)),
    ("-//pkg/...", (K.RECURSIVE_RULES, "", "pkg", "", True)),
    ("-//pkg:x", (K.TARGET, "", "pkg", "x", True)),
    ("@r//...", (K.RECURSIVE_RULES, "r", "", "", False)),
    ("@r//a:b", (K.TARGET, "r", "a", "b", False)),
])
def test_absolute_patterns(text, expected):
    pattern = parse_pattern(text, "ignored/offset", is_package)
    assert parts(pattern) == expected
    assert pattern.text == text


@pytest.mark.parametrize("text, offset, expected", [
    ("...", "", (K.RECURSIVE_RULES, "", "", "", False)),
    ("...", "a/b", (K.RECURSIVE_RULES, "", "a/b", "", False)),
    ("foo/...", "x", (K.RECURSIVE_RULES, "", "x/foo", "", False)),
    ("foo/...:*", "x", (K.RECURSIVE_TARGETS, "", "x/foo", "", False)),
    (":all", "a", (K.PACKAGE_RULES, "", "a", "", False)),
    (":all", "", (K.PACKAGE_RULES, "", "", "", False)),
    (":*", "a", (K.PACKAGE_TARGETS, "", "a", "", False)),
    (":x", "a", (K.TARGET, "", "a", "x", False)),
    ("foo:bar", "x", (K.TARGET, "", "x/foo", "bar", False)),
    ("foo:all", "", (K.PACKAGE_RULES, "", "foo", "", False)),
    ("-foo/...", "x", (K.RECURSIVE_RULES, "", "x/foo", "", True)),
    # A bare path that is a package names its default target ...
    ("foo/bar", "", (K.TARGET, "", "foo/bar", "bar", False)),
    ("foo/bar", "x", (K.TARGET, "", "x/foo/bar", "bar", False)),
    ("foo", "", (K.TARGET, "", "foo", "foo", False)),
    # ... and otherwise a file target of the nearest enclosing package.
    ("foo/baz", "", (K.TARGET, "", "foo", "baz", False)),
    ("foo/bar/wiz", "", (K.TARGET, "", "foo/bar", "wiz", False)),
    ("foo/baz/wiz", "", (K.TARGET, "", "foo", "baz/wiz", False)),
    ("zz", "", (K.TARGET, "", "", "zz", False)),
    ("zz/y", "", (K.TARGET, "", "", "zz/y", False)),
    ("b/c", "a", (K.TARGET, "", "a", "b/c", False)),
])
def test_relative_patterns(text, offset, expected):
    assert parts(parse_pattern(text, offset, is_package)) == expected


def test_bare_path_without_package_oracle_is_a_package():
    assert parts(parse_pattern("foo/baz")) == (K.TARGET, "", "foo/baz", "baz", False)


def test_target_pattern_label():
    assert parse_pattern("//a:b").label == Label("", "a", "b")
    assert parse_pattern("//a:b").package_id == PackageId("", "a")
    assert not parse_pattern("//a:b").is_wildcard
    assert parse_pattern("//a:all").is_wildcard
    assert parse_pattern("//a/...").is_wildcard


BAD_PATTERNS = [
    ("//a/...:x",
     "invalid target pattern '//a/...:x': after '...' only ':all' or ':*' may follow\n"
     "hint: did you mean '//a/...'?"),
    ("-//a/...:x",
     "invalid target pattern '-//a/...:x': after '...' only ':all' or ':*' may follow\n"
     "hint: did you mean '-//a/...'?"),
    ("//",
     "invalid target pattern '//': empty target name\n"
     "hint: use '//...' for every target or '//:all' for the root package"),
    ("", "invalid target pattern '': empty pattern"),
    ("-", "invalid target pattern '-': empty pattern"),
    ("/x",
     "invalid target pattern '/x': absolute paths are not patterns\n"
     "hint: start workspace-relative patterns with '//'"),
    ("//a:",
     "invalid target pattern '//a:': empty target name"),
    ("//a//b:c",
     "invalid target pattern '//a//b:c': package name 'a//b' contains an empty segment "
     "('//')"),
    ("//a/../b/...",
     "invalid target pattern '//a/../b/...': package name 'a/../b' contains a '..' "
     "segment\n"
     "hint: labels are always relative to the workspace root; write the package path "
     "without '.' or '..'"),
    ("//a:b\tc",
     "invalid target pattern '//a:b\tc': target name 'b\tc' contains '\\t', which is not "
     "allowed in target names"),
    ("@r:x", "invalid target pattern '@r:x': invalid repository name '@r:x'"),
]


@pytest.mark.parametrize("text, message", BAD_PATTERNS, ids=[t for t, _ in BAD_PATTERNS])
def test_malformed_patterns(text, message):
    with pytest.raises(LabelError) as info:
        parse_pattern(text, "", is_package)
    assert str(info.value) == message


def test_covers_package_recursive():
    below = parse_pattern("//foo/...")
    assert below.covers_package(PackageId("", "foo"))
    assert below.covers_package(PackageId("", "foo/bar/baz"))
    assert not below.covers_package(PackageId("", "foobar"))
    assert not below.covers_package(PackageId("", ""))
    assert not below.covers_package(PackageId("r", "foo"))
    everything = parse_pattern("//...:*")
    assert everything.covers_package(PackageId("", ""))
    assert everything.covers_package(PackageId("", "any/where"))
    assert not everything.covers_package(PackageId("r", ""))
    assert parse_pattern("@r//...").covers_package(PackageId("r", "x"))


def test_covers_package_single_package():
    for text in ("//foo:all", "//foo:*", "//foo:x", "//foo"):
        pattern = parse_pattern(text)
        assert pattern.covers_package(PackageId("", "foo")), text
        assert not pattern.covers_package(PackageId("", "foo/bar")), text
        assert not pattern.covers_package(PackageId("", "")), text
