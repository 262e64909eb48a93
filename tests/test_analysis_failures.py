"""Analysis that fails: --keep_going builds the rest; an analysis test's target under
test (allow_analysis_failures) gives AnalysisFailureInfo; analysis tests' verdicts."""

from __future__ import annotations

import pytest

DEFS = '''
def _fails_impl(ctx):
    fail("no way: " + ctx.label.name)

fails = rule(implementation = _fails_impl)

def _expect_failure_impl(ctx):
    dep = ctx.attr.target_under_test
    causes = dep[AnalysisFailureInfo].causes.to_list() if AnalysisFailureInfo in dep else []
    ok = len(causes) == 1 and "no way: bad" in causes[0].message
    return [AnalysisTestResultInfo(success = ok, message = "causes: %d" % len(causes))]

expect_failure_test = rule(
    implementation = _expect_failure_impl,
    test = True,
    analysis_test = True,
    attrs = {"target_under_test": attr.label(cfg = analysis_test_transition(
        settings = {"//command_line_option:allow_analysis_failures": "True"},
    ))},
)

def _verdict_impl(ctx):
    return [AnalysisTestResultInfo(success = ctx.attr.success, message = "said " + ctx.label.name)]

verdict_test = rule(implementation = _verdict_impl, test = True, analysis_test = True,
                    attrs = {"success": attr.bool()})
'''

BUILD = '''
load(":defs.bzl", "expect_failure_test", "fails", "verdict_test")

fails(name = "bad")

genrule(name = "uses_bad", srcs = [":bad"], outs = ["uses_bad.txt"], cmd = "touch $@")

genrule(name = "ok", outs = ["ok.txt"], cmd = "echo ok > $@")

expect_failure_test(name = "bad_fails_test", target_under_test = ":bad")

verdict_test(name = "yes_test", success = True)

verdict_test(name = "no_test", success = False)
'''


@pytest.mark.parametrize("part", [1000, 1], ids=["one part", "a part per target"])
def test_keep_going_builds_what_does_not_depend_on_a_failed_analysis(bp, ws, part,
                                                                     monkeypatch):
    """Also when each target is analyzed in a part (a Starlark module) of its own: a
    failed target's dependents in later parts are left out too."""
    from buildpy.analysis import analyzer

    monkeypatch.setattr(analyzer, "_PART", part)
    root = ws({"p/defs.bzl": DEFS, "p/BUILD": BUILD})
    result = bp("-C", str(root), "build", "-k", "//p:bad", "//p:uses_bad", "//p:ok")
    assert result.code == 1, result.err
    assert result.err.count("no way: bad") == 1
    assert "could not be loaded or analyzed were left out" in result.err
    bin_dir = next((root / "bp-out").glob("*-fastbuild/bin"))
    assert (bin_dir / "p" / "ok.txt").read_text() == "ok\n"
    assert not (bin_dir / "p" / "uses_bad.txt").exists()


def test_without_keep_going_a_failed_analysis_stops_the_build(bp, ws):
    root = ws({"p/defs.bzl": DEFS, "p/BUILD": BUILD})
    result = bp("-C", str(root), "build", "//p:bad", "//p:ok")
    assert result.code != 0
    assert "no way: bad" in result.err
    assert not list((root / "bp-out").glob("*-fastbuild/bin/p/ok.txt"))


def test_analysis_tests_pass_or_fail_by_their_verdict(bp, ws):
    root = ws({"p/defs.bzl": DEFS, "p/BUILD": BUILD})
    result = bp("-C", str(root), "test", "--test_output=errors", "//p:yes_test",
                "//p:no_test", "//p:bad_fails_test")
    assert result.code == 3, result.out + result.err
    lines = {line.split()[0]: line.split()[1] for line in result.out.splitlines()
             if line.startswith("//")}
    assert lines == {"//p:yes_test": "PASSED", "//p:no_test": "FAILED",
                     "//p:bad_fails_test": "PASSED"}
    assert "said no_test" in result.out


def test_keep_going_builds_the_packages_that_load(bp, ws):
    root = ws({"p/defs.bzl": DEFS, "p/BUILD": BUILD,
               "broken/BUILD": 'load("//broken:nothere.bzl", "x")\n'})
    result = bp("-C", str(root), "build", "-k", "//broken/...", "//p:ok")
    assert result.code == 1, result.err
    assert "cannot load '//broken:nothere.bzl'" in result.err
    assert (root / "bp-bin" / "p" / "ok.txt").read_text() == "ok\n"
    result = bp("-C", str(root), "build", "//broken/...", "//p:ok")
    assert result.code == 2 and "cannot load" in result.err
