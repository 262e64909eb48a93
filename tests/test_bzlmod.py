"""Bzlmod: MODULE.bazel, a local registry in Bazel's layout (file://) with three modules
and a diamond of versions, minimal version selection, repo_name, module extensions with
tags from several modules, use_repo_rule, overrides (local_path with Debian's
bazel-skylib, archive, single_version), `bp mod graph`, and the errors."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

BP = [sys.executable, "-m", "buildpy"]
SKYLIB = Path("/usr/share/bazel/tools/skylib")
RULES_CC = Path("/usr/share/bazel/rules/cc")

EXTENSION = '''
def _gen_impl(ctx):
    ctx.file("WORKSPACE", "")
    ctx.file("BUILD", ('genrule(name = "hi", outs = ["hi.txt"], cmd = "echo %s > $@", ' +
                       'visibility = ["//visibility:public"])') % ctx.attr.word)

gen = repository_rule(implementation = _gen_impl, attrs = {"word": attr.string()})

def _ext_impl(mctx):
    words = []
    for mod in mctx.modules:
        for w in mod.tags.word:
            words.append("%s:%s" % (mod.name, w.text))
    gen(name = "greetings", word = ",".join(words))

c_ext = module_extension(
    implementation = _ext_impl,
    tag_classes = {"word": tag_class(attrs = {"text": attr.string()})},
)
'''


def _bp(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*BP, "--nohome_rc", *args], cwd=root, capture_output=True,
                          text=True, timeout=300)


def _integrity(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def _publish(base: Path, name: str, version: str, files: dict[str, str],
             patches: dict[str, str] | None = None) -> str:
    """Put module name@version in the registry at base/registry, its source a tar.gz
    archive with a top directory, with `patches` (name -> text, applied with -p1);
    returns the archive's integrity."""
    archive = base / "archives" / f"{name}-{version}.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for relative, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-{version}/{relative}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    integrity = _integrity(archive.read_bytes())
    directory = base / "registry" / "modules" / name / version
    (directory / "patches").mkdir(parents=True, exist_ok=True)
    (directory / "MODULE.bazel").write_text(files["MODULE.bazel"])
    for patch, text in (patches or {}).items():
        (directory / "patches" / patch).write_text(text)
    (directory / "source.json").write_text(json.dumps({
        "url": f"file://{archive}", "integrity": integrity,
        "strip_prefix": f"{name}-{version}", "patch_strip": 1,
        "patches": {p: _integrity(t.encode()) for p, t in (patches or {}).items()}}))
    return integrity


@pytest.fixture
def registry(tmp_path):
    """a@1.0 -> c@1.0; b@1.0 -> c@1.1 (the diamond); c has a module extension."""
    for version in ("1.0", "1.1"):
        _publish(tmp_path, "c", version, {
            "MODULE.bazel": f'module(name = "c", version = "{version}")\n',
            "BUILD": f'genrule(name = "ver", outs = ["ver.txt"], cmd = "echo c {version} > $@",'
                     ' visibility = ["//visibility:public"])\n',
            "ext.bzl": EXTENSION})
    _publish(tmp_path, "a", "1.0", {
        "MODULE.bazel": 'module(name = "a", version = "1.0")\n'
                        'bazel_dep(name = "c", version = "1.0")\n'
                        'ext = use_extension("@c//:ext.bzl", "c_ext")\n'
                        'ext.word(text = "from_a")\n',
        "BUILD": 'genrule(name = "a", srcs = ["@c//:ver"], outs = ["a.txt"], cmd = "cat $< > $@",'
                 ' visibility = ["//visibility:public"])\n'})
    _publish(tmp_path, "b", "1.0", {
        "MODULE.bazel": 'module(name = "b", version = "1.0")\n'
                        'bazel_dep(name = "c", version = "1.1")\n',
        "BUILD": 'genrule(name = "b", outs = ["b.txt"], cmd = "echo b > $@",'
                 ' visibility = ["//visibility:public"])\n'},
        patches={"louder.patch": "--- a/BUILD\n+++ b/BUILD\n@@ -1 +1 @@\n"
                                 '-genrule(name = "b", outs = ["b.txt"], cmd = "echo b > $@",'
                                 ' visibility = ["//visibility:public"])\n'
                                 '+genrule(name = "b", outs = ["b.txt"], cmd = "echo B > $@",'
                                 ' visibility = ["//visibility:public"])\n'})
    return f"--registry=file://{tmp_path / 'registry'}"


