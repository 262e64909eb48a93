"""Labels: parsing of every absolute and relative form, the exact errors, printing, order."""

from __future__ import annotations

import pytest

from buildpy.core.errors import UserError
from buildpy.core.label import Label, LabelError, PackageId, parse_label

HERE = PackageId("", "a/b")


@pytest.mark.parametrize("text, expected", [
    ("//pkg:name", Label("", "pkg", "name")),
    ("//pkg", Label("", "pkg", "pkg")),
    ("//pkg/sub", Label("", "pkg/sub", "sub")),
    ("//:x", Label("", "", "x")),
    (":name", Label("", "a/b", "name")),
    ("name", Label("", "a/b", "name")),
    ("dir/file.txt", Label("", "a/b", "dir/file.txt")),
    ("@prelude//path:file.bzl", Label("prelude", "path", "file.bzl")),
    ("@prelude//:defs.bzl", Label("prelude", "", "defs.bzl")),
    ("@repo", Label("repo", "", "repo")),
    ("@//a:b", Label("", "a", "b")),
    ("//a:b/c.txt", Label("", "a", "b/c.txt")),
    ("//a-b/c_d.e:x+y=z,~@", Label("", "a-b/c_d.e", "x+y=z,~@")),
    # Bazel's LabelValidator: a target name may hold ':' (not first), spaces, '`' and
    # any non-ASCII character; a package name any printable ASCII but ':' and '\\'.
    ("//a:b:c", Label("", "a", "b:c")),
    ("//a b:c d", Label("", "a b", "c d")),
    ("//a:$(x);y|z&'q\"`", Label("", "a", "$(x);y|z&'q\"`")),
    ("//a$(b)!#%&'*+,;<=>?@[]^_`{|}~/c", Label("", "a$(b)!#%&'*+,;<=>?@[]^_`{|}~/c", "c")),
    ("//a:é ü", Label("", "a", "é ü")),
    ("//a:x/...", Label("", "a", "x/...")),
])
def test_parse_valid(text, expected):
    assert parse_label(text, HERE) == expected


def test_absolute_label_without_current_package():
    assert parse_label("//pkg:name") == Label("", "pkg", "name")


def test_absolute_label_inside_an_external_repo_stays_in_that_repo():
    assert parse_label("//x:y", PackageId("ext", "p")) == Label("ext", "x", "y")
    assert parse_label(":y", PackageId("ext", "p")) == Label("ext", "p", "y")
    assert parse_label("@//x:y", PackageId("ext", "p")) == Label("", "x", "y")


BAD_LABELS = [
    ("//a/../b",
     "invalid label '//a/../b': package name 'a/../b' contains a '..' segment\n"
     "hint: labels are always relative to the workspace root; write the package path "
     "without '.' or '..'"),
    ("//a/./b:c",
     "invalid label '//a/./b:c': package name 'a/./b' contains a '.' segment\n"
     "hint: labels are always relative to the workspace root; write the package path "
     "without '.' or '..'"),
    ("//a::b",
     "invalid label '//a::b': target name ':b' may not start with ':'\n"
     "hint: a label has a single ':' between the package and the target name"),
    ("a:b",
     "invalid label 'a:b': a label naming a package must start with '//'\n"
     "hint: write '//a:b'"),
    ("//a/.../b:c",
     "invalid label '//a/.../b:c': package name 'a/.../b' contains a '...' segment\n"
     "hint: labels are always relative to the workspace root; write the package path "
     "without '.' or '..'"),
    ("//é:c",
     "invalid label '//é:c': package name 'é' contains 'é', which is not allowed in "
     "package names"),
    ("//a:b\x7fc",
     "invalid label '//a:b\x7fc': target name 'b\x7fc' contains '\\x7f', which is not "
     "allowed in target names"),
    ("//a:", "invalid label '//a:': empty target name"),
    ("", "invalid label '': empty label"),
    ("//",
     "invalid label '//': empty target name\n"
     "hint: name the target: '//:name' in the root package"),
    ("//a//b:c",
     "invalid label '//a//b:c': package name 'a//b' contains an empty segment ('//')"),
    ("//a/:b", "invalid label '//a/:b': package name 'a/' may not start or end with '/'"),
    ("///a:b", "invalid label '///a:b': package name '/a' may not start or end with '/'"),
    ("//a:b\rc",
     "invalid label '//a:b\rc': target name 'b\rc' contains '\\r', which is not allowed "
     "in target names"),
    ("//a\\b:c",
     "invalid label '//a\\b:c': package name 'a\\b' contains '\\', which is not allowed "
     "in package names"),
    ("//a:b\\c",
     "invalid label '//a:b\\c': target name 'b\\c' contains '\\', which is not allowed in "
     "target names\n"
     "hint: use '/' to separate directories"),
    ("//a:b\tc",
     "invalid label '//a:b\tc': target name 'b\tc' contains '\\t', which is not allowed "
     "in target names"),
    (":../x",
     "invalid label ':../x': target name '../x' contains a '..' segment\n"
     "hint: a label may not reach outside its package's directory tree"),
    ("//a:x/../../y",
     "invalid label '//a:x/../../y': target name 'x/../../y' contains a '..' segment\n"
     "hint: a label may not reach outside its package's directory tree"),
    ("//a:/b",
     "invalid label '//a:/b': target name '/b' may not start or end with '/' or contain "
     "'//'"),
    ("//a:b//c",
     "invalid label '//a:b//c': target name 'b//c' may not start or end with '/' or "
     "contain '//'"),
    ("@1x//a:b", "invalid label '@1x//a:b': invalid repository name '@1x'"),
    ("@r:x", "invalid label '@r:x': invalid repository name '@r:x'"),
]


