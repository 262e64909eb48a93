"""No input makes bp fail as a bug: random labels, patterns, queries and BUILD files (built
from the grammar or mutated byte by byte) through `bp query`, `cquery`, `aquery` and
`build` never exit 37 or by a signal, and never print a Python or Rust traceback.

CI runs a fixed, derandomized set of examples; `BP_FUZZ_EXAMPLES=N` (or `scripts/fuzz
--examples N`) runs N random examples per test with a printed seed (`BP_FUZZ_SEED`
replays one). Failures in areas being fixed elsewhere are listed in `KNOWN_ISSUES`.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from buildpy.cli import main
from tests import fuzz_inputs as fz

# ---- what counts as a bug -----------------------------------------------------------

# 0 ok, 1 build failed, 2 user error, 3 partial result / tests failed, 4 no tests,
# 36 environment error. 8 (interrupted) and 37 (a bug) never come from an input.
ALLOWED_CODES = frozenset({0, 1, 2, 3, 4, 36})
# A Python traceback (Starlark's own tracebacks, `  * fz/BUILD:2, in <module>`, are how
# it reports a user's error), a Rust panic, bp's own word for a bug.
BUG_MARKERS = {
    "a Python traceback": re.compile(r'Traceback \(most recent call last\):\n  File "'),
    "a Rust panic": re.compile(r"panicked at|PanicException"),
    "INTERNAL ERROR": re.compile(r"INTERNAL ERROR"),
}


@dataclass(frozen=True)
class Run:
    command: tuple[str, ...]
    code: int          # negative: killed by that signal (subprocess runs only)
    out: str
    err: str

    def problems(self) -> list[str]:
        found = []
        if self.code not in ALLOWED_CODES:
            found.append(f"exit code {self.code}")
        found += [f"printed {what}" for what, marker in BUG_MARKERS.items()
                  if marker.search(self.err) or marker.search(self.out)]
        return found


@dataclass(frozen=True)
class KnownIssue:
    """A failure in an area another change is fixing; remove the entry once it lands."""
    name: str
    reason: str
    # (the fuzzed input, the run, what is wrong with it) -> is it this one
    matches: Callable[[bytes, Run, list[str]], bool]


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
        return True
    except UnicodeDecodeError:
        return False


KNOWN_ISSUES: tuple[KnownIssue, ...] = ()


def known_issue(data: bytes, run: Run, problems: list[str] | None = None) -> KnownIssue | None:
    problems = run.problems() if problems is None else problems
    return next((issue for issue in KNOWN_ISSUES if issue.matches(data, run, problems)), None)


# ---- how many examples, and which ---------------------------------------------------

LONG_RUN = int(os.environ.get("BP_FUZZ_EXAMPLES", "0"))
SEED = int(os.environ.get("BP_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
_SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
               HealthCheck.data_too_large, HealthCheck.filter_too_much,
               HealthCheck.large_base_example]


def fuzz_settings(ci_examples: int):
    """CI: `ci_examples` derandomized examples. Long run: BP_FUZZ_EXAMPLES random ones
    from the printed seed."""
    if not LONG_RUN:
        common = settings(max_examples=ci_examples, derandomize=True, deadline=None,
                          database=None, suppress_health_check=_SUPPRESSED,
                          print_blob=True)
        return lambda test: common(test)
    common = settings(max_examples=LONG_RUN, deadline=None, database=None,
                      suppress_health_check=_SUPPRESSED, print_blob=True)
    return lambda test: seed(SEED)(common(test))


@pytest.fixture(scope="module", autouse=True)
def _announce_seed():
    if LONG_RUN:
        print(f"\nbp fuzz: {LONG_RUN} examples per test, BP_FUZZ_SEED={SEED}",
              file=sys.__stderr__)
    yield


@dataclass
class Tally:
    """What a long run met: examples, failures per known issue."""
    examples: int = 0
    known: dict[str, int] = field(default_factory=dict)

    def note(self, issue: KnownIssue) -> None:
        self.known[issue.name] = self.known.get(issue.name, 0) + 1


@pytest.fixture(scope="module")
def tally():
    counts = Tally()
    yield counts
    if LONG_RUN or os.environ.get("BP_FUZZ_TALLY"):
        print(f"\nbp fuzz: {counts.examples} runs, known issues met: {counts.known}",
              file=sys.__stderr__)


# ---- running bp ---------------------------------------------------------------------

def _workspace(parent: Path, build: bytes | None = None) -> Path:
    root = Path(tempfile.mkdtemp(dir=parent))
    for name, text in fz.BASE_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for name in fz.EXECUTABLE:
        (root / name).chmod(0o755)
    if build is not None:
        (root / fz.FUZZ_PACKAGE).mkdir()
        (root / fz.FUZZ_PACKAGE / "BUILD").write_bytes(build)
        for name, text in fz.FUZZ_SOURCES.items():
            (root / fz.FUZZ_PACKAGE / name).write_text(text)
        (root / fz.FUZZ_PACKAGE / "s.sh").chmod(0o755)
    return root


def _in_process(capsys, *args: str) -> Run:
    """Run bp in this process, its output going to streams like a real process's: UTF-8,
    stdout strict and stderr with backslashes for what it cannot encode (a byte that is
    not UTF-8 comes from argv as a lone surrogate)."""
    capsys.readouterr()
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(list(args))
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 0
    captured = capsys.readouterr()   # whatever went to the real streams
    texts = []
    for stream, seen in ((out, captured.out), (err, captured.err)):
        stream.flush()
        texts.append(stream.buffer.getvalue().decode("utf-8", errors="replace") + seen)
    return Run(args, code, *texts)


def _subprocess(*args: str) -> Run:
    done = subprocess.run([sys.executable, "-m", "buildpy", *args], capture_output=True,
                          timeout=120)
    return Run(args, done.returncode, done.stdout.decode(errors="replace"),
               done.stderr.decode(errors="replace"))


def _check(data: bytes, run: Run, tally: Tally, more: list[str] = ()) -> None:
    """Fail on what is wrong with `run` (and the caller's own findings, `more`) unless a
    known issue claims it."""
    tally.examples += 1
    problems = run.problems() + list(more)
    if not problems:
        return
    issue = known_issue(data, run, problems)
    if issue is not None:
        tally.note(issue)
        if os.environ.get("BP_FUZZ_SHOW_KNOWN"):
            print(f"\nknown issue {issue.name}: bp {' '.join(run.command)}\n"
                  f"{data[:300]!r}\n{run.err[-1500:]}", file=sys.__stderr__)
        return
    shown = data.decode(errors="backslashreplace")
    if len(shown) > 2000:
        shown = shown[:2000] + f"... ({len(data)} bytes)"
    pytest.fail(f"bp {' '.join(run.command)}: {'; '.join(problems)}\n"
                f"input:\n{shown}\nstdout:\n{run.out[-3000:]}\nstderr:\n{run.err[-5000:]}",
                pytrace=False)


@pytest.fixture
def scratch(tmp_path):
    return tmp_path


# ---- labels, patterns and queries ---------------------------------------------------

@fuzz_settings(60)
@given(words=st.lists(fz.patterns(), min_size=1, max_size=3),
       command=st.sampled_from(["query", "cquery", "build", "aquery", "test", "run"]))
def test_no_target_pattern_is_a_bug(scratch, capsys, tally, words, command):
    root = _workspace(scratch)
    try:
        if command in ("query", "cquery", "aquery"):
            args = (command, " + ".join(f'"{w}"' if '"' not in w else w for w in words))
        else:
            args = (command, "--", *words)
        run = _in_process(capsys, "-C", str(root), *args)
        _check("\n".join(words).encode(errors="surrogateescape"), run, tally)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@fuzz_settings(60)
@given(command=st.sampled_from(["query", "cquery", "aquery", "build"]),
       flags=fz.flag_lists(), rc=st.one_of(st.none(), fz.rc_files()),
       workspace=st.one_of(st.none(), fz.workspace_files()))
def test_no_flag_rc_or_workspace_file_is_a_bug(scratch, capsys, tally, command, flags, rc,
                                               workspace):
    root = _workspace(scratch)
    try:
        if rc is not None:
            (root / ".bprc").write_text(rc, errors="surrogateescape")
        if workspace is not None:
            (root / "WORKSPACE").write_text(workspace, errors="surrogateescape")
        pattern = "//a:g" if command == "build" else "deps(//a:s)"
        run = _in_process(capsys, "-C", str(root), command, *flags, "--", pattern)
        _check(f"{rc}\n{workspace}\n{flags}".encode(errors="surrogateescape"), run, tally)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def query_root(tmp_path_factory):
    """Queries do not write to the workspace's sources: one workspace serves them all."""
    return _workspace(tmp_path_factory.mktemp("query"))


@fuzz_settings(150)
@given(text=fz.queries(), command=st.sampled_from(["query", "query", "cquery", "aquery", "graph"]),
       output=st.sampled_from([None, "label_kind", "build", "graph", "json", "location",
                               "package", "minrank", "maxrank"]),
       keep_going=st.booleans())
def test_no_query_is_a_bug(query_root, capsys, tally, text, command, output, keep_going):
    args = ["-C", str(query_root), command, text]
    if output and command == "query":
        args.append(f"--output={output}")
    if keep_going:
        args.append("--keep_going")
    run = _in_process(capsys, *args)
    _check(text.encode(errors="surrogateescape"), run, tally, misplaced_query_errors(text, run))


MISPLACED = "a query error placed away from what it is about"


def misplaced_query_errors(text: str, run: Run) -> list[str]:
    """A query error must lie within the query; one about a regular expression must
    point at it."""
    lines = text.split("\n")
    for line, column, message in re.findall(r"<query>:(\d+):(\d+): (.*)", run.err):
        line, column = int(line), int(column)
        if not (1 <= line <= len(lines) and 1 <= column <= len(lines[line - 1]) + 1):
            return ["a query error placed outside the query"]
        regex = re.match(r"invalid regular expression '(.*)' in ", message)
        # (stderr shows what it cannot encode, a byte that is not UTF-8, as \udcff)
        if regex and not lines[line - 1][column - 1:].lstrip("\"'").encode(
                "utf-8", "backslashreplace").decode().startswith(regex.group(1)):
            return [MISPLACED]
    return []


@fuzz_settings(3)
@given(text=fz.deep_queries())
def test_no_deep_query_is_a_bug(query_root, capsys, tally, text):
    run = _in_process(capsys, "-C", str(query_root), "query", text)
    _check(text.encode(errors="surrogateescape"), run, tally)


# ---- BUILD files --------------------------------------------------------------------

_OUTPUTS = {   # the --output formats of each read-only command
    "query": [None, "label_kind", "build", "graph", "json", "streamed_jsonproto", "minrank",
              "maxrank", "package", "location"],
    "cquery": [None, "label_kind", "json", "graph", "files", "starlark"],
    "aquery": [None, "summary", "commands", "jsonproto", "inputs", "outputs", "mnemonic",
               "key"],
}


@fuzz_settings(120)
@given(data=fz.build_file_bytes(), command=st.sampled_from(sorted(_OUTPUTS)),
       pattern=st.sampled_from(["//fz:all", "//...", "deps(//fz:*)", "//fz:t0",
                                "buildfiles(//fz:all)", "tests(//...)", "//fz:t1 | rdeps //..."]),
       choice=st.randoms(use_true_random=False))
def test_no_build_file_is_a_bug(scratch, capsys, tally, data, command, pattern, choice):
    root = _workspace(scratch, data)
    try:
        args = ["-C", str(root), command, "--keep_going", pattern]
        output = choice.choice(_OUTPUTS[command])
        if output:
            args.append(f"--output={output}")
        run = _in_process(capsys, *args)
        _check(data, run, tally)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@fuzz_settings(30)
@given(text=fz.valid_build_files(), expr=fz.starlark_exprs())
def test_no_cquery_starlark_expression_is_a_bug(scratch, capsys, tally, text, expr):
    root = _workspace(scratch, text.encode(errors="surrogateescape"))
    try:
        run = _in_process(capsys, "-C", str(root), "cquery", "--keep_going", "//fz:all + //a:g",
                          "--output=starlark", f"--starlark:expr={expr}")
        _check(f"{text}\n--starlark:expr={expr}".encode(errors="surrogateescape"), run, tally)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@fuzz_settings(40)
@given(text=st.one_of(fz.valid_build_files(), fz.build_files(statements=False)),
       keep_going=st.booleans(),
       command=st.sampled_from(["build", "build", "test"]))
def test_building_random_rules_is_no_bug(scratch, capsys, tally, text, keep_going, command):
    """Only commands from `SAFE_COMMANDS` and `s.sh` run: the rules are generated, not
    mutated."""
    root = _workspace(scratch, text.encode(errors="surrogateescape"))
    try:
        args = ["-C", str(root), command, "--spawn_strategy=sandboxed", "//fz:all"]
        if keep_going:
            args.insert(3, "--keep_going")
        run = _in_process(capsys, *args)
        _check(text.encode(errors="surrogateescape"), run, tally)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@fuzz_settings(3)
@given(text=fz.deep_chains(), command=st.sampled_from(["query", "cquery", "aquery", "build"]))
def test_a_long_dependency_chain_is_no_bug(scratch, capsys, tally, text, command):
    root = _workspace(scratch, text.encode(errors="surrogateescape"))
    try:
        pattern = "deps(//fz:c0)" if command != "build" else "//fz:c0"
        run = _in_process(capsys, "-C", str(root), command, pattern)
        _check(text.encode(errors="surrogateescape"), run, tally)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@fuzz_settings(2)
@given(text=fz.crash_class_build_files())
def test_parser_crash_class_inputs_in_a_subprocess(scratch, tally, text):
    """Few examples: each takes a process (they have crashed the Starlark parser)."""
    root = _workspace(scratch, text.encode(errors="surrogateescape"))
    try:
        _check(text.encode(errors="surrogateescape"), _subprocess("-C", str(root), "query", "//fz:all"), tally)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---- damaged state ------------------------------------------------------------------

def _state_files(root: Path, cache: Path) -> list[Path]:
    return sorted(p for top in (root / "bp-out" / ".bp-state", cache)
                  for p in top.rglob("*") if p.is_file() and not p.is_symlink()
                  and p.name not in ("lock", "gc.lock"))


@fuzz_settings(10)
@given(damage=fz.damages(), edit=st.booleans(),
       command=st.sampled_from(["build", "build", "test", "aquery"]))
def test_damaged_state_is_no_bug(scratch, capsys, tally, damage, edit, command):
    """A build, then one file of bp's state or cache damaged, then another command."""
    root = _workspace(scratch)
    cache = root.parent / (root.name + "-cache")
    try:
        first = _in_process(capsys, "-C", str(root), "build", f"--disk_cache={cache}", "//...")
        assert first.code == 0, first.err
        files = _state_files(root, cache)
        index, how, at = damage
        target = files[index % len(files)]
        fz.damage(target, how, at)
        if edit:
            (root / "a" / "x.txt").write_text("edited\n")
        run = _in_process(capsys, "-C", str(root), command, f"--disk_cache={cache}", "//...")
        where = target.relative_to(cache if cache in target.parents else root)
        _check(f"damage:{where}:{how}:{at}".encode(), run, tally)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)


