"""Configuration: platforms, select() resolution, compatibility, toolchains, bp cquery."""

from __future__ import annotations

import json

import pytest

CONFIG_WS = {
    "WORKSPACE": 'register_toolchains("//tc:all")\n',
    "platforms/BUILD": '''
        package(default_visibility = ["//visibility:public"])
        platform(name = "x86", constraint_values = ["@platforms//os:linux", "@platforms//cpu:x86_64"])
        platform(name = "arm", constraint_values = ["@platforms//os:linux",
                                                    "@platforms//cpu:aarch64"])
        platform(name = "arm_child", parents = [":arm"], exec_properties = {"pool": "big"})
        platform(name = "win", constraint_values = ["@platforms//os:windows",
                                                    "@platforms//cpu:x86_64"])
        platform(name = "twice", constraint_values = ["@platforms//cpu:x86_64",
                                                      "@platforms//cpu:arm64"])
        config_setting(name = "is_arm", constraint_values = ["@platforms//cpu:arm64"])
        config_setting(name = "is_linux", constraint_values = ["@platforms//os:linux"])
        config_setting(name = "arm_linux", constraint_values = ["@platforms//cpu:arm64",
                                                                "@platforms//os:linux"])
        config_setting(name = "opt", values = {"compilation_mode": "opt"})
        config_setting(name = "k8", values = {"cpu": "k8"})
        config_setting(name = "fancy", define_values = {"fancy": "yes"})
        config_setting(name = "fancy_define", values = {"define": "fancy=yes"})
        ''',
    "tc/BUILD": '''
        load(":defs.bzl", "tool_info")
        toolchain_type(name = "type", visibility = ["//visibility:public"])
        tool_info(name = "linux_tool", path = "/bin/linux")
        toolchain(name = "linux", toolchain_type = ":type", toolchain = ":linux_tool",
                  target_compatible_with = ["@platforms//os:linux"])
        ''',
    "tc/defs.bzl": '''
        def _impl(ctx):
            return []
        tool_info = rule(implementation = _impl, attrs = {"path": attr.string()})
        uses_tool = rule(implementation = _impl, toolchains = ["//tc:type"],
                         attrs = {"deps": attr.label_list(),
                                  "tool": attr.label(cfg = "exec", executable = True)})
        ''',
    "bad/BUILD": '''
        genrule(name = "strict", outs = ["s"], cmd = select(
            {"//platforms:is_arm": "a"}, no_match_error = "strict only builds for arm"))
        genrule(
            name = "bare",
            outs = ["b"],
            cmd = select({"//platforms:is_arm": "a"}),
        )
        genrule(name = "ambiguous", outs = ["a"], cmd = select({
            "//platforms:is_arm": "a", "//platforms:is_linux": "l"}))
        ''',
    "app/BUILD": '''
        load("//tc:defs.bzl", "uses_tool")
        genrule(
            name = "flags",
            outs = ["flags.txt"],
            cmd = select({
                "//platforms:is_arm": "echo arm",
                "//conditions:default": "echo other",
            }) + select({"//platforms:opt": " opt", "//conditions:default": ""}),
            srcs = ["base.txt"] + select({
                "//platforms:arm_linux": ["arm_linux.txt"],
                "//platforms:is_arm": ["arm.txt"],
                "//conditions:default": [],
            }),
        )
        genrule(name = "defines", outs = ["d"], cmd = select({
            "//platforms:fancy": "fancy", "//platforms:k8": "k8",
            "//conditions:default": "plain"}))
        genrule(name = "by_constraint", outs = ["c"], cmd = select({
            "@platforms//os:windows": "win", "//conditions:default": "unix"}))
        genrule(name = "windows_only", outs = ["w"], cmd = "w",
                target_compatible_with = ["@platforms//os:windows"])
        filegroup(name = "needs_windows", srcs = [":windows_only"])
        uses_tool(name = "tooled", tool = ":flags")
        ''',
}


@pytest.fixture
def cq(bp, ws):
    root = ws(CONFIG_WS)

    def run(*args: str, code: int = 0):
        result = bp("-C", str(root), "cquery", *args)
        assert result.code == code, result.err
        return result.out.splitlines() if code == 0 else result.err

    run.root = root
    return run


def cmd(cq, target, *flags):
    return cq(target, "--output=starlark", "--starlark:expr=target.attr.cmd", *flags)


def test_select_follows_platform_and_compilation_mode(cq):
    assert cmd(cq, "//app:flags", "--platforms=//platforms:x86") == ["echo other"]
    assert cmd(cq, "//app:flags", "--platforms=//platforms:arm", "-c", "opt") == [
        "echo arm opt"]
    assert cmd(cq, "//app:flags", "--platforms=//platforms:arm_child") == ["echo arm"]


