"""Random inputs for bp's fuzz test: labels, target patterns, queries and BUILD files, both
built from the grammar and mutated byte by byte, plus the base workspace they run in.

Hypothesis strategies only; knows bp's input languages and the prelude's rules, runs
nothing. Inputs that only a subprocess may take (they can crash the Starlark parser) are
made by `crash_class_build_files` and never by the in-process strategies.
"""

from __future__ import annotations

from hypothesis import strategies as st

# ---- the workspace every example starts from ----------------------------------------

BASE_FILES: dict[str, str] = {
    "WORKSPACE": "",
    "a/BUILD": (
        'genrule(name = "g", srcs = ["x.txt"], outs = ["g.out"], cmd = "cat $(SRCS) > $@",\n'
        '        visibility = ["//visibility:public"])\n'
        'sh_binary(name = "s", srcs = ["s.sh"], deps = ["//b:lib"])\n'
        'sh_test(name = "t_test", srcs = ["s.sh"], data = [":g"], tags = ["small"],\n'
        '        visibility = ["//visibility:public"])\n'
        'filegroup(name = "fg", srcs = [":g", "x.txt"])\n'
        'config_setting(name = "fast", define_values = {"mode": "fast"})\n'
    ),
    "a/x.txt": "hi\n",
    "a/s.sh": "#!/bin/sh\necho s\n",
    "b/BUILD": (
        'load(":defs.bzl", "twice")\n'
        'sh_library(name = "lib", srcs = ["l.sh"], visibility = ["//visibility:public"])\n'
        'alias(name = "al", actual = ":lib")\n'
        'test_suite(name = "suite", tests = ["//a:t_test"])\n'
        'twice(name = "tw")\n'
    ),
    "b/l.sh": "echo lib\n",
    "b/defs.bzl": (
        'def twice(name):\n'
        '    native.genrule(name = name, outs = [name + ".out"], cmd = "echo 2 > $@")\n'
    ),
}
EXECUTABLE = ("a/s.sh",)
FUZZ_PACKAGE = "fz"   # the package whose BUILD file the fuzz writes

# ---- labels and patterns ------------------------------------------------------------

_NAME_CHARS = "abcxyz_019-.+=,@~/"
# \udcff: a byte that is not UTF-8, as Python decodes it from argv (surrogateescape)
_ODD_CHARS = " :/\\\"'$()[]{}|*?!#%&<>^`;\t\n\x00\u00e9\u2603\U0001f600\udcff"
NAMES = st.one_of(
    st.sampled_from(["g", "s", "t_test", "fg", "fast", "lib", "al", "suite", "tw", "x.txt",
                     "s.sh", "g.out", "all", "*", "all-targets", "...", "BUILD",
                     "defs.bzl", "__pkg__", "__subpackages__", "public", "private"]),
    st.text(alphabet=_NAME_CHARS, min_size=1, max_size=8),
    st.text(alphabet=_NAME_CHARS + _ODD_CHARS, max_size=6),
)
PACKAGES = st.one_of(
    st.sampled_from(["a", "b", FUZZ_PACKAGE, "", "a/b", "nope", "visibility", "..."]),
    st.text(alphabet=_NAME_CHARS + _ODD_CHARS, max_size=6),
)


@st.composite
def labels(draw) -> str:
    """Label-shaped text: mostly well formed, sometimes not."""
    repo = draw(st.sampled_from(["", "", "", "@", "@prelude", "@@x", "@bad repo"]))
    package = draw(PACKAGES)
    name = draw(NAMES)
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return f":{name}"
    if shape == 1:
        return name
    if shape == 2:
        return f"{repo}//{package}"
    if shape == 3:
        return f"{repo}//{package}:{name}:{draw(NAMES)}"
    return f"{repo}//{package}:{name}"


@st.composite
def patterns(draw) -> str:
    """Target patterns, negative ones included."""
    package = draw(PACKAGES)
    form = draw(st.sampled_from([
        "{l}", "//{p}/...", "//{p}:all", "//{p}:*", "//{p}/...:all", "//{p}/...:*",
        "//{p}:all-targets", "//...", "...", "{p}/...", "-{l}", "-//{p}/...", "//{p}/...:{n}",
    ]))
    return form.format(l=draw(labels()), p=package, n=draw(NAMES))