ROOT_MODULE = """
    module(name = "root", version = "0.1")
    bazel_dep(name = "a", version = "1.0")
    bazel_dep(name = "b", version = "1.0", repo_name = "bee")
    ext = use_extension("@c//:ext.bzl", "c_ext")
    ext.word(text = "from_root")
    use_repo(ext, "greetings")
"""


def test_a_diamond_of_versions_extensions_and_repo_names(ws, registry, tmp_path):
    root = ws({
        "MODULE.bazel": ROOT_MODULE,
        "BUILD": 'genrule(name = "all", srcs = ["@a//:a", "@bee//:b", "@greetings//:hi"], '
                 'outs = ["all.txt"], cmd = "cat $(SRCS) > $@")\n'})
    (root / "WORKSPACE").unlink()   # a Bzlmod workspace needs none
    cache = f"--repository_cache={tmp_path / 'repos'}"
    done = _bp(root, "build", registry, cache, "//:all")
    assert done.returncode == 0, done.stderr
    # c@1.1 is selected for both; the extension sees the root module's tags first
    assert (root / "bp-bin" / "all.txt").read_text() == \
        "c 1.1\nB\nroot:from_root,a:from_a\n"
    done = _bp(root, "mod", "graph", registry, cache)
    assert done.stdout.splitlines() == [
        "<root> (root@0.1)",
        "├───a@1.0",
        "│   └───c@1.1",
        "└───b@1.0",
        "    └───c@1.1 (*)",
    ]


def test_single_version_override_and_archive_override(ws, registry, tmp_path):
    _publish(tmp_path / "elsewhere", "b", "9.9", {
        "MODULE.bazel": 'module(name = "b", version = "9.9")\n',
        "BUILD": 'genrule(name = "b", outs = ["b.txt"], cmd = "echo b from an archive > $@",'
                 ' visibility = ["//visibility:public"])\n'})
    archive = tmp_path / "elsewhere" / "archives" / "b-9.9.tar.gz"
    integrity = "sha256-" + base64.b64encode(hashlib.sha256(archive.read_bytes()).digest()
                                             ).decode()
    root = ws({
        "MODULE.bazel": ROOT_MODULE + f"""
    single_version_override(module_name = "c", version = "1.0")
    archive_override(module_name = "b", urls = ["file://{archive}"], integrity = "{integrity}",
                     strip_prefix = "b-9.9")
""",
        "BUILD": 'genrule(name = "all", srcs = ["@a//:a", "@bee//:b"], '
                 'outs = ["all.txt"], cmd = "cat $(SRCS) > $@")\n'})
    done = _bp(root, "build", registry, f"--repository_cache={tmp_path / 'repos'}", "//:all")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "all.txt").read_text() == "c 1.0\nb from an archive\n"


def test_use_repo_rule_in_the_root_module(ws, registry, tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("fetched by http_file\n")
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    root = ws({
        "MODULE.bazel": f"""
            http_file = use_repo_rule("@bazel_tools//tools/build_defs/repo:http.bzl", "http_file")
            http_file(name = "data", urls = ["file://{data}"], sha256 = "{sha}")
        """,
        "BUILD": 'genrule(name = "d", srcs = ["@data//file"], outs = ["d.txt"], '
                 'cmd = "cat $< > $@")\n'})
    done = _bp(root, "build", f"--repository_cache={tmp_path / 'repos'}", "//:d")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "d.txt").read_text() == "fetched by http_file\n"


def test_module_errors(ws, registry, tmp_path):
    root = ws({"MODULE.bazel": 'bazel_dep(name = "a", version = "2.0")\n', "BUILD": ""})
    done = _bp(root, "query", registry, "//...")
    assert done.returncode != 0
    assert "MODULE.bazel:1:10: module 'a' has no version '2.0' in file://" in done.stderr, \
        done.stderr
    root = ws({"MODULE.bazel": ROOT_MODULE.replace('use_repo(ext, "greetings")',
                                                   'use_repo(ext, "greeting")')})
    done = _bp(root, "query", registry, f"--repository_cache={tmp_path / 'repos'}", "//...")
    assert "module extension 'c_ext' of @c//:ext.bzl does not make repository 'greeting'; " \
           "did you mean 'greetings'?" in done.stderr, done.stderr


@pytest.mark.skipif(not (SKYLIB / "lib" / "paths.bzl").exists()
                    or not (RULES_CC / "cc" / "defs.bzl").exists(),
                    reason="Debian's bazel-skylib and bazel-rules-cc are not installed "
                           "(scripts/install-test-deps)")
