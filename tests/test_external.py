"""External repositories from WORKSPACE: local_repository, new_local_repository,
http_archive / http_file (served by a local HTTP server the test starts, and file://
URLs), custom repository rules, macros that define repositories, load() from a
repository defined earlier, the repository cache and offline builds, and the errors of
each with their text. Debian's real rule sets (bazel-skylib, bazel-rules-cc) serve as
local repositories."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

BP = [sys.executable, "-m", "buildpy"]
SKYLIB = Path("/usr/share/bazel/tools/skylib")
RULES_CC = Path("/usr/share/bazel/rules/cc")


def _bp(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*BP, "--nohome_rc", *args], cwd=root, capture_output=True,
                          text=True, timeout=300)


def _tarball(path: Path, files: dict[str, str], mode: str = "w:gz") -> str:
    """Write a tar archive of `files` (name -> text); its SHA-256."""
    with tarfile.open(path, mode) as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/served; yields (directory, base URL,
    the paths requested)."""
    served = tmp_path / "served"
    served.mkdir()
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            requested.append(self.path)
            flaky = served / (".fail" + self.path.replace("/", "-"))
            if flaky.exists():   # a transient failure, once
                flaky.unlink()
                self.send_error(503, "try again")
                return
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{httpd.server_address[1]}", requested
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


LIB_FILES = {
    "lib-1.2/BUILD.bazel": "this BUILD file is replaced by build_file\n",
    "lib-1.2/src/greeting.txt": "hello from the archive\n",
}

ARCHIVE_BUILD = """
    filegroup(name = "greeting", srcs = ["src/greeting.txt"], visibility = ["//visibility:public"])
"""

PATCH = """\
--- a/src/greeting.txt
+++ b/src/greeting.txt
@@ -1 +1,2 @@
 hello from the archive
+patched in
"""


def _archive_workspace(ws, served: Path, url: str, sha: str, extra: str = "") -> Path:
    return ws({
        "WORKSPACE": f"""
            workspace(name = "main")
            load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive", "http_file")
            http_archive(
                name = "lib",
                urls = ["{url}/lib-1.2.tar.gz"],
                sha256 = "{sha}",
                strip_prefix = "lib-1.2",
                build_file = "//third_party:lib.BUILD",
                patches = ["//third_party:greeting.patch"],
                patch_args = ["-p1"],
            )
            {extra}
        """,
        "third_party/BUILD": "",
        "third_party/lib.BUILD": ARCHIVE_BUILD,
        "third_party/greeting.patch": PATCH,
        "BUILD": """
            genrule(name = "use", srcs = ["@lib//:greeting"], outs = ["use.txt"],
                    cmd = "cat $(SRCS) > $@")
        """,
    })


def test_http_archive_with_strip_prefix_build_file_and_patches(ws, server, tmp_path):
    served, url, requested = server
    sha = _tarball(served / "lib-1.2.tar.gz", LIB_FILES)
    root = _archive_workspace(ws, served, url, sha)
    cache = f"--repository_cache={tmp_path / 'repos'}"
    done = _bp(root, "build", cache, "//:use")
    assert done.returncode == 0, done.stderr
    assert "INFO: Fetching @lib" in done.stderr
    assert (root / "bp-bin" / "use.txt").read_text() == \
        "hello from the archive\npatched in\n"
    assert requested == ["/lib-1.2.tar.gz"]
    # nothing changed: not fetched again
    done = _bp(root, "build", cache, "//:use")
    assert done.returncode == 0, done.stderr
    assert "Fetching" not in done.stderr
    # bp query crosses into the repository
    done = _bp(root, "query", cache, "deps(//:use)")
    assert done.stdout.split() == ["//:use", "@lib//:greeting", "@lib//:src/greeting.txt"]
    # bp clean keeps fetched repositories, bp clean --expunge does not
    assert _bp(root, "clean").returncode == 0
    done = _bp(root, "build", cache, "//:use")
    assert done.returncode == 0 and "Fetching" not in done.stderr, done.stderr
    assert _bp(root, "clean", "--expunge").returncode == 0
    assert not (root / "bp-out" / "external").exists()
    done = _bp(root, "build", cache, "//:use")
    assert done.returncode == 0 and "Fetching @lib" in done.stderr, done.stderr
    assert requested == ["/lib-1.2.tar.gz"]   # from the repository cache