@pytest.mark.parametrize("text, message", BAD_LABELS, ids=[t for t, _ in BAD_LABELS])
def test_malformed_labels(text, message):
    with pytest.raises(LabelError) as info:
        parse_label(text, HERE)
    assert str(info.value) == message
    assert info.value.render() == message


def test_label_errors_are_user_errors():
    with pytest.raises(UserError) as info:
        parse_label("//a::b", HERE)
    assert info.value.exit_code == 2


def test_relative_label_needs_a_current_package():
    for text in (":x", "x"):
        with pytest.raises(LabelError) as info:
            parse_label(text)
        assert str(info.value) == (
            f"invalid label '{text}': relative label outside a package\n"
            "hint: write an absolute label such as '//pkg:name'")


def test_non_string_label():
    with pytest.raises(LabelError) as info:
        parse_label(3, HERE)  # type: ignore[arg-type]
    assert str(info.value) == "expected a label string, got int 3"


@pytest.mark.parametrize("label, text", [
    (Label("", "pkg", "name"), "//pkg:name"),
    (Label("", "", "x"), "//:x"),
    (Label("prelude", "go", "defs.bzl"), "@prelude//go:defs.bzl"),
    (Label("repo", "", "repo"), "@repo//:repo"),
])
def test_str_is_canonical_and_round_trips(label, text):
    assert str(label) == text
    assert parse_label(text) == label


def test_str_of_short_forms_spells_out_the_name():
    assert str(parse_label("//pkg")) == "//pkg:pkg"
    assert str(parse_label(":x", HERE)) == "//a/b:x"


def test_relative_to():
    label = Label("", "a/b", "x")
    assert label.relative_to(HERE) == ":x"
    assert label.relative_to(PackageId("", "a")) == "//a/b:x"
    assert label.relative_to(PackageId("other", "a/b")) == "//a/b:x"


def test_ordering_is_repo_then_package_then_name():
    labels = [parse_label(t) for t in
              ["//b:a", "@r//a:a", "//a:z", "//a/b:a", "//a:b", "//:z"]]
    assert [str(x) for x in sorted(labels)] == [
        "//:z", "//a:b", "//a:z", "//a/b:a", "//b:a", "@r//a:a"]


def test_labels_are_hashable_values():
    assert {parse_label("//p"), parse_label("//p:p")} == {Label("", "p", "p")}
    with pytest.raises(AttributeError):
        parse_label("//p").name = "q"  # type: ignore[misc]


def test_package_id():
    label = parse_label("@r//x/y:z")
    assert label.package_id == PackageId("r", "x/y")
    assert str(PackageId("", "x/y")) == "//x/y"
    assert str(PackageId("r", "")) == "@r//"
    assert PackageId("", "x").label("t") == Label("", "x", "t")
    assert sorted([PackageId("r", "a"), PackageId("", "b"), PackageId("", "a")]) == [
        PackageId("", "a"), PackageId("", "b"), PackageId("r", "a")]


def _outcome(parse, text, current):
    try:
        return parse(text, current)
    except LabelError as e:
        return ("error", e.message, e.hint)


def test_the_fast_path_parses_as_every_form_does():
    """parse_label takes plain `//pkg:name`, `name` and `:name` without its general steps
    (core/label.py, _PLAIN_ABSOLUTE): random texts over the characters that matter give
    what the general path gives, labels and errors alike, in the main repository, in
    another one, and outside any package."""
    import random

    from buildpy.core.label import _parse_label

    rng = random.Random(7)
    pieces = ["a", "b7", "_x", "-", ".", "..", "/", "//", ":", "@", "@@", "+", "~", " ",
              "é", "\\", "...", "c.txt", "=", ",", "$"]
    taken = 0
    for _ in range(20000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        for current in (HERE, PackageId("ext", "p"), None):
            fast = _outcome(parse_label, text, current)
            assert fast == _outcome(_parse_label, text, current), (text, current)
            taken += isinstance(fast, Label)
    assert taken > 5000   # (the pieces make many valid labels, not only errors)