# ---- queries ------------------------------------------------------------------------

_FUNCTIONS = {   # name -> argument kinds: e expression, w word, i integer
    "deps": "ei", "rdeps": "eei", "allrdeps": "ei", "somepath": "ee", "allpaths": "ee",
    "kind": "we", "filter": "we", "attr": "wwe", "labels": "we", "tests": "e",
    "buildfiles": "e", "loadfiles": "e", "rbuildfiles": "ww", "siblings": "e",
    "same_pkg_direct_rdeps": "e", "visible": "ee", "some": "ei", "config": "ew",
    "subquery": "e", "inputs": "we", "outputs": "we", "mnemonic": "we", "emit": "we",
}
_OPTIONAL_LAST = {"deps", "rdeps", "allrdeps", "some"}
_SET_OPS = ["intersect", "^", "union", "+", "except", "-"]
_QUERY_WORDS = st.one_of(
    st.sampled_from(["rule", "genrule", "sh_.*", "file", "source file", ".*", "test",
                     "tags", "srcs", "deps", "cmd", "small", "[", "(", "\\", "a/x.txt",
                     "b/defs.bzl", "target", "exec", "null", "Genrule", "summary", "\"\"",
                     "*", "??", "(?P<x", "a{99999999999}"]),
    st.text(alphabet="abc.*+?[](){}|^$\\ '\"-\udcff", max_size=6),
)
_INTS = st.one_of(st.integers(-3, 5), st.sampled_from([10**30, -(10**30)]),
                  st.sampled_from(["0x10", "1.5", "1e3", "one"]))


def _word(draw) -> str:
    text = draw(_QUERY_WORDS)
    quote = draw(st.sampled_from(["", '"', "'", '"', ""]))
    if quote and quote not in text:
        return f"{quote}{text}{quote}"
    return text if text and not any(c in text for c in " '\"()|,=") else f'"{text}"'


@st.composite
def query_exprs(draw, depth: int = 3) -> str:
    """A query expression in Bazel's syntax and bp's pipelines, nested up to `depth`."""
    if depth <= 0 or draw(st.integers(0, 4)) == 0:
        leaf = draw(st.integers(0, 5))
        if leaf == 0:
            return "$" + draw(st.sampled_from(["x", "y", "undefined"]))
        if leaf == 1:
            words = draw(st.lists(patterns(), max_size=3))
            return "set(" + " ".join(words) + ")"
        text = draw(patterns())
        return f'"{text}"' if draw(st.booleans()) and '"' not in text else text
    sub = query_exprs(depth - 1)
    form = draw(st.integers(0, 6))
    if form == 0:
        return f"({draw(sub)} {draw(st.sampled_from(_SET_OPS))} {draw(sub)})"
    if form == 1:
        var = draw(st.sampled_from(["x", "y"]))
        return f"let {var} = {draw(sub)} in {draw(sub)}"
    if form == 2:   # a pipeline: the previous result fills the last set argument
        stages = []
        for _ in range(draw(st.integers(1, 3))):
            name = draw(st.sampled_from(sorted(_FUNCTIONS) + _SET_OPS))
            if name in _SET_OPS:
                stages.append(f"{name} {draw(sub)}")
                continue
            kinds = _FUNCTIONS[name].replace("e", "", 1) if "e" in _FUNCTIONS[name] \
                else _FUNCTIONS[name]
            args = [_arg(draw, kind, sub) for kind in kinds]
            stages.append(" ".join([name, *args]))
        return f"({draw(sub)} | " + " | ".join(stages) + ")"
    name = draw(st.sampled_from(sorted(_FUNCTIONS) + ["nosuchfunction"]))
    kinds = _FUNCTIONS.get(name, "e")
    if name in _OPTIONAL_LAST and draw(st.booleans()):
        kinds = kinds[:-1]
    if draw(st.integers(0, 9)) == 0:   # a wrong number of arguments
        kinds = kinds[:-1] if draw(st.booleans()) else kinds + draw(st.sampled_from("ewi"))
    return f"{name}(" + ", ".join(_arg(draw, kind, sub) for kind in kinds) + ")"