def test_the_repository_cache_serves_a_build_with_no_network(ws, server, tmp_path):
    served, url, requested = server
    sha = _tarball(served / "lib-1.2.tar.gz", LIB_FILES)
    root = _archive_workspace(ws, served, url, sha)
    cache = f"--repository_cache={tmp_path / 'repos'}"
    assert _bp(root, "fetch", cache).returncode == 0
    distdir = tmp_path / "dist"
    distdir.mkdir()
    (served / "lib-1.2.tar.gz").rename(distdir / "lib-1.2.tar.gz")   # off the server
    shutil.rmtree(root / "bp-out")
    done = _bp(root, "build", cache, "//:use")
    assert done.returncode == 0, done.stderr
    assert requested == ["/lib-1.2.tar.gz"]
    # an empty cache and no file: the error names the URL and how to pre-seed the cache
    shutil.rmtree(root / "bp-out")
    done = _bp(root, "build", f"--repository_cache={tmp_path / 'empty'}", "//:use")
    assert done.returncode != 0
    assert f"could not download {url}/lib-1.2.tar.gz" in done.stderr
    assert "HTTP 404" in done.stderr
    assert "--distdir" in done.stderr
    # --distdir serves it by file name (checked by digest)
    done = _bp(root, "build", f"--repository_cache={tmp_path / 'empty2'}",
               f"--distdir={distdir}", "//:use")
    assert done.returncode == 0, done.stderr


def test_a_wrong_sha256_names_both_digests_and_the_url(ws, server, tmp_path):
    served, url, _ = server
    sha = _tarball(served / "lib-1.2.tar.gz", LIB_FILES)
    wrong = "0" * 64
    root = _archive_workspace(ws, served, url, wrong)
    done = _bp(root, "build", f"--repository_cache={tmp_path / 'repos'}", "//:use")
    assert done.returncode != 0
    assert f"checksum mismatch for {url}/lib-1.2.tar.gz: expected sha256 {wrong}, got " \
           f"{sha}" in done.stderr, done.stderr
    assert "WORKSPACE:3:13" in done.stderr   # the http_archive call
    # nothing half-done stays: the next build fetches again
    assert not (root / "bp-out" / "external" / "lib").exists()
    assert not (root / "bp-out" / "external" / "@lib.marker").exists()


def test_an_archive_entry_escaping_the_repository_is_refused(ws, server, tmp_path):
    served, url, _ = server
    sha = _tarball(served / "lib-1.2.tar.gz", {"lib-1.2/../../evil.txt": "x"})
    root = _archive_workspace(ws, served, url, sha)
    done = _bp(root, "build", f"--repository_cache={tmp_path / 'repos'}", "//:use")
    assert done.returncode != 0
    assert "archive entry 'lib-1.2/../../evil.txt' would be written outside the repository" \
        in done.stderr, done.stderr
    assert not (tmp_path / "evil.txt").exists()
    assert not (root / "bp-out" / "external" / "lib").exists()


def test_http_file_and_file_urls(ws, tmp_path):
    data = tmp_path / "tool.sh"
    data.write_text("#!/bin/sh\necho tool\n")
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    root = ws({
        "WORKSPACE": f"""
            load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_file")
            http_file(name = "tool", urls = ["file://{data}"], sha256 = "{sha}",
                      executable = True)
        """,
        "BUILD": """
            genrule(name = "run", outs = ["run.txt"], tools = ["@tool//file"],
                    cmd = "$(location @tool//file) > $@")
        """})
    done = _bp(root, "build", f"--repository_cache={tmp_path / 'repos'}", "//:run")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "run.txt").read_text() == "tool\n"