# ---- bugs the fuzz found ------------------------------------------------------------

def test_a_scribbled_process_journal_is_read_as_far_as_it_makes_sense(tmp_path):
    """bp-out/.bp-state/running.log with bytes that are not UTF-8 (a crash, a bad disk)
    made the next build fail as a bug (UnicodeDecodeError)."""
    from buildpy.execution.spawn import ProcessRegistry

    journal = tmp_path / "running.log"
    journal.write_bytes(b"+12 3.5\n+\xbd\xff 1\n+13 4.0\n-\xd9\xa3\n+\xc2\xb2 1.0\n-\xc2\xb2\n-13\n"
                        b"+99999999999999999999999 1.0\n+14 nan\n\x00\x00")
    registry = ProcessRegistry(journal)
    try:
        assert registry.running() == {12: 3.5, 99999999999999999999999: 1.0}
        assert registry.reap() == 0   # neither is a live session leader started then
    finally:
        registry.close()


def test_a_starlark_expression_that_is_not_utf8_is_a_user_error(ws, bp):
    """Bytes that are not UTF-8 reach Python as lone surrogates (`\\udcff`); the
    expression went to the Starlark parser, which cannot encode them (exit 37)."""
    root = ws({"a/BUILD": 'genrule(name = "g", outs = ["g.out"], cmd = "true")\n'})
    result = bp("-C", str(root), "cquery", "//a:g", "--output=starlark",
                '--starlark:expr="\udcff"')
    assert result.code == 2
    assert result.err == ("ERROR: --starlark:expr is not valid UTF-8: '\"\\udcff\"'\n"
                          "hint: for example --starlark:expr='str(target.label)'\n")


