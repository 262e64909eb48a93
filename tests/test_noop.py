"""A no-op build told from the proof the last build left (noop.py, execution/lastbuild.py):
taken only when nothing the build depended on changed. Each kind of input is changed in
turn; the build after it must take the ordinary way (and build the right thing), and
the one after that is a no-op again."""

from __future__ import annotations

import errno
import hashlib
import marshal
import os
import stat
from pathlib import Path

import pytest

from buildpy import session as session_module
from buildpy.execution import digests as digests_module
from buildpy.execution import lastbuild
from buildpy.execution.digests import FileDigests, stat_data
from buildpy.execution.execroot import exec_root_for
from buildpy.execution.executor import Executor
from buildpy.execution.state import open_files_db

RULES = """
def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.run_shell(outputs = [out], inputs = ctx.files.srcs,
                          command = "cat $@ > " + out.path + "; echo " + ctx.attr.word +
                                    " >> " + out.path,
                          arguments = [f.path for f in ctx.files.srcs])
    return [DefaultInfo(files = depset([out]))]

joined = rule(implementation = _impl,
              attrs = {"srcs": attr.label_list(allow_files = True), "word": attr.string()})

def _tool_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.run(executable = "noop_tool", arguments = [out.path], outputs = [out],
                    use_default_shell_env = True)
    return [DefaultInfo(files = depset([out]))]

tool = rule(implementation = _tool_impl)

def _tree_impl(ctx):
    tree = ctx.actions.declare_directory(ctx.label.name)
    ctx.actions.run_shell(outputs = [tree], inputs = ctx.files.srcs,
                          command = "mkdir -p $1/sub && cp $2 $1/sub/",
                          arguments = [tree.path, ctx.files.srcs[0].path])
    return [DefaultInfo(files = depset([tree]))]

tree = rule(implementation = _tree_impl,
            attrs = {"srcs": attr.label_list(allow_files = True)})
"""

BUILD = """
load(":rules.bzl", "joined", "tool", "tree")
genrule(name = "g", srcs = ["a.txt"], outs = ["g.txt"], cmd = "cat $< > $@")
joined(name = "j", srcs = glob(["parts/*.txt"]) + [":g"], word = "end")
tool(name = "tool")
tree(name = "tree", srcs = ["parts/1.txt"])
genrule(name = "count", srcs = [":tree"], outs = ["count.txt"],
        cmd = "find $(SRCS) -type f | wc -l > $@")
"""


@pytest.fixture
def build(bp, ws, tmp_path, monkeypatch):
    """`build(*flags)`: `bp build //...` in the test's workspace; returns (result, whether
    it was told a no-op from the last build's proof)."""
    tools = tmp_path / "tools"
    first, second = tools / "first", tools / "second"
    for directory in (first, second):
        directory.mkdir(parents=True)
    _tool(first / "noop_tool", "first")
    monkeypatch.setenv("PATH", f"{second}:{first}:{os.environ['PATH']}")
    monkeypatch.setenv("NOOP_WORD", "one")
    root = ws({"rules.bzl": RULES, "BUILD": BUILD, "a.txt": "a\n", "parts/1.txt": "p1\n"})
    ordinary = []
    start_plan = session_module._start_plan

    def counted(*args, **kwargs):
        ordinary.append(True)
        run.between()
        return start_plan(*args, **kwargs)

    monkeypatch.setattr(session_module, "_start_plan", counted)
    looked_at = []
    up_to_date = Executor.up_to_date

    def looked(self, action, inputs):
        looked_at.append(str(action.owner_label))
        return up_to_date(self, action, inputs)

    monkeypatch.setattr(Executor, "up_to_date", looked)
    cache = f"--disk_cache={tmp_path / 'cache'}"

    def run(*flags: str):
        ordinary.clear()
        looked_at.clear()
        result = bp("--nohome_rc", "build", cache, "--spawn_strategy=local", *flags,
                    "//...", cwd=root)
        assert result.code == 0, result.err
        return result, not ordinary

    run.root, run.tools, run.looked_at = root, (first, second), looked_at
    run.between = lambda: None   # what happens after the proof was checked
    return run