def _arg(draw, kind: str, sub) -> str:
    if kind == "w":
        return _word(draw)
    if kind == "i":
        return str(draw(_INTS))
    return draw(sub)


def mutate_text(draw, text: str, alphabet: str) -> str:
    """Up to three character-level edits: delete, insert or duplicate a span."""
    for _ in range(draw(st.integers(0, 3))):
        if not text:
            break
        at = draw(st.integers(0, len(text) - 1))
        span = draw(st.integers(1, 4))
        edit = draw(st.integers(0, 2))
        if edit == 0:
            text = text[:at] + text[at + span:]
        elif edit == 1:
            text = text[:at] + draw(st.text(alphabet=alphabet, min_size=1, max_size=3)) \
                + text[at:]
        else:
            text = text[:at] + text[at:at + span] * 2 + text[at + span:]
    return text


@st.composite
def queries(draw) -> str:
    """A query expression, mutated now and then."""
    text = draw(query_exprs())
    if draw(st.integers(0, 3)) == 0:
        text = mutate_text(draw, text, "()|,=$+-^\"' \\\n\x00#:/@é")
    return text


@st.composite
def deep_queries(draw) -> str:
    """Deeply nested queries (Python's recursion limit is the bound they meet)."""
    depth = draw(st.integers(200, 5000))
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return "(" * depth + "//a:g" + ")" * depth
    if shape == 1:
        return "deps(" * depth + "//a:g" + ")" * depth
    if shape == 2:
        return " + ".join(["//a:g"] * depth)
    return "let x = //a:g in " * depth + "$x"


# ---- BUILD files --------------------------------------------------------------------

_COMMON = {"visibility": "label_list", "tags": "string_list", "testonly": "bool"}
RULES: dict[str, dict[str, str]] = {   # the prelude's rules and (most of) their attributes
    "genrule": {"srcs": "label_list", "outs": "output_list", "cmd": "cmd", "tools":
                "label_list", "executable": "bool", "message": "string", "local": "bool"},
    "filegroup": {"srcs": "label_list", "data": "label_list", "output_group": "string"},
    "alias": {"actual": "label"},
    "test_suite": {"tests": "label_list"},
    "sh_binary": {"srcs": "label_list", "deps": "label_list", "data": "label_list"},
    "sh_library": {"srcs": "label_list", "deps": "label_list", "data": "label_list"},
    "sh_test": {"srcs": "label_list", "deps": "label_list", "data": "label_list",
                "size": "size", "args": "string_list", "env": "string_dict"},
    "py_library": {"srcs": "label_list", "deps": "label_list", "imports": "string_list"},
    "py_binary": {"srcs": "label_list", "deps": "label_list", "main": "label",
                  "python_version": "string"},
    "py_test": {"srcs": "label_list", "deps": "label_list", "main": "label"},
    "cc_library": {"srcs": "label_list", "hdrs": "label_list", "deps": "label_list",
                   "copts": "string_list", "defines": "string_list", "linkstatic": "bool",
                   "includes": "string_list", "strip_include_prefix": "string"},
    "cc_binary": {"srcs": "label_list", "deps": "label_list", "linkopts": "string_list",
                  "stamp": "int"},
    "cc_test": {"srcs": "label_list", "deps": "label_list"},
    "config_setting": {"values": "string_dict", "define_values": "string_dict",
                       "constraint_values": "label_list"},
    "constraint_setting": {"default_constraint_value": "label"},
    "constraint_value": {"constraint_setting": "label"},
    "platform": {"constraint_values": "label_list", "parents": "label_list",
                 "exec_properties": "string_dict"},
    "toolchain_type": {},
    "toolchain": {"toolchain_type": "label", "toolchain": "label",
                  "target_settings": "label_list"},
    "sh_toolchain": {"path": "string"},
    "py_runtime": {"interpreter_path": "string", "interpreter": "label",
                   "python_version": "string"},
}
# genrule commands: only these (and mutations of their Make variables) are ever run
SAFE_COMMANDS = [
    "echo hi > $@", "cat $(SRCS) > $@", "cat $< > $@", "touch $(OUTS)",
    "cat $(location :x) > $@", "echo $(locations //a:g) > $@", "cp $(location //a:x.txt) $@",
    "echo $(BINDIR) $(GENDIR) $(TARGET_CPU) $(COMPILATION_MODE) > $@",
    "echo $$HOME > $@", "echo $(UNKNOWN) > $@", "echo $( > $@", "echo $(location) > $@",
    "exit 1", "true", "echo 'a b' \"c\" > $@", "printf '%s' $(RULEDIR) > $@",
]
_STRINGS = st.one_of(
    st.sampled_from(["", "x", "x.txt", "s.sh", "$(location :g)", "$@", "small", "manual",
                     "//visibility:public", "../x", "/abs", "a b", "é", "\\", "\n"]),
    st.text(max_size=10),
)
_LABEL_STRINGS = st.one_of(labels(), st.sampled_from(
    [":x", ":x.txt", "x.txt", "//a:g", "//a:x.txt", "//b:lib", ":t0", ":t1", ":t2",
     "//visibility:public", "//visibility:private", "//fz:__pkg__", "glob"]))


