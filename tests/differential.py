"""Differential testing of incremental builds: incremental = from scratch.

A small workspace exercises every action kind of bp's prelude and rule API (`write`,
`expand_template`, `symlink`, `run` with a params file, `run_shell`,
`declare_directory`, genrule with `$(location)`, `$(locations)`, `$(SRCS)`, `$@`, `$<`,
cc, py, sh rules and tests, `select()` on a `--define`). `random_edit` changes it in
one of many ways (source content, same-size edits right after a build, BUILD
attributes, `.bzl` code, added and removed targets, deleted files, flags);
`check_step` builds it incrementally with its persistent cache, then copies the
sources to a fresh directory and builds them from scratch with an empty cache, and
compares every output file's bytes and executable bit, and the outcome of
`bp test //...`.

`run_watch` does the same with one `bp build --watch //...` session making every
incremental build (an iteration per edit).

Not collected by pytest (no `test_` prefix): `tests/test_differential.py` runs a short
seeded version, `scripts/differential` a long one.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HAVE_GCC = shutil.which("gcc") is not None
# A genrule runs the py_binary as a tool (in its runfiles tree); BP_DIFFERENTIAL_PY_TOOL=0
# leaves it out, to fuzz a bp from before tools had their runfiles trees.
PY_TOOL_GENRULE = os.environ.get("BP_DIFFERENTIAL_PY_TOOL", "1") == "1"
# Bazel creates a declared directory before its action runs; BP_DIFFERENTIAL_TREE_MKDIR=1
# makes the action create it itself (to fuzz a bp that does not, for its other bugs).
TREE_MKDIR = os.environ.get("BP_DIFFERENTIAL_TREE_MKDIR") == "1"
OUTPUT_LINKS = ("bp-out", "bp-bin", "bp-testlogs", "bp-genfiles")

# ---------------------------------------------------------------------------------------
# The workspace: a model (a dict) rendered to files, so that every edit keeps it valid.

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
         "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"]

GENRULE_CMDS = [
    "cat $(SRCS) > $@",
    "cat $(SRCS) | tr a-z A-Z > $@",
    "(echo header; cat $(SRCS)) > $@",
    "cat $(SRCS) | sort > $@",
]


def initial_model() -> dict:
    return {
        "text": "hello from write",           # //a:w text attribute
        "exe": False,                         # //a:w is_executable
        "who": "world",                       # //a:t substitution
        "bzl_const": "made by defs.bzl",      # a constant the .bzl writes
        "bzl_suffix": ".txt",                 # the extension the write rule declares
        "cat_cmd": 0,                         # index into GENRULE_CMDS for //a:cat
        "py_main": "main_a.py",               # //c:pybin main
        "extras": [],                         # numbers of extra genrules //a:extra_N
        "next_extra": 0,
        "data2": True,                        # whether a/data2.txt exists (and is used)
        "srcs": {
            "a/data1.txt": "one\ntwo\nthree\n",
            "a/data2.txt": "four\nfive\n",
            "a/greet.tmpl": "Hello, {WHO}! ({CONST})\n",
            "a/tool.sh": "#!/bin/sh\n# argv: @params\nout=\nfor a in $(cat \"${1#@}\"); do\n"
                         "  case \"$a\" in --out=*) out=\"${a#--out=}\";; esac\ndone\n"
                         "{ echo tool-v1; cat \"${1#@}\"; } > \"$out\"\n",
            "b/lib.c": '#include "b/lib.h"\nint answer(void) { return 42; }\n',
            "b/lib.h": "int answer(void);\n",
            "b/main.c": '#include <stdio.h>\n#include "b/lib.h"\n'
                        'int main(void) { printf("answer=%d\\n", answer()); return 0; }\n',
            "c/helper.py": 'GREETING = "py helper one"\n',
            "c/main_a.py": 'from c.helper import GREETING\nprint("main_a:", GREETING)\n',
            "c/main_b.py": 'from c.helper import GREETING\nprint("main_b:", GREETING[::-1])\n',
            "d/hello.sh": "#!/bin/sh\necho hello from sh_binary\n",
            "d/hello_test.sh": "#!/bin/sh\ngrep -q sh_binary \"$1\" && exit 0\nexit 1\n",
            "d/fast.txt": "fast mode\n",
            "d/slow.txt": "slow mode\n",
        },
    }


DEFS_BZL = '''\
CONST = "{bzl_const}"

def _w_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + "{bzl_suffix}")
    ctx.actions.write(out, ctx.attr.text + "\\n" + CONST + "\\n", is_executable = ctx.attr.exe)
    return [DefaultInfo(files = depset([out]))]

w = rule(implementation = _w_impl, attrs = {{"text": attr.string(), "exe": attr.bool()}})

def _t_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".out")
    ctx.actions.expand_template(template = ctx.file.src, output = out,
                                substitutions = {{"{{WHO}}": ctx.attr.who, "{{CONST}}": CONST}})
    return [DefaultInfo(files = depset([out]))]

t = rule(implementation = _t_impl,
         attrs = {{"src": attr.label(allow_single_file = True), "who": attr.string()}})

def _link_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".lnk")
    ctx.actions.symlink(output = out, target_file = ctx.file.src)
    return [DefaultInfo(files = depset([out]))]

link = rule(implementation = _link_impl, attrs = {{"src": attr.label(allow_single_file = True)}})

def _runner_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    args = ctx.actions.args()
    args.add("--out=" + out.path)
    args.add_all(ctx.files.srcs)
    args.add("--const=" + CONST.replace(" ", "_"))
    args.use_param_file("@%s", use_always = True)
    ctx.actions.run(outputs = [out], inputs = ctx.files.srcs, executable = ctx.executable.tool,
                    arguments = [args])
    return [DefaultInfo(files = depset([out]))]

runner = rule(implementation = _runner_impl, attrs = {{
    "srcs": attr.label_list(allow_files = True),
    "tool": attr.label(allow_single_file = True, executable = True, cfg = "exec"),
}})

def _shell_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.run_shell(outputs = [out], inputs = ctx.files.srcs,
                          command = "wc -l $1 > $2 && echo '%s' >> $2" % CONST,
                          arguments = [ctx.files.srcs[0].path, out.path])
    return [DefaultInfo(files = depset([out]))]

shell = rule(implementation = _shell_impl, attrs = {{"srcs": attr.label_list(allow_files = True)}})

def _tree_impl(ctx):
    out = ctx.actions.declare_directory(ctx.label.name + ".d")
    ctx.actions.run_shell(outputs = [out], inputs = ctx.files.srcs,
                          command = "{tree_prep}cat $1 > $2/f1 && mkdir -p $2/sub && echo '%s' > $2/sub/f2" % CONST,
                          arguments = [ctx.files.srcs[0].path, out.path])
    return [DefaultInfo(files = depset([out]))]

tree = rule(implementation = _tree_impl, attrs = {{"srcs": attr.label_list(allow_files = True)}})

def _unresolved_impl(ctx):
    out = ctx.actions.declare_symlink(ctx.label.name + ".link")
    ctx.actions.symlink(output = out, target_path = "../" + ctx.attr.target)
    return [DefaultInfo(files = depset([out]))]

unresolved = rule(implementation = _unresolved_impl, attrs = {{"target": attr.string()}})
'''


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(model: dict) -> dict[str, str | None]:
    """The workspace's files as text (None: absent)."""
    m = model
    files: dict[str, str | None] = {"WORKSPACE": "", "rules/BUILD": ""}
    files["rules/defs.bzl"] = DEFS_BZL.format(
        bzl_const=m["bzl_const"], bzl_suffix=m["bzl_suffix"],
        tree_prep="mkdir -p $2 && " if TREE_MKDIR else "")
    for path, text in m["srcs"].items():
        files[path] = text
    if not m["data2"]:
        files["a/data2.txt"] = None
    data = ['"data1.txt"'] + (['"data2.txt"'] if m["data2"] else [])
    extras = "".join(
        f'genrule(name = "extra_{n}", srcs = ["data1.txt"], outs = ["extra_{n}.txt"],\n'
        f'        cmd = "echo extra {n} > $@; cat $< >> $@")\n' for n in m["extras"])
    extra_locs = [f'":extra_{n}"' for n in m["extras"]]
    files["a/BUILD"] = f'''\
load("//rules:defs.bzl", "link", "runner", "shell", "t", "tree", "unresolved", "w")

w(name = "w", text = {_q(m["text"])}, exe = {m["exe"]})
t(name = "t", src = "greet.tmpl", who = {_q(m["who"])})
link(name = "link", src = ":w")
runner(name = "runner", srcs = [{", ".join(data)}], tool = "tool.sh")
shell(name = "shell", srcs = [{", ".join(data)}])
tree(name = "tree", srcs = ["data1.txt"])
unresolved(name = "unresolved", target = {_q(m["who"])})

genrule(name = "cat", srcs = [{", ".join(data)}], outs = ["cat.txt"],
        cmd = {_q(GENRULE_CMDS[m["cat_cmd"]])})
genrule(name = "first", srcs = [":cat"], outs = ["first.txt"], cmd = "head -n 1 $< > $@")
genrule(name = "chain", srcs = [":cat", ":w", ":t"], outs = ["chain.txt"],
        cmd = "cat $(location :cat) $(location :w) > $@; cat $(locations :t) >> $@")
genrule(name = "unresolved_user", srcs = [":unresolved"], outs = ["unresolved_user.txt"],
        cmd = "readlink $< > $@")
genrule(name = "tree_user", srcs = [":tree"], outs = ["tree_user.txt"],
        cmd = "(cd $(location :tree) && find . -type f | LC_ALL=C sort | xargs cat) > $@")
{extras}genrule(name = "all", srcs = [":chain", ":link", ":runner", ":shell"{"".join(", " + e for e in extra_locs)}],
        outs = ["all.txt"], cmd = "cat $(SRCS) | wc -c > $@")
'''
    if HAVE_GCC:
        files["b/BUILD"] = '''\
cc_library(name = "lib", srcs = ["lib.c"], hdrs = ["lib.h"])
cc_binary(name = "main", srcs = ["main.c"], deps = [":lib"])
genrule(name = "run_main", outs = ["run_main.txt"], tools = [":main"],
        cmd = "$(location :main) > $@")
'''
    else:
        files["b/BUILD"] = ""
    files["c/BUILD"] = f'''\
py_library(name = "helper", srcs = ["helper.py"])
py_binary(name = "pybin", srcs = ["main_a.py", "main_b.py"], main = {_q(m["py_main"])},
          deps = [":helper"])
''' + ('''genrule(name = "run_py", outs = ["run_py.txt"], tools = [":pybin"],
        cmd = "$(location :pybin) > $@")
''' if PY_TOOL_GENRULE else "")
    files["d/BUILD"] = '''\
config_setting(name = "fast", define_values = {"mode": "fast"})
sh_binary(name = "hello", srcs = ["hello.sh"])
sh_test(name = "hello_test", srcs = ["hello_test.sh"], data = [":hello"],
        args = ["$(location :hello)"])
genrule(name = "mode", srcs = select({":fast": ["fast.txt"], "//conditions:default": ["slow.txt"]}),
        outs = ["mode.txt"],
        cmd = select({":fast": "cat $< > $@; echo F >> $@", "//conditions:default": "cat $< > $@"}))
'''
    return files