def _tool(path: Path, word: str) -> None:
    path.write_text(f'#!/bin/sh\necho {word} > "$1"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _out(root: Path, name: str) -> str:
    return (root / "bp-bin" / name).read_text()


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("INFO: Elapsed")]


def test_a_no_op_is_told_from_the_proof_until_an_input_changes(build):
    root = build.root
    result, told = build()
    assert not told
    assert _out(root, "j.txt") == "p1\na\nend\n"
    ordinary, told = build()   # (the first build proved what it wrote)
    assert told
    again, told = build()
    assert told and _lines(again.err) == _lines(ordinary.err)
    assert "INFO: 5 actions: 0 executed, 5 cache hits" in again.err

    def changed(edit, *flags: str) -> None:
        edit()
        _, told = build(*flags)
        assert not told, edit.__doc__
        _, told = build(*flags)
        assert told, edit.__doc__

    (root / "a.txt").write_text("b\n")
    _, told = build()
    assert not told
    # what the proof still shows up to date is not looked at: only what reads a.txt, and
    # what makes a directory (whose digest is not kept file by file) and reads it
    assert sorted(build.looked_at) == ["//:count", "//:g", "//:j", "//:tree"]
    assert _out(root, "g.txt") == "b\n" and _out(root, "j.txt") == "p1\nb\nend\n"
    _, told = build()
    assert told

    def glob_grows():
        """a file that a glob() matches"""
        (root / "parts" / "2.txt").write_text("p2\n")
    changed(glob_grows)
    assert _out(root, "j.txt") == "p1\np2\nb\nend\n"

    def bzl():
        """a .bzl file"""
        path = root / "rules.bzl"
        path.write_text(path.read_text().replace('" >> "', '" more >> "'))
    changed(bzl)
    assert _out(root, "j.txt") == "p1\np2\nb\nend more\n"

    def build_file():
        """a BUILD file"""
        path = root / "BUILD"
        path.write_text(path.read_text().replace('word = "end"', 'word = "stop"'))
    changed(build_file)
    assert _out(root, "j.txt") == "p1\np2\nb\nstop more\n"

    def new_package():
        """a new package below //..."""
        (root / "sub").mkdir()
        (root / "sub" / "BUILD").write_text(
            'genrule(name = "s", outs = ["s.txt"], cmd = "echo s > $@")\n')
    changed(new_package)
    assert _out(root, "sub/s.txt") == "s\n"

    def output_removed():
        """an output removed"""
        (root / "bp-bin" / "g.txt").unlink()
    changed(output_removed)
    assert _out(root, "g.txt") == "b\n"

    def output_edited():
        """an output edited by hand"""
        path = root / "bp-bin" / "j.txt"
        path.chmod(0o644)
        path.write_text("tampered\n")
    changed(output_edited)
    assert _out(root, "j.txt") == "p1\np2\nb\nstop more\n"

    def file_in_a_tree():
        """a file added inside an output directory (a tree artifact)"""
        sub = root / "bp-bin" / "tree" / "sub"
        sub.chmod(0o755)
        (sub / "extra.txt").write_text("x\n")
    changed(file_in_a_tree)
    assert _out(root, "count.txt").strip() == "1"

    def environment():
        """PATH (for actions that take the shell's environment, and to find tools)"""
        os.environ["PATH"] += os.pathsep + str(root / "no-such-directory")
    changed(environment)
    os.environ["NOOP_WORD"] = "two"   # (no build reads it)
    _, told = build()
    assert told

    def tool_shadowed():
        """a tool found earlier on PATH than before"""
        _tool(build.tools[1] / "noop_tool", "second")
    changed(tool_shadowed)
    assert _out(root, "tool.txt") == "second\n"

    def tool_edited():
        """the tool's own file"""
        _tool(build.tools[1] / "noop_tool", "third")
    changed(tool_edited)
    assert _out(root, "tool.txt") == "third\n"

    def nothing():
        """other flags: another command"""
    changed(nothing, "--keep_going")
    _, told = build()   # (each command keeps its own proof)
    assert told


