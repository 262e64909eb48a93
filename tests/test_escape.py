"""No way out of a sandbox: tests run under the strategies, output links never carry a
hidden host file out, and sandboxed inputs cannot be changed. End to end, with real
processes (bubblewrap where it works)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildpy.execution.sandbox import LinuxSandboxStrategy
from buildpy.execution.symlinks import ESCAPE_HINT

PROBE = '''
    #!/bin/sh
    # what a test can see and do: host /tmp, host processes, the cache, the sources
    [ -e "$HOST_MARKER" ] && echo "host-tmp: visible" || echo "host-tmp: hidden"
    echo "processes: $(ls -d /proc/[0-9]* | wc -l)"
    echo "cache: $(ls "$CACHE" 2>/dev/null | tr '\\n' ' ')"
    echo hacked > "$CACHE/planted" 2>/dev/null
    echo hacked > t/data.txt 2>/dev/null
    chmod 000 t/data.txt 2>/dev/null
    exit 0
    '''


@pytest.fixture(scope="module")
def linux_sandbox():
    ok, reason = LinuxSandboxStrategy.available()
    if not ok:
        pytest.skip(reason)


@pytest.fixture
def probe(ws, tmp_path):
    marker = tmp_path / "host-marker"
    marker.write_text("")
    root = ws({
        "t/BUILD": '''
            sh_test(name = "probe_test", srcs = ["probe_test.sh"], data = ["data.txt"])
            ''',
        "t/probe_test.sh": PROBE,
        "t/data.txt": "original\n",
    })
    os.chmod(root / "t" / "probe_test.sh", 0o755)
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "bp"

    def run(bp, *flags: str) -> str:
        result = bp("-C", str(root), "test", "//t:probe_test", "--test_output=all",
                    f"--test_env=HOST_MARKER={marker}", f"--test_env=CACHE={cache}",
                    "--nocache_test_results", *flags)
        assert result.code == 0, result.out + result.err
        return result.out
    return root, cache, run


def test_a_test_runs_in_the_linux_sandbox_by_default(linux_sandbox, probe, bp):
    root, cache, run = probe
    out = run(bp)
    assert "host-tmp: hidden" in out
    assert int(out.split("processes: ")[1].split()[0]) < 10   # its own pid namespace
    seen = out.split("cache: ")[1].split("\n")[0].split()
    assert "cas" not in seen and "cache.sqlite" not in seen   # not the cache: an empty dir
    assert not (cache / "planted").exists()
    assert (root / "t" / "data.txt").read_text() == "original\n"
    assert os.stat(root / "t" / "data.txt").st_mode & 0o777 == 0o644


@pytest.mark.parametrize("flag", ["--spawn_strategy=sandboxed",
                                  "--strategy=TestRunner=sandboxed"])
def test_a_sandboxed_test_changes_copies_of_its_runfiles_only(probe, bp, flag):
    root, _, run = probe
    run(bp, flag)
    assert (root / "t" / "data.txt").read_text() == "original\n"
    assert os.stat(root / "t" / "data.txt").st_mode & 0o777 == 0o644


def test_strategy_local_for_tests_runs_them_unsandboxed(probe, bp):
    _, _, run = probe
    out = run(bp, "--strategy=TestRunner=local")
    assert "host-tmp: visible" in out


@pytest.mark.parametrize("strategy", ["sandboxed", "linux-sandbox"])
def test_an_output_link_to_a_hidden_host_file_fails_the_build(strategy, ws, bp, tmp_path):
    if strategy == "linux-sandbox" and not LinuxSandboxStrategy.available()[0]:
        pytest.skip("bubblewrap does not work here")
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY\n")
    root = ws({"BUILD": f'''
        genrule(name = "exfil", outs = ["e.out"], cmd = "ln -s {secret} $@")
        genrule(name = "reader", srcs = [":exfil"], outs = ["r.out"], cmd = "cat $< > $@")
        '''})
    result = bp("-C", str(root), "build", "//:reader", f"--spawn_strategy={strategy}")
    assert result.code == 1
    assert (f"declared output 'bp-out/linux_x86_64-fastbuild/bin/e.out' is a symbolic "
            f"link to '{secret}', which is outside the sandbox; {ESCAPE_HINT}") in result.err
    assert not list((root / "bp-out").rglob("r.out"))
    cas = Path(os.environ["XDG_CACHE_HOME"]) / "bp" / "cas"
    assert not any(p.read_bytes() == b"PRIVATE KEY\n" for p in cas.rglob("*") if p.is_file())


@pytest.mark.parametrize("strategy", ["sandboxed", "linux-sandbox"])
def test_a_sandboxed_action_cannot_change_its_inputs(strategy, ws, bp):
    if strategy == "linux-sandbox" and not LinuxSandboxStrategy.available()[0]:
        pytest.skip("bubblewrap does not work here")
    root = ws({"BUILD": '''
        genrule(name = "g", srcs = ["in.txt"], outs = ["o.txt"],
                cmd = "(: > $<; chmod 000 $<; rm -f $<) 2>/dev/null || true; echo done > $@")
        ''', "in.txt": "source\n"})
    result = bp("-C", str(root), "build", "//:g", f"--spawn_strategy={strategy}")
    assert result.code == 0, result.err
    assert (root / "in.txt").read_text() == "source\n"
    assert os.stat(root / "in.txt").st_mode & 0o777 == 0o644