EXECUTABLE_SOURCES = {"a/tool.sh", "d/hello.sh", "d/hello_test.sh"}


def write_files(root: Path, files: dict[str, str | None]) -> None:
    """Write what changed (unchanged files keep their mtime); remove absent files."""
    for rel, text in files.items():
        path = root / rel
        if text is None:
            if path.exists():
                path.unlink()
            continue
        if path.exists() and path.read_text() == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel in EXECUTABLE_SOURCES:
            path.chmod(0o755)


def make_workspace(root: Path, model: dict | None = None) -> dict:
    """Write the workspace to `root`; returns its model (edited by `random_edit`)."""
    model = model if model is not None else initial_model()
    root.mkdir(parents=True, exist_ok=True)
    write_files(root, render(model))
    return model


# ---------------------------------------------------------------------------------------
# Edits

KINDS = ["source", "same_size", "attr", "bzl", "add_target", "remove_target",
         "delete_source", "flag", "touch", "clean", "nothing"]


@dataclass
class State:
    root: Path
    model: dict
    flags: list[str] = field(default_factory=list)


def _same_size(text: str, rng: random.Random) -> str:
    positions = [i for i, ch in enumerate(text) if ch.isalnum()]
    i = rng.choice(positions)
    pool = "abcdefghijklmnopqrstuvwxyz0123456789" if text[i].isalnum() else text[i]
    new = rng.choice([c for c in pool if c != text[i]])
    return text[:i] + new + text[i + 1:]