def test_the_saved_analysis_is_read_once_when_the_proof_cannot_tell(build, monkeypatch):
    """A tool found anew on PATH: the proof says nothing of the actions, but the
    analysis' reads held, and the saved analysis read meanwhile is the one the build
    uses (not read a second time)."""
    from buildpy.analysis import snapshot

    build()
    _, told = build()
    assert told
    reads = []
    load = snapshot.load
    monkeypatch.setattr(snapshot, "load", lambda *a, **k: reads.append(1) or load(*a, **k))
    _tool(build.tools[1] / "noop_tool", "second")
    _, told = build()
    assert not told and reads == [1]
    assert _out(build.root, "tool.txt") == "second\n"


def test_each_proof_after_an_edit_keeps_every_file_as_it_is(build, tmp_path):
    """A build after an edit takes the digests of what the proof still vouches for from
    the proof itself (no digest row read), and writes the next proof from those and what
    it looked at: edit after edit, every file of the proof has, on disk, the stat data,
    digest, size and executable bit the proof keeps for it."""
    root = build.root
    exec_root = exec_root_for(tmp_path / "cache", root)
    build()
    for name, text in [("a.txt", "b\n"), ("parts/1.txt", "q1\n"), ("a.txt", "c\n"),
                       ("parts/1.txt", "p1\n")]:
        (root / name).write_text(text)
        _, told = build()
        assert not told and "//:tool" not in build.looked_at
        (path,) = (root / "bp-out" / ".bp-state" / "noop").iterdir()
        proof, _ = lastbuild.load(path, marshal.loads(path.read_bytes())[1])
        assert proof.changed(exec_root) == []
        for place, file in enumerate(proof.paths):
            full = exec_root / file
            data, st = full.read_bytes(), full.stat()
            assert (proof.stats[place], proof.sha256s[place], proof.executables[place]) == (
                stat_data(st), hashlib.sha256(data).hexdigest(), bool(st.st_mode & 0o111))
    assert _out(root, "j.txt") == "p1\nc\nend\n"


def test_the_reads_of_analysis_are_checked_once_after_a_source_edit(build, monkeypatch):
    """After a source edit, the proof's check of what loading and analysis read stands
    for the saved analysis's own check of the same reads; after a BUILD edit, which
    fails the proof's, the saved analysis checks its own (and fails: analyze)."""
    from buildpy.analysis.snapshot import Snapshot

    root = build.root
    build()
    checks = []
    valid = Snapshot.valid

    def counted(self, *args):
        checks.append("proof" if self.payload is None else "saved analysis")
        return valid(self, *args)

    monkeypatch.setattr(Snapshot, "valid", counted)
    (root / "a.txt").write_text("b\n")
    _, told = build()
    assert not told and checks == ["proof"]
    assert _out(root, "g.txt") == "b\n"
    checks.clear()
    (root / "BUILD").write_text(BUILD.replace('cmd = "cat $< > $@"', 'cmd = "cat $< $< > $@"'))
    build()
    assert checks == ["proof", "saved analysis"]
    assert _out(root, "g.txt") == "b\nb\n"


def test_digest_rows_are_read_one_by_one_then_all_at_once(tmp_path, monkeypatch):
    """A build that looks at few files reads their rows one by one, and from the `_FEW`th
    all at once: the answers are the same either way, none hashed again, and a
    long-lived bp's `rows` holds every row once all were read (before, none: the next
    build reads them again)."""
    for index in range(5):
        (tmp_path / f"f{index}").write_text(f"content {index}")
    db = open_files_db(tmp_path / "out")
    later = 1 << 62   # (a stamp after every file's timestamps: no row is racy)
    first = FileDigests(db, tmp_path, later)
    digests = {f"f{i}": first.digest(f"f{i}") for i in range(5)}
    first.flush()
    monkeypatch.setattr(digests_module, "_FEW", 2)
    again = FileDigests(db, tmp_path, later)
    assert again.digest("f0") == digests["f0"] and again.rows is None
    assert {path: again.digest(path) for path in digests} == digests
    assert again.hashed == 0 and again.rows.keys() == digests.keys()
    db.close()