def _literal(value) -> str:
    return repr(value) if not isinstance(value, str) else _string(value)


def _string(text: str) -> str:
    """A Starlark string literal for any text (no lone surrogates)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    escaped = escaped.replace("\r", "\\r").replace("\x00", "\\x00")
    return f'"{escaped}"'


@st.composite
def attr_values(draw, kind: str, depth: int = 2) -> str:
    """Starlark source for an attribute value of `kind`: usually right, sometimes not."""
    if kind != "cmd" and draw(st.integers(0, 7)) == 0:   # a command runs: only safe ones
        return draw(any_values(depth))
    if kind == "label_list":
        items = draw(st.lists(_LABEL_STRINGS, max_size=4))
        text = "[" + ", ".join(_string(i) for i in items) + "]"
        if draw(st.integers(0, 5)) == 0:
            text = f'glob([{_string(draw(st.sampled_from(["*", "**/*.sh", "*.txt", "[", "**"])))}])'
        if draw(st.integers(0, 6)) == 0:
            text = f'select({{":fast": {text}, "//conditions:default": []}})'
        return text
    if kind == "label":
        return _string(draw(_LABEL_STRINGS))
    if kind == "output_list":
        names = draw(st.lists(st.one_of(st.sampled_from(
            ["o.txt", "o2.txt", "d/o.txt", "../o", "x.txt", "", "o.txt"]), NAMES), max_size=3))
        return "[" + ", ".join(_string(n) for n in names) + "]"
    if kind == "cmd":
        return _string(draw(st.sampled_from(SAFE_COMMANDS)))
    if kind == "string_list":
        return "[" + ", ".join(_string(s) for s in draw(st.lists(_STRINGS, max_size=3))) + "]"
    if kind == "string_dict":
        items = draw(st.dictionaries(_STRINGS, _STRINGS, max_size=3))
        return "{" + ", ".join(f"{_string(k)}: {_string(v)}" for k, v in items.items()) + "}"
    if kind == "bool":
        return draw(st.sampled_from(["True", "False", "1", "0"]))
    if kind == "int":
        return str(draw(st.one_of(st.integers(-2, 2), st.just(2**70))))
    if kind == "size":
        return _string(draw(st.sampled_from(["small", "medium", "large", "enormous", "huge"])))
    return _string(draw(_STRINGS))


@st.composite
def any_values(draw, depth: int = 2) -> str:
    """Any Starlark expression that evaluates (or fails to) to a value."""
    if depth <= 0:
        return draw(st.one_of(
            _STRINGS.map(_string), st.integers(-2**70, 2**70).map(str),
            st.sampled_from(["None", "True", "False", "1.5", "-0.0", "struct()", "[]", "{}",
                             "()", "len", "x", "1 // 0", "undefined_name"])))
    sub = any_values(depth - 1)
    form = draw(st.integers(0, 7))
    if form == 0:
        return "[" + ", ".join(draw(st.lists(sub, max_size=3))) + "]"
    if form == 1:
        return "{" + ", ".join(f"{draw(sub)}: {draw(sub)}"
                               for _ in range(draw(st.integers(0, 2)))) + "}"
    if form == 2:
        return f'select({{":fast": {draw(sub)}, "//conditions:default": {draw(sub)}}})'
    if form == 3:
        return f"{draw(sub)} {draw(st.sampled_from(['+', '*', '%', '|', '==', 'in']))} " \
               f"{draw(sub)}"
    if form == 4:
        return f"({draw(sub)},)"
    if form == 5:
        return f"[x for x in {draw(sub)}]"
    return draw(sub)


@st.composite
def starlark_exprs(draw) -> str:
    """Expressions for `cquery --output=starlark --starlark:expr`, over `target`."""
    field = draw(st.sampled_from([
        "target", "target.label", "str(target.label)", "target.label.name",
        "target.label.package", "target.attr", "target.attr.srcs", "target.attr.cmd",
        "target.attr.nosuch", "providers(target)", "providers(target)['DefaultInfo']",
        "target.files", "target.files.to_list()", "[f.path for f in target.files.to_list()]",
        "build_options(target)", "target.label.workspace_name", "fail('x')", "len(target)",
        "'\udcff'",
        "target[0]", "json.encode(target)", "dir(target)"]))
    if draw(st.booleans()):
        return field
    return f"{field} {draw(st.sampled_from(['+', '==', 'in', '%', 'if True else']))} " \
           f"{draw(any_values(1))}"


_STATEMENTS = [
    'x = [1, 2]', 'def f(a, b = 1):\n    return a', 'for i in range(3):\n    pass',
    'load(":nope.bzl", "y")', 'load("//b:defs.bzl", "twice")', 'load("//b:defs.bzl", "nope")',
    'fail("stop")', 'print("hello")', 'package(default_visibility = ["//visibility:public"])',
    'exports_files(["x.txt"])', 'exports_files(["x.txt"], visibility = ["//a:__pkg__"])',
    'y = select({"//conditions:default": 1}) + select({"//conditions:default": 2})',
    'z = native.existing_rules()', 'glob(["**"], exclude = ["a"])', 'glob([], allow_empty = 0)',
    'if True:\n    x = 1', 'x = 1\nx = 2', 'x += 1', 'def g():\n    g()\ng()',
    'package_name()', 'repository_name()', 'struct(a = 1).b', 'json.encode({1: 2})',
    'native.genrule(name = "n", outs = ["n.o"], cmd = "true")',
    'twice(name = "tw2")', 'while True:\n    pass', 'lambda x: x', 'x = 1 if 2 else 3',
    '"%s %d" % ("a", "b")', '[1, 2][5]', '{"a": 1}["b"]', 'int("x")', 'None.x',
    'provider()', 'rule(implementation = None)', 'depset([1, [2]])',
]
_TOKENS = ["(", ")", "[", "]", "{", "}", ",", ":", "=", "==", "\n", "    ", "\t", "#", "\\",
           '"', "'", '"""', "name", "def", "lambda", "load", "genrule", "**", "*", ".", ";",
           "1", "0x", "if", "else", "return", "pass", "\x00", "\r", "é"]