def random_edit(state: State, rng: random.Random, kinds: list[str] | None = None,
                bp=None) -> str:
    """Apply one random edit to `state`'s workspace; returns what it did. `bp(*args)`, if
    given, runs bp in the workspace: a same-size edit follows a `bp build` within
    milliseconds (and half the time keeps the file's mtime); "clean" runs `bp clean`
    (the cache stays, so the next build restores outputs from it)."""
    m = state.model
    kinds = kinds or KINDS
    kind = rng.choice(kinds)
    word = rng.choice(WORDS)
    desc: str
    if kind == "source":
        editable = ["a/data1.txt", "a/greet.tmpl", "c/helper.py", "d/fast.txt", "d/slow.txt",
                    "a/tool.sh", "d/hello.sh"]
        if m["data2"]:
            editable.append("a/data2.txt")
        if HAVE_GCC:
            editable.append("b/lib.c")
        path = rng.choice(editable)
        text = m["srcs"][path]
        if path == "c/helper.py":
            text = f'GREETING = "py helper {word}"\n'
        elif path == "b/lib.c":
            text = text.replace(text.split("return ")[1].split(";")[0], str(rng.randint(0, 999)))
        elif path == "a/tool.sh":
            text = text.replace(text.split("echo ")[1].split(";")[0], f"tool-{word}")
        elif path == "d/hello.sh":
            # without the word sh_binary, //d:hello_test fails (in both builds, if bp is right)
            who = "sh_binary" if rng.random() < 0.7 else "somewhere"
            text = f"#!/bin/sh\necho hello from {who} {word}\n"
        elif path == "a/greet.tmpl":
            text = f"Hello, {{WHO}}! {word} ({{CONST}})\n"
        else:
            lines = text.splitlines(keepends=True)
            op = rng.choice(["add", "replace", "drop"] if len(lines) > 1 else ["add", "replace"])
            i = rng.randrange(len(lines))
            if op == "add":
                lines.insert(i, word + "\n")
            elif op == "replace":
                lines[i] = word + "\n"
            else:
                del lines[i]
            text = "".join(lines)
        m["srcs"][path] = text
        desc = f"source {path}"
    elif kind == "same_size":
        choices = ["a/data1.txt", "a/greet.tmpl", "d/slow.txt", "d/fast.txt", "c/helper.py"]
        if HAVE_GCC:
            choices.append("b/lib.c")
        path = rng.choice(choices)
        text = m["srcs"][path]
        if path == "c/helper.py":
            new = _same_size(text.split('"')[1], rng)
            new_text = f'GREETING = "{new}"\n'
        elif path == "b/lib.c":
            n = text.split("return ")[1].split(";")[0]
            new = rng.choice([str(i) for i in range(10 ** (len(n) - 1) if len(n) > 1 else 0,
                                                    10 ** len(n)) if str(i) != n])
            new_text = text.replace(f"return {n};", f"return {new};")
        elif path == "a/greet.tmpl":
            head, rest = text.split("{WHO}", 1)
            new_text = _same_size(head, rng) + "{WHO}" + rest
        else:
            new_text = _same_size(text, rng)
        assert len(new_text) == len(text)
        m["srcs"][path] = new_text
        keep_mtime = rng.random() < 0.5
        if bp is not None:
            bp("build", "//...", *state.flags)
        target = state.root / path
        before = target.stat()
        write_files(state.root, {path: new_text})
        if keep_mtime:
            os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
        desc = f"same_size {path}" + (" (mtime kept)" if keep_mtime else "")
    elif kind == "attr":
        which = rng.choice(["text", "exe", "who", "cat_cmd", "py_main"])
        if which == "text":
            m["text"] = f"write {word}"
        elif which == "exe":
            m["exe"] = not m["exe"]
        elif which == "who":
            m["who"] = word
        elif which == "cat_cmd":
            m["cat_cmd"] = rng.choice([i for i in range(len(GENRULE_CMDS)) if i != m["cat_cmd"]])
        else:
            m["py_main"] = "main_b.py" if m["py_main"] == "main_a.py" else "main_a.py"
        desc = f"attr {which}={m[which]!r}"
    elif kind == "bzl":
        if rng.random() < 0.8:
            m["bzl_const"] = f"made by defs.bzl {word}"
            desc = f"bzl const={m['bzl_const']!r}"
        else:
            m["bzl_suffix"] = ".text" if m["bzl_suffix"] == ".txt" else ".txt"
            desc = f"bzl suffix={m['bzl_suffix']}"
    elif kind == "add_target" or (kind == "remove_target" and not m["extras"]):
        n = m["next_extra"]
        m["next_extra"] += 1
        m["extras"].append(n)
        desc = f"add //a:extra_{n}"
    elif kind == "remove_target":
        n = rng.choice(m["extras"])
        m["extras"].remove(n)
        desc = f"remove //a:extra_{n}"
    elif kind == "delete_source":
        m["data2"] = not m["data2"]
        desc = "delete a/data2.txt and its references" if not m["data2"] else "re-create a/data2.txt"
    elif kind == "flag":
        if state.flags:
            state.flags = []
        else:
            state.flags = ["--define", "mode=fast"]
        desc = f"flags {' '.join(state.flags) or '(none)'}"
    elif kind == "touch":
        path = rng.choice(sorted(p for p in m["srcs"] if p != "a/data2.txt" or m["data2"]))
        os.utime(state.root / path)
        desc = f"touch {path} (same content, new mtime)"
    elif kind == "clean":
        if bp is not None:
            bp("clean")
        desc = "bp clean (outputs come back from the cache)"
    elif kind == "nothing":
        desc = "no edit (the build may be told a no-op from the last one's proof)"
    else:
        raise ValueError(f"unknown edit kind {kind}")
    write_files(state.root, render(m))
    return desc