@pytest.mark.parametrize("chunk", [1 << 20, 4])   # (read whole once, or streamed)
def test_a_file_is_hashed_by_its_content_whether_read_whole_or_streamed(
        tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(digests_module, "_CHUNK", chunk)
    db = open_files_db(tmp_path / "out")
    (tmp_path / "f").write_text("some content")
    digests = FileDigests(db, tmp_path, 1 << 62)
    assert digests.digest("f").sha256 == hashlib.sha256(b"some content").hexdigest()
    digests.flush()
    for text in ("some content", "other content!"):   # touched, then edited
        (tmp_path / "f").write_text(text)
        os.utime(tmp_path / "f", ns=(1, 1 + len(text)))
        again = FileDigests(db, tmp_path, 1 << 62)
        assert again.digest("f").sha256 == hashlib.sha256(text.encode()).hexdigest()
        assert again.hashed == 1
        again.flush()
    db.close()


def test_completions_are_read_one_by_one_then_all_at_once(tmp_path, monkeypatch):
    """As the digest rows: what completed before is read one action at a time while few
    are asked for, then all at once; what this build recorded wins over what it read."""
    from buildpy.execution import executor as executor_module

    db = open_files_db(tmp_path / "out")
    with db:
        db.executemany("INSERT INTO done VALUES (?, ?, ?)",
                       [(f"o{i}", f"fp{i}", f'{{"o{i}": "{i}"}}') for i in range(4)])
    monkeypatch.setattr(executor_module, "_FEW", 2)
    done = executor_module._Completions(db)
    assert done.get("o0") == ("fp0", {"o0": "0"}) and done.get("missing") is None
    assert not done._all
    done["o1"] = ("new", {"o1": "x"})
    assert done.get("o2") == ("fp2", {"o2": "2"}) and done._all   # (the third look)
    assert done.every() == {"o0": ("fp0", {"o0": "0"}), "o1": ("new", {"o1": "x"}),
                            "o2": ("fp2", {"o2": "2"}), "o3": ("fp3", {"o3": "3"})}
    assert done.rows == done.every()
    kept = executor_module._Completions(db, {"o9": ("fp9", {})})
    assert kept.get("o0") is None and kept.get("o9") == ("fp9", {})   # (no reading)
    few = executor_module._Completions(db)
    assert few.get("o0") == ("fp0", {"o0": "0"})
    db.close()
    # a long-lived bp keeps them for its next build only when all were read, as it
    # keeps the digest rows: the database is closed by then
    assert few.rows is None


def test_the_ordinary_way_where_a_proof_cannot_be_given(build, tmp_path):
    root = build.root
    build()
    # flags that write files of this build's own
    for flag in (f"--explain={tmp_path / 'explain.txt'}",
                 f"--profile={tmp_path / 'p.json'}"):
        _, told = build(flag)
        assert not told
    # an action that edits its own input while the build runs: the next build sees it
    path = root / "BUILD"
    path.write_text(path.read_text().replace(
        'cmd = "cat $< > $@"', 'cmd = "cat $< > $@; echo more >> $<"'))
    _, told = build()
    assert not told
    _, told = build()
    assert not told and _out(root, "g.txt") == "a\nmore\n"
    path.write_text(BUILD + 'genrule(name = "st", outs = ["st.txt"], stamp = 1, '
                    'cmd = "cat bp-out/stable-status.txt > $@")\n')
    for _ in range(2):   # the status files are written anew by every build
        _, told = build()
        assert not told


def test_what_moved_is_not_trusted_once_another_bp_held_the_lock(build):
    """Which files moved is found under the workspace lock; if another bp took the lock
    before this build took it again (it could have changed outputs), every action is
    looked at."""
    root = build.root
    build()
    (root / "a.txt").write_text("b\n")
    lock = root / "bp-out" / ".bp-state" / "lock"
    build.between = lambda: lock.write_text("pid 1")   # as another bp leaves it
    _, told = build()
    assert not told and len(build.looked_at) == 5
    assert _out(root, "g.txt") == "b\n"


def test_a_failed_build_leaves_no_proof_and_bp_log_after_a_no_op(build, bp):
    root = build.root
    build()
    path = root / "BUILD"
    text = path.read_text()
    path.write_text(text.replace('cmd = "cat $< > $@"', 'cmd = "exit 1"'))
    result = bp("--nohome_rc", "build", "--spawn_strategy=local", "//...", cwd=root)
    assert result.code == 1
    path.write_text(text)
    _, told = build()
    assert not told
    _, told = build()
    assert told
    log = bp("--nohome_rc", "log", cwd=root)
    assert log.code == 0, log.err
    assert log.out.count("up to date") == 5, log.out


def test_no_proof_when_a_file_looked_different_during_the_build(tmp_path):
    """Two digests of one file, or of one directory, in one build: nothing to vouch
    for."""
    (tmp_path / "f").write_text("one")
    (tmp_path / "d").mkdir()
    db = open_files_db(tmp_path / "out")
    digests = FileDigests(db, tmp_path, stamp_ns=0)
    digests.digest("f")
    digests.digest("d")
    assert not digests.unsteady and digests.trees == {"d"}
    (tmp_path / "f").write_text("two!")
    digests.digest("f")
    assert digests.unsteady
    digests = FileDigests(db, tmp_path, stamp_ns=0)
    digests.digest("d")
    (tmp_path / "d" / "new").write_text("")
    digests.digest("d")
    assert digests.unsteady
    db.close()


def test_a_damaged_or_foreign_proof_is_no_proof(tmp_path):
    proof = lastbuild.Proof(("a",), ((1, 2, 3, 4),), ("0" * 64,), (False,), ("d",),
                            ((0, 1, 1, 2),), ("l",), ((5, 6, 7, 8),), (), 1, b"")
    path = tmp_path / "noop" / "k"
    lastbuild.save(path, "key", proof, {"x": 1})
    assert lastbuild.load(path, "key") == (proof, {"x": 1})
    assert lastbuild.load(path, "other") is None
    path.write_bytes(path.read_bytes()[:-3])
    assert lastbuild.load(path, "key") is None
    assert lastbuild.load(tmp_path / "missing", "key") is None


def test_a_proof_that_cannot_be_written_is_no_proof(build, monkeypatch):
    """A full disk as the proof is saved: the build still succeeds, and the next one
    goes the ordinary way."""
    save = lastbuild.save

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lastbuild, "save", full)
    for _ in range(2):
        _, told = build()
        assert not told
    monkeypatch.setattr(lastbuild, "save", save)
    _, told = build()
    assert not told
    _, told = build()
    assert told