def test_a_repository_rule_and_macros_that_define_repositories(ws, tmp_path):
    """A custom rule (attrs, ctx.file, ctx.template, ctx.execute, ctx.path of a label),
    a macro in a repository that WORKSPACE loads from, maybe(), new_local_repository."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.txt").write_text("plain data\n")
    deps = tmp_path / "deps"
    (deps / "tools").mkdir(parents=True)
    (deps / "WORKSPACE").write_text('workspace(name = "deps")\n')
    (deps / "tools" / "BUILD").write_text("")
    (deps / "tools" / "deps.bzl").write_text(f"""
load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")
load("//tools:gen.bzl", "generated")

def all_deps():
    maybe(generated, name = "gen", word = "first")
    maybe(generated, name = "gen", word = "ignored: maybe() keeps the first")
    native.new_local_repository(name = "plain", path = "{plain}",
                                build_file_content = 'exports_files(["data.txt"])')
""")
    (deps / "tools" / "gen.bzl").write_text("""
def _generated_impl(ctx):
    ctx.template("BUILD.bazel", ctx.attr._template, {"WORD": ctx.attr.word})
    done = ctx.execute(["sh", "-c", "echo from $0 at $PWD", "execute"])
    ctx.file("made.txt", done.stdout.replace(str(ctx.path(".")), "<repo>"), executable = False)
    ctx.file("WORKSPACE", "")