# ---------------------------------------------------------------------------------------
# Building and comparing


def run_bp(root: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    home = cache.parent / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), HOME=str(home))
    if args[0] in ("build", "test"):   # //a:unresolved declares a symlink
        args = (args[0], "--experimental_allow_unresolved_symlinks", *args[1:])
    return subprocess.run([sys.executable, "-m", "buildpy", "-C", str(root), *args],
                          env=env, capture_output=True, text=True, timeout=600)


def snapshot(root: Path) -> dict[str, tuple[bytes | str, int]]:
    """Every file under bp-bin: relative path -> (bytes, permission bits). Symlinks are
    followed: their content is compared, not where they point (a runfiles tree's links
    name their own workspace); a relative one is a declared symlink, compared by its
    text."""
    result: dict[str, tuple[bytes | str, int]] = {}
    top = root / "bp-bin"
    if not top.exists():
        return result
    top = top.resolve()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        base = Path(dirpath)
        for name in filenames:
            path = base / name
            rel = str(path.relative_to(top))
            if path.is_symlink() and not os.path.isabs(os.readlink(path)):
                result[rel] = (f"<symlink to {os.readlink(path)}>", 0)
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                result[rel] = ("<dangling symlink>", 0)
                continue
            if not stat.S_ISREG(st.st_mode):
                result[rel] = (f"<mode {stat.S_IFMT(st.st_mode):o}>", 0)
                continue
            result[rel] = (path.read_bytes(), stat.S_IMODE(st.st_mode))
    return result