def test_an_rc_file_that_is_not_utf8_is_a_user_error_at_its_first_bad_byte(ws, bp):
    root = ws({"a/BUILD": ""})
    (root / ".bprc").write_bytes(b"# defaults\nbuild --jobs=\xff2\n")
    result = bp("-C", str(root), "query", "//a:all")
    assert result.code == 2
    rc = root / ".bprc"
    assert result.err == (f"ERROR: {rc}:2:14: invalid UTF-8 in {rc}: byte 0xff (invalid "
                          "start byte)\n"
                          "2 | build --jobs=\ufffd2\n"
                          "  |              ^\n"
                          "hint: rc files must be UTF-8 text; save it as UTF-8\n")


def test_a_regular_expression_with_a_huge_repetition_is_a_user_error(ws, bp):
    """Python's `re` raises OverflowError, not re.error, for `a{99999999999}`."""
    root = ws({"a/BUILD": 'genrule(name = "g", outs = ["g.out"], cmd = "true")\n'})
    for command, query in (("query", 'kind("a{99999999999}", //a:g)'),
                           ("aquery", 'mnemonic("x{1,99999999999}", //a:g)')):
        result = bp("-C", str(root), command, query)
        assert result.code == 2, result.err
        pattern = re.search(r"\w\{[0-9,]+\}", query).group(0)
        assert (f"invalid regular expression '{pattern}' in {query.split('(')[0]}(): the "
                f"repetition number is too large\n") in result.err