generated = repository_rule(
    implementation = _generated_impl,
    attrs = {"word": attr.string(mandatory = True),
             "_template": attr.label(default = "@deps//tools:BUILD.tmpl")},
)
""")
    (deps / "tools" / "BUILD.tmpl").write_text(
        'genrule(name = "word", srcs = ["made.txt"], outs = ["word.txt"], '
        'cmd = "echo WORD > $@; cat $< >> $@", visibility = ["//visibility:public"])\n')
    root = ws({
        "WORKSPACE": f"""
            local_repository(name = "deps", path = "{deps}")
            load("@deps//tools:deps.bzl", "all_deps")
            all_deps()
        """,
        "BUILD": """
            genrule(name = "all", srcs = ["@gen//:word", "@plain//:data.txt"], outs = ["all.txt"],
                    cmd = "cat $(SRCS) > $@")
        """})
    done = _bp(root, "build", "//:all")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "all.txt").read_text() == \
        "first\nfrom execute at <repo>\nplain data\n"
    # the rule's code changed: the repository is fetched again
    gen = deps / "tools" / "gen.bzl"
    gen.write_text(gen.read_text().replace("from $0", "by $0"))
    done = _bp(root, "build", "//:all")
    assert done.returncode == 0, done.stderr
    assert "Fetching @gen" in done.stderr
    assert (root / "bp-bin" / "all.txt").read_text().startswith("first\nby execute")


def test_repository_errors_name_the_place_and_the_fix(ws, tmp_path):
    root = ws({
        "WORKSPACE": """
            load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
            http_archive(name = "lib", url = "file:///nowhere.tar.gz", sha256 = "ab")
            local_repository(name = "libx", path = "/nonexistent/dir")
        """,
        "BUILD": """
            genrule(name = "a", srcs = ["@lbi//:x"], outs = ["a.txt"], cmd = "touch $@")
            genrule(name = "b", srcs = ["@libx//:x"], outs = ["b.txt"], cmd = "touch $@")
            genrule(name = "c", srcs = ["@lib//:x"], outs = ["c.txt"], cmd = "touch $@")
        """})
    done = _bp(root, "build", "//:a")
    assert done.returncode != 0
    assert "repository '@lbi' is not defined; did you mean 'lib'?" in done.stderr, done.stderr
    assert 'hint: define it in the WORKSPACE file, before its first use: for example ' \
           'local_repository(name = "lbi"' in done.stderr
    done = _bp(root, "build", "//:b")
    assert "local_repository '@libx': path '/nonexistent/dir' is not a directory" in done.stderr
    done = _bp(root, "build", "//:c")
    assert "invalid sha256 'ab'" in done.stderr, done.stderr
    root = ws({"WORKSPACE": """
            load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
            http_archive(name = "lib", urls = ["file:///x.tar.gz"], sha265 = "")
        """})
    done = _bp(root, "query", "//...")
    assert "WORKSPACE:2:13: http_archive 'lib' has no attribute 'sha265'; did you mean " \
           "'sha256'?" in done.stderr, done.stderr


@pytest.mark.skipif(not (SKYLIB / "lib" / "paths.bzl").exists()
                    or not (RULES_CC / "cc" / "defs.bzl").exists(),
                    reason="Debian's bazel-skylib and bazel-rules-cc are not installed "
                           "(scripts/install-test-deps)")
def test_debians_skylib_and_rules_cc_as_local_repositories(ws, tmp_path):
    root = ws({
        "WORKSPACE": f"""
            local_repository(name = "bazel_skylib", path = "{SKYLIB}")
            local_repository(name = "rules_cc", path = "{RULES_CC}")
            load("@bazel_skylib//lib:versions.bzl", "versions")
            versions.check(minimum_bazel_version = "4.0.0")
        """,
        "BUILD": """
            load("@bazel_skylib//lib:paths.bzl", "paths")
            load("@bazel_skylib//rules:copy_file.bzl", "copy_file")
            load("@rules_cc//cc:defs.bzl", "cc_binary")
            copy_file(name = "copy", src = "hello.c", out = paths.join("gen", "hello.c"))
            cc_binary(name = "hello", srcs = [":copy"])
            genrule(name = "run", outs = ["run.txt"], tools = [":hello"],
                    cmd = "$(location :hello) > $@")
        """,
        "hello.c": '#include <stdio.h>\nint main(void) { puts("hello via rules_cc"); }\n',
    })
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    done = _bp(root, "build", "//:run")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "run.txt").read_text() == "hello via rules_cc\n"


def test_override_repository_and_sync(ws, server, tmp_path):
    served, url, requested = server
    sha = _tarball(served / "lib-1.2.tar.gz", LIB_FILES)
    root = _archive_workspace(ws, served, url, sha)
    cache = f"--repository_cache={tmp_path / 'repos'}"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "BUILD").write_text('filegroup(name = "greeting", srcs = ["mine.txt"], '
                                'visibility = ["//visibility:public"])\n')
    (mine / "mine.txt").write_text("my own lib\n")
    done = _bp(root, "build", cache, f"--override_repository=lib={mine}", "//:use")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "use.txt").read_text() == "my own lib\n"
    assert requested == []   # nothing downloaded
    done = _bp(root, "build", cache, "//:use")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "use.txt").read_text().startswith("hello from the archive")
    # bp sync fetches again (from the repository cache: no second download)
    done = _bp(root, "sync", cache, "--only=lib")
    assert done.returncode == 0, done.stderr
    assert "INFO: fetched @lib" in done.stderr
    assert requested == ["/lib-1.2.tar.gz"]
    done = _bp(root, "sync", cache, "--only=lbi")
    assert done.returncode != 0
    assert "no repository '@lbi' is defined; did you mean 'lib'?" in done.stderr


def test_a_fetch_killed_midway_is_started_over(ws, tmp_path):
    """kill -9 while a repository rule runs: no marker is written, so the next build
    fetches the repository again from the start instead of trusting half of it."""
    import os
    import signal
    import time

    started, slow = tmp_path / "started", tmp_path / "slow"
    slow.touch()
    root = ws({
        "repo.bzl": f"""
            def _slow_impl(ctx):
                ctx.file("WORKSPACE", "")
                ctx.file("half.txt", "only half\\n")
                ctx.execute(["sh", "-c", "test -f {slow} && touch {started} && sleep 60"],
                            timeout = 120)
                ctx.file("BUILD", 'exports_files(["half.txt"])\\n')

            slow = repository_rule(implementation = _slow_impl)
        """,
        "BUILD": "",
        "WORKSPACE": 'load("//:repo.bzl", "slow")\nslow(name = "r")\n',
        "use/BUILD": 'genrule(name = "u", srcs = ["@r//:half.txt"], outs = ["u.txt"], '
                     'cmd = "cat $< > $@")\n',
    })
    process = subprocess.Popen([*BP, "--nohome_rc", "build", "//use:u"], cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert process.poll() is None, "bp ended before the rule ran"
            assert time.monotonic() < deadline, "the repository rule never started"
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert (root / "bp-out" / "external" / "r" / "half.txt").exists()
    assert not (root / "bp-out" / "external" / "r" / "BUILD").exists()
    assert not (root / "bp-out" / "external" / "@r.marker").exists()
    slow.unlink()   # the same definition, fetched again, quickly
    done = _bp(root, "build", "//use:u")
    assert done.returncode == 0, done.stderr
    assert "Fetching @r" in done.stderr
    assert (root / "bp-bin" / "use" / "u.txt").read_text() == "only half\n"
    assert (root / "bp-out" / "external" / "@r.marker").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="no git")
def test_git_repository_from_a_local_clone(ws, tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "BUILD").write_text('filegroup(name = "g", srcs = ["g.txt"], '
                                  'visibility = ["//visibility:public"])\n')
    (remote / "g.txt").write_text("from git\n")
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(remote)]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "one"], ["tag", "v1"]):
        subprocess.run(git + args, check=True, capture_output=True)
    (remote / "g.txt").write_text("changed later\n")
    subprocess.run(git + ["commit", "-qam", "two"], check=True, capture_output=True)
    root = ws({
        "WORKSPACE": f"""
            load("@bazel_tools//tools/build_defs/repo:git.bzl", "git_repository")
            git_repository(name = "g", remote = "{remote}", tag = "v1")
        """,
        "BUILD": 'genrule(name = "use", srcs = ["@g//:g"], outs = ["use.txt"], '
                 'cmd = "cat $< > $@")\n'})
    done = _bp(root, "build", "//:use")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "use.txt").read_text() == "from git\n"
    done = _bp(root, "query", "--output=build", "@g//:g")
    assert done.stdout.splitlines()[1:] == [
        "filegroup(", '  name = "g",', '  srcs = ["@g//:g.txt"],',
        '  visibility = ["//visibility:public"],', ")"], done.stdout


def test_a_transient_server_error_is_retried(ws, server, tmp_path):
    served, url, requested = server
    sha = _tarball(served / "lib-1.2.tar.gz", LIB_FILES)
    (served / ".fail-lib-1.2.tar.gz").touch()
    root = _archive_workspace(ws, served, url, sha)
    done = _bp(root, "build", f"--repository_cache={tmp_path / 'repos'}", "//:use")
    assert done.returncode == 0, done.stderr
    assert requested == ["/lib-1.2.tar.gz", "/lib-1.2.tar.gz"]


def test_configure_rules_are_fetched_again_by_sync_configure(ws, tmp_path):
    counter = tmp_path / "runs"
    root = ws({
        "repo.bzl": f"""
            def _impl(ctx):
                ctx.execute(["sh", "-c", "echo run >> {counter}"])
                ctx.file("WORKSPACE", "")
                ctx.file("BUILD", "")

            detected = repository_rule(implementation = _impl, configure = True)
            plain = repository_rule(implementation = _impl)
        """,
        "BUILD": "",
        "WORKSPACE": 'load("//:repo.bzl", "detected", "plain")\n'
                     'detected(name = "d")\nplain(name = "p")\n'})
    assert _bp(root, "fetch").returncode == 0
    assert counter.read_text() == "run\nrun\n"
    done = _bp(root, "sync", "--configure")
    assert done.returncode == 0, done.stderr
    assert "INFO: fetched @d" in done.stderr and "@p" not in done.stderr
    assert counter.read_text() == "run\n" * 3


def test_external_package_lists_the_workspace_repositories(ws, tmp_path):
    root = ws({
        "WORKSPACE": """
            load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")
            http_archive(name = "lib", urls = ["file:///nowhere/lib.tar.gz"],
                         strip_prefix = "lib-1.2")
            local_repository(name = "near", path = "near")
            bind(name = "json", actual = "@lib//:json")
        """,
        "BUILD": ""})
    done = _bp(root, "query", "//external:*")
    assert done.stdout.split() == ["//external:WORKSPACE", "//external:json",
                                   "//external:lib", "//external:near"], done.stderr
    done = _bp(root, "query", "--output=build", "//external:lib")
    assert done.stdout.splitlines() == [
        f"# {root}/WORKSPACE:2:13", "http_archive(", '  name = "lib",',
        '  strip_prefix = "lib-1.2",', '  urls = ["file:///nowhere/lib.tar.gz"],', ")"]
    done = _bp(root, "build", "//external:lib")
    assert "'//external:lib' is a repository that WORKSPACE defines (http_archive), not a " \
           "target to build" in done.stderr


def test_a_rule_is_fetched_again_when_an_environ_variable_changes(ws, tmp_path):
    import os

    root = ws({
        "repo.bzl": """
            def _impl(ctx):
                ctx.file("WORKSPACE", "")
                ctx.file("BUILD", 'genrule(name = "v", outs = ["v.txt"], cmd = "echo %s > $@")'
                         % ctx.os.environ.get("BP_TEST_FLAVOR", "none"))

            flavored = repository_rule(implementation = _impl, environ = ["BP_TEST_FLAVOR"])
        """,
        "BUILD": "",
        "WORKSPACE": 'load("//:repo.bzl", "flavored")\nflavored(name = "f")\n'})

    def build(flavor: str) -> str:
        env = dict(os.environ, BP_TEST_FLAVOR=flavor)
        done = subprocess.run([*BP, "--nohome_rc", "build", "@f//:v"], cwd=root, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return (root / "bp-out").glob("*/bin/external/f/v.txt").__next__().read_text()

    assert build("sweet") == "sweet\n"
    assert build("sour") == "sour\n"


def test_bazel_tools_compiler_flag_and_platform_names(ws):
    root = ws({"BUILD": """
        config_setting(name = "gcc", flag_values = {"@bazel_tools//tools/cpp:compiler": "gcc"})
        config_setting(name = "linux", constraint_values = ["@bazel_tools//platforms:linux"])
        genrule(name = "which", outs = ["which.txt"], cmd = select({
            ":gcc": "echo gcc > $@", "//conditions:default": "echo other > $@"}))
        genrule(name = "os", outs = ["os.txt"], cmd = select({
            ":linux": "echo linux > $@", "//conditions:default": "echo other > $@"}))
    """})
    done = _bp(root, "build", "--platforms=@bazel_tools//platforms:host_platform", "//:all")
    assert done.returncode == 0, done.stderr
    import platform
    if platform.system() == "Linux":
        assert (root / "bp-bin" / "which.txt").read_text() == "gcc\n"
        assert (root / "bp-bin" / "os.txt").read_text() == "linux\n"
    done = _bp(root, "build", "--@bazel_tools//tools/cpp:compiler=clang", "//:which")
    assert done.returncode == 0, done.stderr
    assert (root / "bp-bin" / "which.txt").read_text() == "other\n"


def test_a_malformed_override_repository_is_refused(ws):
    root = ws({"BUILD": ""})
    done = _bp(root, "query", "--override_repository=nopath", "//...")
    assert done.returncode != 0
    assert "invalid --override_repository 'nopath': expected NAME=PATH" in done.stderr
    assert "hint: for example --override_repository=rules_foo=/src/rules_foo" in done.stderr