def normalize(data: bytes | str, root: Path) -> bytes | str:
    """Outputs may name their workspace's absolute path (runfiles manifests)."""
    if isinstance(data, bytes):
        return data.replace(str(root.resolve()).encode(), b"<ROOT>").replace(
            str(root).encode(), b"<ROOT>")
    return data


def copy_sources(src: Path, dst: Path) -> None:
    def ignore(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if Path(directory) == src and n in OUTPUT_LINKS]
    shutil.copytree(src, dst, symlinks=True, ignore=ignore)


def run_launcher(root: Path) -> tuple[int, str]:
    """Run the py_binary as `bp run` would (its launcher finds its runfiles tree)."""
    proc = subprocess.run([str(root / "bp-bin" / "c" / "pybin")], capture_output=True,
                          text=True, timeout=60, cwd=root)
    return proc.returncode, proc.stdout + proc.stderr.replace(str(root), "<ROOT>")


STATUSES = ("PASSED", "FAILED", "FLAKY", "TIMEOUT", "NO STATUS", "SKIPPED")


def outcome_of_tests(proc: subprocess.CompletedProcess) -> tuple[int, list[str]]:
    """bp test's exit code and each test's label and status, without times and
    "(cached)" (a cached result is the point of an incremental build)."""
    outcome = []
    for line in (proc.stdout + proc.stderr).splitlines():
        words = line.split()
        if words and words[0].startswith("//"):
            status = next((s for s in STATUSES if s in line), None)
            if status:
                outcome.append(f"{words[0]} {status}")
    return proc.returncode, sorted(outcome)