def test_a_test_suite_with_select_in_tests_is_a_user_error(ws, bp):
    """As in Bazel, test_suite's `tests` is not configurable: tests() and bp test expand
    suites without a configuration, and a select() there made them exit 37."""
    root = ws({"t/BUILD": 'test_suite(name = "s", tests = select({"//conditions:default": '
                          '[]}))\n'})
    for args in (("query", "tests(//...)"), ("test", "//...")):
        result = bp("-C", str(root), *args)
        assert result.code == 2, result.err
        assert result.err == (
            "ERROR: t/BUILD:1:24: test_suite rule '//t:s': attribute 'tests' is not "
            "configurable\n"
            '1 | test_suite(name = "s", tests = select({"//conditions:default": []}))\n'
            "  |                        ^\n"
            "hint: use a plain value instead of select()\n")


# ---- the harness itself -------------------------------------------------------------

def test_the_checks_see_a_bug():
    """A run exiting 37 with a traceback is a failure, unless a known issue claims it."""
    bug = Run(("query", "x"), 37, "", "INTERNAL ERROR (a bug in bp)\n"
              'Traceback (most recent call last):\n  File "x.py", line 1\nKeyError: 1\n')
    assert bug.problems() == ["exit code 37", "printed a Python traceback",
                              "printed INTERNAL ERROR"]
    starlark = ("ERROR: error loading package '//fz':\nTraceback (most recent call last):\n"
                "  * fz/BUILD:2, in <module>\n      int(\"x\")\nerror: Cannot parse\n")
    assert Run(("query", "x"), 2, "", starlark).problems() == []
    assert Run(("query", "x"), 2, "", "thread 'main' panicked at x.rs").problems() == [
        "printed a Rust panic"]
    assert known_issue(b"x", bug) is None
    assert Run(("query", "x"), -11, "", "").problems() == ["exit code -11"]
    assert Run(("query", "x"), 2, "", "ERROR: <query>:1:1: bad\n").problems() == []