@st.composite
def rule_calls(draw, index: int) -> str:
    kind = draw(st.sampled_from(sorted(RULES)))
    attrs = {**RULES[kind], **_COMMON}
    chosen = draw(st.lists(st.sampled_from(sorted(attrs)), max_size=4, unique=True))
    name = draw(st.one_of(st.just(f"t{index}"), st.just(f"t{index}"), NAMES))
    parts = [] if draw(st.integers(0, 15)) == 0 else [f"name = {_string(name)}"]
    for attr in chosen:
        parts.append(f"{attr} = {draw(attr_values(attrs[attr]))}")
    if kind == "genrule" and "outs" not in chosen and draw(st.booleans()):
        parts.append(f'outs = ["t{index}.out"]')
    if kind == "genrule" and "cmd" not in chosen and draw(st.booleans()):
        parts.append(f"cmd = {_string(draw(st.sampled_from(SAFE_COMMANDS)))}")
    if draw(st.integers(0, 10)) == 0:
        parts.append(f"{draw(st.sampled_from(['nosuchattr', 'name', 'srcs', '']))} = 1")
    return f"{kind}({', '.join(parts)})"


@st.composite
def build_files(draw, statements: bool = True) -> str:
    """A BUILD file: prelude rule calls with random attribute values, and (when
    `statements`) random Starlark statements and token soup between them."""
    lines = []
    for index in range(draw(st.integers(0, 6))):
        lines.append(draw(rule_calls(index)))
        if statements and draw(st.integers(0, 3)) == 0:
            lines.append(draw(st.sampled_from(_STATEMENTS)))
        if statements and draw(st.integers(0, 12)) == 0:
            lines.append("".join(draw(st.lists(st.sampled_from(_TOKENS), max_size=8))))
    return "\n".join(lines) + "\n"