def check_step(ws_a: Path, cache_a: Path, flags: list[str], scratch: Path,
               served: bool = False) -> list[str]:
    """Build `ws_a` incrementally (with `served`, through its analysis server) and a copy
    of it from scratch; the differences. The from-scratch side runs in a thread while
    the incremental side runs its tests."""
    problems: list[str] = []
    flags_a = [*flags, "--analysis_server=yes"] if served else flags
    a = run_bp(ws_a, cache_a, "build", "//...", *flags_a)
    if a.returncode != 0:
        problems.append(f"incremental build failed ({a.returncode}):\n{a.stderr[-3000:]}")
    if "damaged" in a.stderr:
        problems.append(f"incremental build warned of a damaged cache entry:\n{a.stderr[-2000:]}")
    ws_b = scratch / "b" / "ws"
    if ws_b.parent.exists():
        shutil.rmtree(ws_b.parent)
    ws_b.parent.mkdir(parents=True)
    copy_sources(ws_a, ws_b)
    cache_b = ws_b.parent / "cache"

    def from_scratch():
        b = run_bp(ws_b, cache_b, "build", "//...", *flags)
        if b.returncode != 0:
            return b, None, None, None
        snap = snapshot(ws_b)
        return b, snap, run_launcher(ws_b), outcome_of_tests(
            run_bp(ws_b, cache_b, "test", "//...", *flags))

    with ThreadPoolExecutor(1) as pool:
        b_side = pool.submit(from_scratch)
        if a.returncode == 0:
            snap_a = snapshot(ws_a)
            ra = run_launcher(ws_a)
            ta = outcome_of_tests(run_bp(ws_a, cache_a, "test", "//...", *flags_a))
        b, snap_b, rb, tb = b_side.result()
    if b.returncode != 0:
        problems.append(f"from-scratch build failed ({b.returncode}):\n{b.stderr[-3000:]}")
    if problems:
        return problems
    problems += compare(snap_a, snap_b, ws_a, ws_b, stale_ok=True)
    if ra != rb:
        problems.append(f"running bp-bin/c/pybin differs: incremental {ra} vs from scratch {rb}")
    if ta != tb:
        problems.append(f"bp test differs: incremental {ta} vs from scratch {tb}")
    return problems


