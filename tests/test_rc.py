"""rc files: sections, inheritance order, configs, comments, quoting, imports and errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from buildpy.core.errors import Location, UserError
from buildpy.core.rc import RcFile, read_rc_files


@pytest.fixture
def tmp_path(tmp_path: Path) -> Path:
    """Resolved, so that paths in messages match where /tmp is a symlink."""
    return tmp_path.resolve()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def read(tmp_path: Path, text: str) -> RcFile:
    return read_rc_files([write(tmp_path / ".bprc", text)], tmp_path)


def test_sections_and_inheritance_order(tmp_path):
    rc = read(tmp_path, """
        test --t1
        build --b1
        common --c1
        build --b2 --b3
        test --t2
        run --r1
        query --q1
    """)
    assert rc.args_for("test") == [
        ("common", "--c1"), ("build", "--b1"), ("build", "--b2"), ("build", "--b3"),
        ("test", "--t1"), ("test", "--t2")]
    assert rc.args_for("build") == [
        ("common", "--c1"), ("build", "--b1"), ("build", "--b2"), ("build", "--b3")]
    assert [a for _, a in rc.args_for("run")] == ["--c1", "--b1", "--b2", "--b3", "--r1"]
    assert rc.args_for("coverage") == rc.args_for("test")
    # Commands that do not build inherit only `common`.
    assert rc.args_for("query") == [("common", "--c1"), ("query", "--q1")]
    assert rc.args_for("version") == [("common", "--c1")]


def test_configs_apply_only_when_asked_for(tmp_path):
    rc = read(tmp_path, """
        build --jobs=8
        build:ci --jobs=1
        test:ci --flaky_test_attempts=3
        common:ci --color=no
        build:opt --compilation_mode=opt
    """)
    assert rc.args_for("build") == [("build", "--jobs=8")]
    assert rc.args_for("test", "ci") == [
        ("common", "--color=no"), ("build", "--jobs=1"), ("test", "--flaky_test_attempts=3")]
    assert rc.args_for("build", "ci") == [("common", "--color=no"), ("build", "--jobs=1")]
    assert rc.args_for("query", "ci") == [("common", "--color=no")]
    assert rc.args_for("build", "nope") == []
    assert rc.has_config("ci") and rc.has_config("opt")
    assert not rc.has_config("nope")


def test_comments_blank_lines_and_quoting(tmp_path):
    rc = read(tmp_path, """
        # a comment line

           # indented comment
        build --a=1   # trailing comment
        build "--copt=-DX=a b" 'x y' --c="#not a comment" --d=\\#
    """)
    assert [line.args for line in rc.lines] == [
        ("--a=1",), ("--copt=-DX=a b", "x y", "--c=#not a comment", "--d=#")]
    assert [line.location.line for line in rc.lines] == [4, 5]


def test_line_records_command_config_and_location(tmp_path):
    rc = read(tmp_path, "build:ci --x\n")
    (line,) = rc.lines
    assert (line.command, line.config, line.args) == ("build", "ci", ("--x",))
    assert line.location == Location(str(tmp_path / ".bprc"), 1, 1)


def test_several_files_in_order_and_missing_ones_skipped(tmp_path):
    first = write(tmp_path / "one.rc", "build --one\ntest --t\n")
    second = write(tmp_path / "two.rc", "build --two\n")
    rc = read_rc_files([first, tmp_path / "absent.rc", second], tmp_path)
    # All `build` lines (from every file) come before any `test` line.
    assert [a for _, a in rc.args_for("test")] == ["--one", "--two", "--t"]


def test_import_and_try_import_with_workspace(tmp_path):
    write(tmp_path / "tools" / "shared.rc", "build --shared\n")
    write(tmp_path / "sub" / "local.rc", "build --local\n")
    rc = read(tmp_path, """
        build --before
        import %workspace%/tools/shared.rc
        try-import %workspace%/user.rc
        import sub/local.rc
        build --after
    """)
    assert [a for _, a in rc.args_for("build")] == [
        "--before", "--shared", "--local", "--after"]
    shared = rc.lines[1].location
    assert shared == Location(str(tmp_path / "tools" / "shared.rc"), 1, 1)


def test_try_import_of_existing_file_reads_it(tmp_path):
    write(tmp_path / "user.rc", "test --mine\n")
    rc = read(tmp_path, "try-import %workspace%/user.rc\n")
    assert rc.args_for("test") == [("test", "--mine")]


def test_workspace_defaults_to_the_rc_files_directory(tmp_path):
    write(tmp_path / "d" / "inc.rc", "build --inc\n")
    main = write(tmp_path / "d" / "main.rc", "import %workspace%/inc.rc\n")
    assert read_rc_files([main], None).args_for("build") == [("build", "--inc")]


def test_the_same_file_imported_twice_is_no_cycle(tmp_path):
    write(tmp_path / "x.rc", "build --x\n")
    write(tmp_path / "y.rc", "import x.rc\n")
    rc = read(tmp_path, "import x.rc\nimport y.rc\n")
    assert [a for _, a in rc.args_for("build")] == ["--x", "--x"]


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(UserError) as info:
        read(tmp_path, text)
    assert info.value.exit_code == 2
    return info.value.render()


def test_missing_import_is_an_error(tmp_path):
    assert error(tmp_path, "build --x\nimport %workspace%/nope.rc\n") == (
        f"{tmp_path}/.bprc:2:1: imported rc file '{tmp_path}/nope.rc' does not exist\n"
        "hint: use 'try-import' for optional files")


def test_import_needs_exactly_one_path(tmp_path):
    assert error(tmp_path, "import\n") == (
        f"{tmp_path}/.bprc:1:1: 'import' takes exactly one path")
    assert error(tmp_path, "try-import a b\n") == (
        f"{tmp_path}/.bprc:1:1: 'try-import' takes exactly one path")


def test_import_of_itself_is_a_cycle(tmp_path):
    assert error(tmp_path, "import .bprc\n") == (
        f"{tmp_path}/.bprc: rc file import cycle: {tmp_path}/.bprc -> {tmp_path}/.bprc\n"
        "hint: remove one of these imports")


def test_import_cycle_names_every_file(tmp_path):
    write(tmp_path / "a.rc", "import b.rc\n")
    write(tmp_path / "b.rc", "try-import %workspace%/a.rc\n")
    assert error(tmp_path, "import a.rc\n") == (
        f"{tmp_path}/a.rc: rc file import cycle: "
        f"{tmp_path}/a.rc -> {tmp_path}/b.rc -> {tmp_path}/a.rc\n"
        "hint: remove one of these imports")


def test_unbalanced_quote(tmp_path):
    assert error(tmp_path, 'build "--x\n') == (
        f"{tmp_path}/.bprc:1:1: cannot parse rc line: No closing quotation")