FUZZ_SOURCES = {"x.txt": "x\n", "s.sh": "#!/bin/sh\necho s\n", "p.py": "print('p')\n",
                "h.h": "int h(void);\n"}
_BUILDABLE = {   # kind -> attribute -> how to fill it in a well-formed target
    "genrule": {"srcs": "deps", "outs": "outs", "cmd": "cmd", "tools": "deps",
                "executable": "bool", "message": "string"},
    "filegroup": {"srcs": "deps", "data": "deps"},
    "alias": {"actual": "dep"},
    "sh_library": {"srcs": "deps", "deps": "deps", "data": "deps"},
    "sh_binary": {"srcs": "script", "deps": "deps", "data": "deps"},
    "sh_test": {"srcs": "script", "deps": "deps", "data": "deps", "args": "strings",
                "size": "size"},
    "py_library": {"srcs": "py", "deps": "deps", "data": "deps"},
    "py_binary": {"srcs": "py", "main": "py1", "deps": "deps", "data": "deps"},
    "test_suite": {"tests": "deps"},
    "config_setting": {"define_values": "defines"},
}
_MANDATORY = {"genrule": ("outs", "cmd"), "alias": ("actual",), "sh_binary": ("srcs",),
              "sh_test": ("srcs",), "py_binary": ("srcs", "main")}


@st.composite
def valid_build_files(draw) -> str:
    """A BUILD file that is mostly well formed (targets t0.. of the prelude's rules,
    depending on each other, on the package's files and on //a and //b), so that
    analysis and execution are reached; now and then with one mistake."""
    count = draw(st.integers(1, 7))
    kinds = [draw(st.sampled_from(sorted(_BUILDABLE))) for _ in range(count)]

    def deps(i: int) -> list[str]:
        # earlier targets mostly (a cycle now and then), files, other packages
        pool = [f":t{j}" for j in range(i)] + ["x.txt", ":x.txt", "//a:g", "//b:lib",
                                               "//a:x.txt", "//b:al"]
        if draw(st.integers(0, 20)) == 0:
            pool.append(f":t{draw(st.integers(0, count - 1))}")
        return draw(st.lists(st.sampled_from(pool), max_size=3, unique=True))

    fill = {
        "deps": lambda i: "[" + ", ".join(map(_string, deps(i))) + "]",
        "dep": lambda i: _string((deps(i) or ["x.txt"])[0]),
        "outs": lambda i: "[" + ", ".join(_string(f"t{i}{s}.out") for s in
                                          draw(st.sampled_from([[""], ["", "b"], ["/d"]]))) + "]",
        "cmd": lambda i: _string(draw(st.sampled_from(SAFE_COMMANDS))),
        "bool": lambda i: draw(st.sampled_from(["True", "False"])),
        "string": lambda i: _string(draw(_STRINGS)),
        "script": lambda i: '["s.sh"]',
        "py": lambda i: '["p.py"]',
        "py1": lambda i: '"p.py"',
        "strings": lambda i: "[" + ", ".join(map(_string, draw(st.lists(_STRINGS, max_size=2)))) + "]",
        "size": lambda i: _string(draw(st.sampled_from(["small", "medium"]))),
        "defines": lambda i: '{"mode": "fast"}',
    }
    lines = []
    for i, kind in enumerate(kinds):
        attrs = _BUILDABLE[kind]
        chosen = set(draw(st.lists(st.sampled_from(sorted(attrs)), max_size=3)))
        chosen |= set(_MANDATORY.get(kind, ()))
        parts = [f'name = "t{i}"']
        for attr in sorted(chosen):
            value = fill[attrs[attr]](i)
            if attrs[attr] == "deps" and draw(st.integers(0, 8)) == 0:
                value = (f'select({{":t{i}cs": {value}, "//conditions:default": []}})'
                         if "config_setting" in kinds else value)
            parts.append(f"{attr} = {value}")
        if draw(st.integers(0, 6)) == 0:
            tag = draw(st.sampled_from(["manual", "local", "no-cache", "exclusive"]))
            parts.append(f"tags = [{_string(tag)}]")
        lines.append(f"{kind}({', '.join(parts)})")
    if "config_setting" in kinds:
        lines.append('config_setting(name = "t0cs", define_values = {"mode": "fast"})')
        lines = [line.replace(':t{}cs'.format(i), ":t0cs") for i, line in enumerate(lines)]
    if draw(st.integers(0, 2)) == 0:   # one mistake
        at = draw(st.integers(0, len(lines) - 1))
        mistake = draw(st.integers(0, 2))
        if mistake == 0:
            lines[at] = lines[at][:-1] + f", {draw(st.sampled_from(sorted(RULES['genrule'])))}" \
                        f" = {draw(any_values(1))})"
        elif mistake == 1:
            lines.append(lines[at])   # a name defined twice
        else:
            lines.insert(at, draw(st.sampled_from(_STATEMENTS)))
    return "\n".join(lines) + "\n"