def test_debians_skylib_and_rules_cc_as_local_path_overrides(ws, tmp_path):
    """rules_cc's own MODULE.bazel is followed (its dependencies on bazel_skylib and
    platforms); its cc_configure extension, which sets up Bazel's C++ toolchain, is
    replaced by bp's toolchain."""
    root = ws({
        "MODULE.bazel": f"""
            bazel_dep(name = "bazel_skylib", version = "1.0.3")
            bazel_dep(name = "rules_cc", version = "0.0.4")
            bazel_dep(name = "platforms", version = "0.0.4")   # bp's own
            local_path_override(module_name = "bazel_skylib", path = "{SKYLIB}")
            local_path_override(module_name = "rules_cc", path = "{RULES_CC}")
        """,
        "BUILD": """
            load("@bazel_skylib//lib:paths.bzl", "paths")
            load("@bazel_skylib//rules:write_file.bzl", "write_file")
            load("@rules_cc//cc:defs.bzl", "cc_binary")
            write_file(name = "w", out = paths.join("out", "w.c"),
                       content = ["#include <stdio.h>",
                                  "int main(void) { puts(\\"via rules_cc\\"); }"])
            cc_binary(name = "hello", srcs = [":w"])
            genrule(name = "run", outs = ["run.txt"], tools = [":hello"],
                    cmd = "$(location :hello) > $@")
        """})
    if __import__("shutil").which("cc") is None and __import__("shutil").which("gcc") is None:
        pytest.skip("no C compiler")
    done = _bp(root, "build", "//:run")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "run.txt").read_text() == "via rules_cc\n"
    done = _bp(root, "mod", "graph")
    assert done.stdout.splitlines() == [
        "<root> (root@_)", "├───bazel_skylib@_", "└───rules_cc@_",
        "    └───bazel_skylib@_ (*)"], done.stdout


@pytest.mark.skipif(__import__("shutil").which("git") is None, reason="no git")
def test_git_override_from_a_local_clone(ws, registry, tmp_path):
    remote = tmp_path / "b-git"
    remote.mkdir()
    (remote / "MODULE.bazel").write_text('module(name = "b", version = "3.0")\n')
    (remote / "BUILD").write_text('genrule(name = "b", outs = ["b.txt"], cmd = "echo b from git '
                                  '> $@", visibility = ["//visibility:public"])\n')
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(remote)]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "one"]):
        subprocess.run(git + args, check=True, capture_output=True)
    commit = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    root = ws({
        "MODULE.bazel": f"""
            bazel_dep(name = "b", version = "1.0")
            git_override(module_name = "b", remote = "{remote}", commit = "{commit}")
        """,
        "BUILD": 'genrule(name = "all", srcs = ["@b//:b"], outs = ["all.txt"], '
                 'cmd = "cat $< > $@")\n'})
    done = _bp(root, "build", registry, f"--repository_cache={tmp_path / 'repos'}", "//:all")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "all.txt").read_text() == "b from git\n"
    done = _bp(root, "mod", "graph", registry)
    assert done.stdout.splitlines() == ["<root> (root@_)", "└───b@_"]


def test_each_module_has_its_own_repository_mapping(ws, registry, tmp_path):
    """`@see` means module c inside d (its bazel_dep's repo_name), and module b in the
    root module."""
    _publish(tmp_path, "d", "1.0", {
        "MODULE.bazel": 'module(name = "d", version = "1.0")\n'
                        'bazel_dep(name = "c", version = "1.0", repo_name = "see")\n',
        "BUILD": 'genrule(name = "d", srcs = ["@see//:ver"], outs = ["d.txt"], '
                 'cmd = "cat $< > $@", visibility = ["//visibility:public"])\n'})
    root = ws({
        "MODULE.bazel": """
            bazel_dep(name = "d", version = "1.0")
            bazel_dep(name = "b", version = "1.0", repo_name = "see")
        """,
        "BUILD": 'genrule(name = "all", srcs = ["@d//:d", "@see//:b"], outs = ["all.txt"], '
                 'cmd = "cat $(SRCS) > $@")\n'})
    done = _bp(root, "build", registry, f"--repository_cache={tmp_path / 'repos'}", "//:all")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "all.txt").read_text() == "c 1.1\nB\n"   # b wants c 1.1
    done = _bp(root, "query", registry, "deps(//:all)")
    assert "@c//:ver" in done.stdout.split() and "@b//:b" in done.stdout.split(), done.stdout