def compare(snap_a: dict, snap_b: dict, ws_a: Path, ws_b: Path,
            stale_ok: bool = False) -> list[str]:
    """How two `snapshot`s differ: the set of files, their bytes, their permission bits.
    With `stale_ok`, files only the incremental build has are allowed: as in Bazel, the
    outputs of removed targets (or of renamed outputs) stay in the output tree."""
    problems = []
    for rel in sorted(set(snap_a) | set(snap_b)):
        if rel not in snap_a:
            problems.append(f"{rel}: only in the from-scratch build")
        elif rel not in snap_b:
            if not stale_ok:
                problems.append(f"{rel}: only in the incremental build")
        else:
            (da, xa), (db, xb) = snap_a[rel], snap_b[rel]
            if normalize(da, ws_a) != normalize(db, ws_b):
                problems.append(f"{rel}: content differs: incremental {_show(da)} "
                                f"vs from scratch {_show(db)}")
            if xa != xb:
                problems.append(f"{rel}: mode differs: incremental {xa:o}, "
                                f"from scratch {xb:o}")
    return problems


def _show(data: bytes | str) -> str:
    text = repr(data)
    return text if len(text) < 120 else text[:117] + "..."


@dataclass
class Failure:
    seed: int
    step: int
    edits: list[str]
    problems: list[str]

    def __str__(self) -> str:
        lines = [f"MISMATCH seed={self.seed} step={self.step}", "edits so far:"]
        lines += [f"  {i}: {e}" for i, e in enumerate(self.edits)]
        lines += ["differences:"] + [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def run(steps: int, seed: int, keep: bool = False, kinds: list[str] | None = None,
        stop_at_first: bool = True, out=print, served: bool = False) -> list[Failure]:
    """Step 0 builds the initial workspace; each further step applies one random edit
    and checks. The first steps make each kind of edit once, in an order the seed
    shuffles, so that a short run covers them all. With `served`, each incremental
    build asks the workspace's analysis server (buildpy/server.py), stopped at the end."""
    rng = random.Random(seed)
    schedule = list(kinds or KINDS)   # the first steps make every kind of edit once
    rng.shuffle(schedule)
    if "add_target" in schedule and "remove_target" in schedule:
        i, j = schedule.index("add_target"), schedule.index("remove_target")
        schedule[min(i, j)], schedule[max(i, j)] = "add_target", "remove_target"
    tmp = Path(tempfile.mkdtemp(prefix=f"bp-differential-{seed}-"))
    state = State(root=tmp / "a" / "ws", model=initial_model())
    make_workspace(state.root, state.model)
    cache_a = tmp / "a" / "cache"
    failures: list[Failure] = []
    edits: list[str] = []
    try:
        for step in range(steps + 1):
            started = time.monotonic()
            kind = [schedule[step - 1]] if 0 < step <= len(schedule) else kinds
            desc = ("initial workspace" if step == 0 else
                    random_edit(state, rng, kind,
                                bp=lambda *args: run_bp(state.root, cache_a, *args)))
            edits.append(desc)
            problems = check_step(state.root, cache_a, state.flags, tmp, served)
            took = time.monotonic() - started
            out(f"step {step:4d} {'FAIL' if problems else 'ok  '} {took:5.1f}s  {desc}")
            if problems:
                failures.append(Failure(seed, step, list(edits), problems))
                if stop_at_first:
                    break
    finally:
        if served:
            run_bp(state.root, cache_a, "shutdown")
        if keep or failures:
            out(f"workspace kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return failures


# ---------------------------------------------------------------------------------------
# Watch mode: one `bp build --watch //...` session through all the edits

# flags are fixed for a watch session; `bp clean` would race with it; no edit, no iteration
WATCH_KINDS = [k for k in KINDS if k not in ("flag", "clean", "nothing")]
# written after each edit, last: an action's input, so its change starts an iteration,
# and the first name in the summary's sorted list ("A" sorts before every other path)
SENTINEL = "A/step.txt"
WATCH_FILES = {"A/BUILD": 'genrule(name = "step", srcs = ["step.txt"], outs = ["step.out"], '
                          'cmd = "cat $< > $@")\n'}
WATCH_WAIT = 300.0   # seconds: the bound on each iteration


class _Watch:
    """A `bp build --watch //...` process; its output lines, read by a thread."""

    def __init__(self, root: Path, cache: Path):
        import queue
        import threading

        home = cache.parent / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, XDG_CACHE_HOME=str(cache), HOME=str(home),
                   PYTHONUNBUFFERED="1")
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "buildpy", "-C", str(root), "build",
             "--experimental_allow_unresolved_symlinks", "--watch", "//..."],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def summary(self, changed: str | None) -> str:
        """The summary line of the iteration that saw `changed` (None: the first build),
        once the watch waits again."""
        import queue

        deadline = time.monotonic() + WATCH_WAIT
        found = None
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                line = None
            if line is None:
                raise RuntimeError("the watch ended or stopped answering:\n"
                                   + "\n".join(self.seen[-60:]))
            self.seen.append(line)
            if line.startswith("[watch] ") and " run, " in line and (
                    changed is None and "initial build" in line or
                    changed is not None and f"changed ({changed}" in line):
                found = line
            elif found is not None and line.startswith("[watch] Watching"):
                return found

    def stop(self) -> None:
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(60)