@st.composite
def mutated_bytes(draw, text: str) -> bytes:
    """Byte-level mutations of `text`: flips, inserted bad bytes, deletions, copies."""
    data = bytearray(text.encode(errors="surrogateescape"))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.integers(0, 3))
        if edit == 0 and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == 1:
            data[at:at] = draw(st.one_of(
                st.binary(min_size=1, max_size=4),
                st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80", b"\r", b"\t"])))
        elif edit == 2:
            del data[at:at + draw(st.integers(1, 8))]
        else:
            data[at:at] = data[at:at + draw(st.integers(1, 16))]
    return bytes(data)


@st.composite
def build_file_bytes(draw) -> bytes:
    """A BUILD file as bytes: generated, then mutated or not."""
    text = draw(st.one_of(build_files(), valid_build_files()))
    if draw(st.booleans()):
        return draw(mutated_bytes(text))
    return text.encode(errors="surrogateescape")


@st.composite
def deep_chains(draw) -> str:
    """A BUILD file whose targets form a long dependency chain (deep recursion)."""
    length = draw(st.integers(300, 3000))
    rules = [f'filegroup(name = "c{i}", srcs = [":c{i + 1}"])' for i in range(length)]
    rules.append(f'filegroup(name = "c{length}")')
    return "\n".join(rules) + "\n"


@st.composite
def crash_class_build_files(draw) -> str:
    """Inputs that have crashed the Starlark parser (segfaults): long `+` chains, deep
    nested lists and calls, huge strings. Run them only in a subprocess."""
    size = draw(st.integers(2000, 20000))
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return "x = " + " + ".join(["1"] * size) + "\n"
    if shape == 1:
        return "x = " + "[" * size + "]" * size + "\n"
    if shape == 2:
        return 'x = "' + "a" * (size * 1000) + '"\n'
    return "x = " + "len(" * size + "[]" + ")" * size + "\n"


@st.composite
def workspace_files(draw) -> str:
    """A WORKSPACE file: its functions with random arguments, statements, junk."""
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        form = draw(st.integers(0, 4))
        if form == 0:
            lines.append(f"workspace(name = {_string(draw(NAMES))})")
        elif form == 1:
            lines.append(f"register_toolchains({', '.join(map(_string, draw(st.lists(patterns(), max_size=2))))})")
        elif form == 2:
            lines.append(f"register_execution_platforms("
                         f"{', '.join(map(_string, draw(st.lists(patterns(), max_size=2))))})")
        elif form == 3:
            lines.append(draw(st.sampled_from(_STATEMENTS)))
        else:
            lines.append(f"{draw(st.sampled_from(['workspace', 'register_toolchains', 'local_repository', 'load']))}"
                         f"({draw(any_values(1))})")
    return "\n".join(lines) + "\n"


# ---- damaged state --------------------------------------------------------------------

DAMAGES = ("truncate", "scribble", "delete", "directory", "dangling-symlink", "append",
           "empty")


@st.composite
def damages(draw) -> tuple[int, str, int]:
    """Which state file to damage (an index, taken modulo the number of files: how many
    there are depends on the build, and what hypothesis draws must not), how, and where
    (a byte offset or size)."""
    return (draw(st.integers(0, 999)), draw(st.sampled_from(DAMAGES)),
            draw(st.integers(0, 4096)))


def damage(path, how: str, at: int) -> None:
    """Damage one file of bp's state or cache as a crash, a bad disk or a user might."""
    import os
    import shutil

    if how == "truncate":
        with open(path, "r+b") as f:
            f.truncate(min(at, max(path.stat().st_size - 1, 0)))
    elif how == "scribble":
        with open(path, "r+b") as f:
            f.seek(min(at, path.stat().st_size))
            f.write(os.urandom(64))
    elif how == "append":
        with open(path, "ab") as f:
            f.write(b"\x00junk\xff" * (1 + at % 50))
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
        if how == "directory":
            path.mkdir()
        elif how == "dangling-symlink":
            path.symlink_to(path.parent / "nowhere")
    del shutil


# ---- flags and rc files ----------------------------------------------------------------

_FLAG_TEXT = st.one_of(st.sampled_from(["", "0", "-1", "1", "99999999999999999999", "x",
                                        "a=b", "=", "a=", "=b", "auto", "HOST_CPUS*0.5",
                                        "1k", "10G", "/nonexistent/dir", ".", "a b",
                                        "\udcff", "a=\udc80"]),
                       st.text(max_size=6))
_FLAGS = {   # flag -> values (None: a flag without value)
    "--platforms": labels(), "--host_platform": labels(),
    "--extra_execution_platforms": patterns(), "--extra_toolchains": patterns(),
    "-c": st.sampled_from(["opt", "dbg", "fastbuild", "bogus"]), "--compilation_mode": _FLAG_TEXT,
    "--define": _FLAG_TEXT, "--jobs": _FLAG_TEXT, "--keep_going": None,
    "--verbose_failures": None, "--subcommands": None, "--color": st.sampled_from(
        ["yes", "no", "auto", "maybe"]), "--spawn_strategy": st.sampled_from(
        ["local", "sandboxed", "bogus", ""]), "--strategy": _FLAG_TEXT,
    "--disk_cache_max_size": _FLAG_TEXT, "--show_result": _FLAG_TEXT,
    "--build_runfile_links": None,
    "--output": st.sampled_from(["label", "json", "graph", "build", "text", "jsonproto",
                                 "starlark", "files", "bogus", ""]),
    "--order_output": st.sampled_from(["no", "deps", "auto", "full", "bogus"]),
    "--implicit_deps": st.sampled_from(["true", "false", "1", "x"]),
    "--universe_scope": patterns(), "--graph:factored": st.sampled_from(["true", "no", "x"]),
    "--loading_timeout": _FLAG_TEXT, "--include_commandline": st.sampled_from(["true", "x"]),
    "--include_artifacts": st.sampled_from(["false", "x"]),
    "--starlark:expr": st.sampled_from(["target.label", "", "1/0", "("]),
    "--query_file": st.sampled_from(["", "/nonexistent", ".", "WORKSPACE", "a/BUILD"]),
    "--nosuchflag": None, "-j": _FLAG_TEXT, "-k": None,
}


@st.composite
def flag_lists(draw) -> list[str]:
    """A few flags of any command, with odd values; `--flag=value` or `--flag value`."""
    args = []
    for flag in draw(st.lists(st.sampled_from(sorted(_FLAGS)), max_size=4)):
        values = _FLAGS[flag]
        if values is None:
            args.append(flag)
        elif draw(st.booleans()) and flag.startswith("--"):
            args.append(f"{flag}={draw(values)}")
        else:
            args += [flag, draw(values)]
    return args


@st.composite
def rc_files(draw) -> str:
    """A `.bprc`: lines of `command flags...`, comments, imports and junk."""
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        command = draw(st.sampled_from(["build", "query", "cquery", "aquery", "test", "common",
                                        "startup", "build:opt", "bogus", "", "import",
                                        "try-import", "#"]))
        rest = draw(flag_lists())
        lines.append(" ".join([command, *(f"'{a}'" if " " in a else a for a in rest)]))
    if draw(st.integers(0, 5)) == 0:
        lines.append(draw(st.text(max_size=20)))
    return "\n".join(lines) + "\n"