class _Looked:
    """A proof whose files are looked at: what `changed` answers, and whether it ran
    in the test's own process."""

    def __init__(self, answer, fail_in_child: bool = False):
        self.answer = answer
        self.fail_in_child = fail_in_child
        self.parent = os.getpid()
        self.looked_here = 0

    def changed(self, exec_root):
        if os.getpid() != self.parent:
            if self.fail_in_child:
                os._exit(3)
        else:
            self.looked_here += 1
        return self.answer


def test_the_files_are_looked_at_in_a_child_while_the_saved_analysis_is_read():
    proof = _Looked(["pkg/a.txt"])
    assert session_module._changed(proof, Path("/x"), lambda: ("plan",)) == \
        (["pkg/a.txt"], ("plan",))
    assert proof.looked_here == 0


def test_a_child_that_fails_leaves_the_look_to_the_parent():
    proof = _Looked([], fail_in_child=True)
    assert session_module._changed(proof, Path("/x"), lambda: ("plan",)) == ([], ("plan",))
    assert proof.looked_here == 1


def test_no_look_at_the_files_once_the_reads_moved():
    proof = _Looked(None)
    assert session_module._changed(proof, Path("/x"), lambda: None) == (None, None)
    assert proof.looked_here == 0


def test_the_child_is_stopped_when_the_parent_is_interrupted(monkeypatch):
    from buildpy.core import forked

    children = []
    start = forked.start
    monkeypatch.setattr(forked, "start", lambda work: children.append(start(work)) or
                        children[-1])

    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        session_module._changed(_Looked([]), Path("/x"), interrupted)
    assert children and children[0].exit_code is not None   # (reaped: none left behind)