def check_watched(ws_a: Path, line: str, output: list[str], scratch: Path) -> list[str]:
    """The watched build's outputs against a from-scratch build of a copy."""
    if not line.endswith(", OK"):
        return [f"watched build failed: {line}\n" + "\n".join(output[-40:])]
    ws_b = scratch / "b" / "ws"
    if ws_b.parent.exists():
        shutil.rmtree(ws_b.parent)
    ws_b.parent.mkdir(parents=True)
    copy_sources(ws_a, ws_b)
    b = run_bp(ws_b, ws_b.parent / "cache", "build", "//...")
    if b.returncode != 0:
        return [f"from-scratch build failed ({b.returncode}):\n{b.stderr[-3000:]}"]
    problems = compare(snapshot(ws_a), snapshot(ws_b), ws_a, ws_b, stale_ok=True)
    ra, rb = run_launcher(ws_a), run_launcher(ws_b)
    if ra != rb:
        problems.append(f"running bp-bin/c/pybin differs: watched {ra} vs from scratch {rb}")
    return problems


def run_watch(steps: int, seed: int, keep: bool = False, out=print) -> list[Failure]:
    """As `run`, with one watch session doing every incremental build: each edit (the
    step number written to SENTINEL last) is awaited as one iteration's summary, then
    the outputs are compared with a from-scratch build."""
    rng = random.Random(seed)
    schedule = list(WATCH_KINDS)
    rng.shuffle(schedule)   # a BUILD, a .bzl and a source edit first: a short run has them
    schedule.sort(key=lambda kind: kind not in ("attr", "bzl", "source"))
    i, j = schedule.index("add_target"), schedule.index("remove_target")
    schedule[min(i, j)], schedule[max(i, j)] = "add_target", "remove_target"
    tmp = Path(tempfile.mkdtemp(prefix=f"bp-differential-watch-{seed}-"))
    state = State(root=tmp / "a" / "ws", model=initial_model())
    make_workspace(state.root, state.model)
    write_files(state.root, dict(WATCH_FILES, **{SENTINEL: "step 0\n"}))
    watch = _Watch(state.root, tmp / "a" / "cache")
    failures: list[Failure] = []
    edits: list[str] = []
    try:
        for step in range(steps + 1):
            started = time.monotonic()
            if step == 0:
                desc = "initial workspace"
                line = watch.summary(None)
            else:
                kind = [schedule[step - 1]] if step <= len(schedule) else WATCH_KINDS
                desc = random_edit(state, rng, kind)
                write_files(state.root, {SENTINEL: f"step {step}\n"})
                line = watch.summary(SENTINEL)
            edits.append(desc)
            problems = check_watched(state.root, line, watch.seen, tmp)
            took = time.monotonic() - started
            out(f"step {step:4d} {'FAIL' if problems else 'ok  '} {took:5.1f}s  {desc}"
                f"  {line.split(': ', 1)[1]}")
            if problems:
                failures.append(Failure(seed, step, list(edits), problems))
                break
    finally:
        watch.stop()
        if keep or failures:
            out(f"workspace kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return failures