def test_specialization_wins(cq):
    srcs = cq("//app:flags", "--platforms=//platforms:arm", "--output=starlark",
              "--starlark:expr=target.attr.srcs")
    assert srcs == ['["//app:base.txt", "//app:arm_linux.txt"]']


def test_defines_and_values(cq):
    assert cmd(cq, "//app:defines", "--platforms=//platforms:arm") == ["plain"]
    assert cmd(cq, "//app:defines", "--platforms=//platforms:x86") == ["k8"]
    assert cmd(cq, "//app:defines", "--platforms=//platforms:arm", "--define",
               "fancy=yes") == ["fancy"]
    assert cmd(cq, "//app:by_constraint", "--platforms=//platforms:win") == ["win"]


def test_no_matching_branch_lists_the_conditions(cq):
    err = cq("//bad:bare", "--platforms=//platforms:x86", code=2)
    hash_ = cq("//app:flags", "--platforms=//platforms:x86")[0].split("(")[1][:-1]
    assert err == (
        "ERROR: bad/BUILD:6:5: configurable attribute 'cmd' in '//bad:bare' doesn't match "
        f"this configuration (platform '//platforms:x86', fastbuild, {hash_})\n"
        "conditions checked:\n  //platforms:is_arm\n"
        '6 |     cmd = select({"//platforms:is_arm": "a"}),\n'
        "  |     ^\n"
        "hint: add a '//conditions:default' branch, or build for a configuration that one "
        "of the conditions matches\n")
    err = cq("//bad:strict", "--platforms=//platforms:x86", code=2)
    assert ": strict only builds for arm\nconditions checked:\n  //platforms:is_arm\n" in err


def test_ambiguous_match(cq):
    err = cq("//bad:ambiguous", "--platforms=//platforms:arm", code=2)
    assert err.startswith(
        "ERROR: bad/BUILD:8:43: ambiguous match on configurable attribute 'cmd' in "
        "'//bad:ambiguous' (configuration ")
    assert ("these conditions all match:\n  //platforms:is_arm\n  //platforms:is_linux\n"
            "multiple matches are allowed only when one condition is more specialized than "
            "all the others") in err


def test_unknown_and_bad_platforms(cq):
    assert cq("//app:flags", "--platforms=//platforms:x68", code=2) == (
        "ERROR: unknown platform '//platforms:x68': no such target '//platforms:x68': target "
        "'x68' not declared in package 'platforms' defined by platforms/BUILD; did you mean "
        "'//platforms:x86'?\n"
        "hint: name a platform() target, e.g. --platforms=//platforms:linux_x86_64\n")
    assert cq("//app:flags", "--platforms=//platforms:opt", code=2).startswith(
        "ERROR: platforms/BUILD:14:15: '//platforms:opt' is a config_setting rule, not a "
        "platform\n")
    assert cq("//app:flags", "--platforms=//platforms:twice", code=2).startswith(
        "ERROR: platforms/BUILD:8:9: platform '//platforms:twice' has two values for "
        "constraint setting '@platforms//cpu:cpu': "
        "'@platforms//cpu:x86_64' and '@platforms//cpu:arm64'\n")


def test_incompatible_targets(cq):
    assert "//app:windows_only" not in " ".join(cq("//app:all", "--platforms=//platforms:x86"))
    assert "//app:needs_windows" not in " ".join(cq("//app:all", "--platforms=//platforms:x86"))
    assert cq("//app:windows_only", "--platforms=//platforms:x86", code=2).startswith(
        "ERROR: app/BUILD:20:8: target '//app:windows_only' is incompatible with the target "
        "platform '//platforms:x86' and was requested by name: it needs "
        "'@platforms//os:windows'\n")
    assert "it depends on '//app:windows_only', which needs '@platforms//os:windows'" \
        in cq("//app:needs_windows", "--platforms=//platforms:x86", code=2)
    assert cq("//app:windows_only", "--platforms=//platforms:win")[0].startswith(
        "//app:windows_only (")


def test_toolchains_and_exec_configuration(cq):
    lines = cq("deps(//app:tooled, 1)", "--platforms=//platforms:arm")
    tooled = next(l for l in lines if l.startswith("//app:tooled"))
    flags = next(l for l in lines if l.startswith("//app:flags"))
    assert "//tc:linux_tool " + tooled.split(" ")[1] in lines
    assert flags.split(" ")[1] != tooled.split(" ")[1]  # the tool is exec-configured
    assert cq("config(//app:flags, exec)") == [flags]
    err = cq("//app:tooled", "--platforms=//platforms:win", code=2)
    assert err == (
        "ERROR: app/BUILD:23:10: no matching toolchain for type '//tc:type', needed by "
        "'//app:tooled': target platform '//platforms:win', execution platforms tried: "
        "'@platforms//:host'\n"
        "hint: register a toolchain() of this type whose constraints these platforms meet "
        "(register_toolchains() in WORKSPACE, or --extra_toolchains)\n")