def test_in_process_runs_see_what_bp_prints(tmp_path, capsys):
    root = _workspace(tmp_path)
    run = _in_process(capsys, "-C", str(root), "query", "//a:g + //a:\udcff")
    assert (run.code, run.out) == (2, "")
    assert "ERROR: <query>:1:13: " in run.err and "\\udcff" in run.err
    run = _in_process(capsys, "-C", str(root), "query", "//a:g")
    assert (run.code, run.out) == (0, "//a:g\n")


def test_a_misplaced_query_error_is_seen():
    at_call = Run(("query",), 2, "", "ERROR: <query>:1:1: invalid regular expression '[' "
                  "in attr(): unterminated character set at position 0\n")
    assert misplaced_query_errors('attr(cmd, "[", //a:g)', at_call) == [MISPLACED]
    at_word = Run(("query",), 2, "", "ERROR: <query>:1:11: invalid regular expression '[' "
                  "in attr(): unterminated character set at position 0\n")
    assert misplaced_query_errors('attr(cmd, "[", //a:g)', at_word) == []
    outside = Run(("query",), 2, "", "ERROR: <query>:1:30: no such package\n")
    assert misplaced_query_errors("//nope:x", outside) == [
        "a query error placed outside the query"]


def test_known_issues_say_why():
    assert all(issue.reason and re.fullmatch(r"[a-z0-9-]+", issue.name)
               for issue in KNOWN_ISSUES)


def test_a_regex_holding_a_byte_that_is_not_utf8_is_placed_right():
    text = 'filter(")\udcff", //a:g)'
    run = Run(("query",), 2, "", "ERROR: <query>:1:8: invalid regular expression "
              "')\\udcff' in filter(): unbalanced parenthesis at position 0\n")
    assert misplaced_query_errors(text, run) == []