def test_cquery_outputs(cq):
    label = cq("//app:flags", "--platforms=//platforms:arm")[0]
    assert label.startswith("//app:flags (") and len(label.split("(")[1]) == 8
    assert cq("//app:flags", "--output=label_kind")[0].startswith("genrule rule //app:flags (")
    record = json.loads("\n".join(cq("//app:flags", "--output=json",
                                     "--platforms=//platforms:arm")))[0]
    assert record["attributes"]["cmd"] == "echo arm"
    assert record["configuration"] == label.split("(")[1][:-1]
    files = cq("//app:flags", "--output=files", "--platforms=//platforms:arm")
    assert files == ["bp-out/linux_arm64-fastbuild/bin/app/flags.txt"]
    assert cq("//app:base.txt") == ["//app:base.txt (null)"]
    assert cq("buildfiles(//app:flags)", code=2).startswith(
        "ERROR: buildfiles() is not available in bp cquery")


def test_config_command(bp, cq):
    listing = bp("-C", str(cq.root), "config", "--platforms=//platforms:arm").out.splitlines()
    assert listing[0] == "Available configurations:"
    target_hash, kind, platform, mode = listing[1].split()
    assert (kind, platform, mode) == ("target", "//platforms:arm", "fastbuild")
    shown = bp("-C", str(cq.root), "config", target_hash, "--platforms=//platforms:arm").out
    assert shown.startswith(f"Configuration {target_hash}:\n  platform: \"//platforms:arm\"")
    assert '  cpu: "arm64"' in shown


def test_registered_execution_platforms_and_extra_toolchains(bp, ws):
    root = ws({**CONFIG_WS,
               "WORKSPACE": 'register_toolchains("//tc:all")\n'
                            'register_execution_platforms("//platforms:arm")\n',
               "tc2/BUILD": '''
                   load("//tc:defs.bzl", "tool_info")
                   tool_info(name = "win_tool", path = "c:/tool.exe")
                   toolchain(name = "win", toolchain_type = "//tc:type",
                             toolchain = ":win_tool",
                             exec_compatible_with = ["@platforms//cpu:arm64"],
                             target_compatible_with = ["@platforms//os:windows"])
                   '''})
    listing = bp("-C", str(root), "config").out.splitlines()
    assert [line.split()[1:3] for line in listing[1:]] == [
        ["target", "@platforms//:host"], ["exec", "//platforms:arm"],
        ["exec", "@platforms//:host"]]
    result = bp("-C", str(root), "cquery", "//app:tooled", "--platforms=//platforms:win",
                "--extra_toolchains=//tc2:all", "--output=json")
    assert result.code == 0, result.err
    record = json.loads(result.out)[0]
    assert record["execution_platform"] == "//platforms:arm"
    assert list(record["toolchains"]) == ["//tc:type"]
    assert record["toolchains"]["//tc:type"].startswith("//tc2:win_tool (")


def test_cpu_values_use_bazels_cpu_names(bp, ws):
    """`values = {"cpu": ...}` and $(TARGET_CPU) say what Bazel's --cpu says: `k8` on
    Linux x86-64; macOS and Windows names never match there (they did, as aliases)."""
    root = ws({
        "BUILD": '''
            platform(name = "linux", constraint_values = [
                "@platforms//os:linux", "@platforms//cpu:x86_64"])
            platform(name = "win", constraint_values = [
                "@platforms//os:windows", "@platforms//cpu:x86_64"])
            platform(name = "arm", constraint_values = [
                "@platforms//os:linux", "@platforms//cpu:aarch64"])
            [config_setting(name = cpu, values = {"cpu": cpu}) for cpu in [
                "k8", "x86_64", "darwin", "darwin_x86_64", "x64_windows", "aarch64", "arm64"]]
            genrule(name = "which", outs = ["which.txt"], cmd = select({
                ":k8": "echo k8", ":x64_windows": "echo windows", ":aarch64": "echo aarch64",
                "//conditions:default": "echo none"}) + select({
                "//conditions:default": " $(TARGET_CPU) > $@"}))
            genrule(name = "never", outs = ["never.txt"], cmd = select({
                ":x86_64": "x86_64", ":darwin": "darwin", ":darwin_x86_64": "darwin_x86_64",
                ":arm64": "arm64", "//conditions:default": "echo none > $@"}))
        '''})
    for platform, expected in (("linux", "k8 k8"), ("win", "windows x64_windows"),
                               ("arm", "aarch64 aarch64")):
        done = bp("-C", str(root), "build", "//:which", "//:never", f"--platforms=//:{platform}")
        assert done.code == 0, done.err
        out = root / "bp-out"
        [which] = out.glob("*/bin/which.txt")
        assert which.read_text() == expected + "\n", platform
        [never] = out.glob("*/bin/never.txt")
        assert never.read_text() == "none\n", platform
        for path in out.glob("*/bin/*.txt"):
            path.unlink()
