"""Evaluates BUILD, .bzl and WORKSPACE files with starlark-pyo3 and caches frozen modules.

Owns the Starlark side of bp: the injected builtins, `load()` resolution with cycle
reports, evaluation bounds, and turning Starlark errors into bp errors. It does not know
what a package or a target is: the natives it binds come from the loading phase.
"""

from __future__ import annotations

import functools
import itertools
import sys
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import starlark as sl

from buildpy.core.errors import BpError, Location, UserError
from buildpy.core.label import Label, LabelError, PackageId, parse_label
from buildpy.core.signals import interruptions
from buildpy.lang.limits import Bounds, StderrHold, is_panic, panic_error
from buildpy.lang.nesting import check_nesting
from buildpy.lang.rewrite import Rewrite, helper_lines, parse, restore, rewrite
from buildpy.lang.values import CallStack, Frame, Select

BUILTINS_ID = "<builtins>"
NATIVE_ID = "<native>"
ANALYSIS_ID = "<analysis>"
REPOSITORY_ID = "<repository>"   # repository_ctx (repository.bzl)
CC_GLOBALS_ID = "<cc globals>"   # CcInfo and cc_common, globals of .bzl files as in Bazel
_CC_GLOBALS = Label("prelude", "cc", "providers.bzl")
_BUILTINS_PATH = Path(__file__).with_name("builtins.bzl")
_ANALYSIS_PATH = Path(__file__).with_name("analysis.bzl")
_REPOSITORY_PATH = Path(__file__).with_name("repository.bzl")
_CORE_NAMES = ("rule", "aspect", "transition", "analysis_test_transition", "attr",
               "provider", "select", "Label", "print", "depset",
               "DefaultInfo", "OutputGroupInfo", "RunEnvironmentInfo", "ToolchainInfo",
               "TemplateVariableInfo", "InstrumentedFilesInfo", "AnalysisFailureInfo",
               "AnalysisTestResultInfo", "platform_common",
               "config_common", "testing", "coverage_common", "config", "repository_rule",
               "module_extension", "tag_class")
# What .bzl files see in place of Starlark's own functions and operators (rewrite.py)
_TYPE_NAMES = {"str": "bp_str", "repr": "bp_repr", "type": "bp_type", "dir": "bp_dir",
               "_bp_at": "bp_at",
               "_bp_in": "bp_in", "_bp_not_in": "bp_not_in", "_bp_mod": "bp_mod",
               "_bp_format": "bp_format", "_bp_add": "bp_add", "_bp_to_list": "bp_to_list",
               "_bp_merge": "bp_merge", "_bp_merge_all": "bp_merge_all"}
_WORKSPACE_NAMES = ("workspace", "register_toolchains", "register_execution_platforms",
                    "print", "Label", "local_repository", "new_local_repository", "bind")
_MODULE_NAMES = ("module", "bazel_dep", "local_path_override", "archive_override",
                 "single_version_override", "git_override", "multiple_version_override",
                 "use_extension", "use_repo", "use_repo_rule", "register_toolchains",
                 "register_execution_platforms", "print", "Label")
_MAX_CALL_DEPTH = 200
# What a native returns when the Starlark that calls it ignores the result: an opaque
# value crosses back as it is, where None takes a round trip through JSON (a few
# microseconds, for each of the thousands of targets a BUILD file tree declares).
IGNORED = sl.OpaquePythonObject(None)
MAX_LOAD_DEPTH = 100   # .bzl files loading each other; Python's recursion limit is near 190


def to_starlark(value: Any) -> Any:
    """A Python value ready to return to Starlark: selects wrapped, containers copied."""
    if isinstance(value, Select):
        return sl.OpaquePythonObject(value)
    if isinstance(value, (list, tuple)):
        return [to_starlark(v) for v in value]
    if isinstance(value, dict):
        return {k: to_starlark(v) for k, v in value.items()}
    return value


class StarlarkEvalError(UserError):
    """An error Starlark reported (syntax, runtime, fail()): shown unchanged with context."""

    def __init__(self, context: str, starlark_text: str, hint: str | None = None):
        self.context = context
        self.starlark_text = starlark_text.rstrip()
        super().__init__(f"{context}:\n{self.starlark_text}", hint=hint)

    def render(self) -> str:
        return self.message + (f"\nhint: {self.hint}" if self.hint else "")


def _hint_for(message: str) -> str | None:
    """Advice for Starlark errors that bp's own values cause."""
    if "not supported for types `string` and `list`" in message or \
            "not supported for types `list` and `string`" in message:
        return ("if one side is a select() kept in a variable: bp adds a string to a "
                "select() only where the `+` is written next to the select(...) call; write "
                "it there, or move the string into each branch, e.g. "
                "select({\"//c:x\": \"echo \" + \"a\"})")
    if "error: Immutable" in message:
        return ("a frozen value cannot change: a .bzl file's globals once it is loaded, "
                "and another target's providers once analyzed (as in Bazel); copy it "
                "first, e.g. `items = list(dep[MyInfo].items)`")
    return None


class _Abort(Exception):
    """Raised through Starlark after a native stashed the real BpError."""


@dataclass(frozen=True)
class SourceFile:
    """A file to evaluate: the package it belongs to, its path, and how errors show it."""

    package: PackageId
    path: Path
    display: str


class StarlarkEnv:
    """One evaluation environment: builtins bound to `natives`, a cache of frozen modules.

    `natives` maps `_bp_*` names to Python callables; each receives the arguments the
    builtin passes and, as keyword `frames`, the Starlark call stack (outermost first).
    `resolve(label)` gives the SourceFile of a .bzl label, or raises a BpError;
    `read(source)` its text (so that the caller can record what was read).
    `plain_natives` are called without the call stack (they must not fail; a Ctrl-C
    in one still interrupts).
    """

    def __init__(
        self,
        resolve: Callable[[Label], SourceFile],
        natives: Mapping[str, Callable[..., Any]],
        *,
        eval_timeout: float = 60.0,
        prelude_entry: Label | None = None,
        plain_natives: Mapping[str, Callable[..., Any]] | None = None,
        read: Callable[[SourceFile], str] | None = None,
    ):
        self._resolve = resolve
        self._read = read or (lambda source: source.path.read_text(encoding="utf-8"))
        self._bound = {**self._core_natives(), **natives}   # the natives with call stacks
        self._plain_natives = dict(plain_natives or {})
        self._timeout = eval_timeout
        self._prelude_entry = prelude_entry
        self._globals = sl.Globals.extended_by([
            sl.LibraryExtension.StructType, sl.LibraryExtension.CallStack,
            sl.LibraryExtension.Json, sl.LibraryExtension.Map, sl.LibraryExtension.Filter,
            sl.LibraryExtension.Partial,
        ])
        # What Starlark's own (Rust) objects hold must not hold this env: the collector
        # cannot see through them, so a cycle through one is never freed (a leak in any
        # process that runs more than one command). They hold a weak reference.
        this = weakref.ref(self)
        self._loader = sl.FileLoader(lambda module_id: this()._load_callback(module_id))
        self._modules: dict[str, Any] = {}        # module key -> FrozenModule
        self._given: dict[str, Any] = {}   # loadable by a program run_generated runs
        self._sources: dict[str, list[str]] = {}  # display path -> its lines
        self._packages: dict[str, PackageId] = {}  # display path -> package it sits in
        self._stack: list[tuple[str, SourceFile | None]] = []  # files being evaluated
        # the error a native raised, raised again once Starlark has unwound (Starlark
        # would turn it into a message); Ctrl-C in a native stays a KeyboardInterrupt
        self._stashed: BpError | KeyboardInterrupt | None = None
        self._injections: dict[str, Any] = {}
        self._rewrites: dict[str, Rewrite] = {}   # display path -> its rewrite
        self._parameters: dict[str, dict[str, list[str]]] = {}   # display -> def -> params
        self._ids = itertools.count()  # identities of depsets
        self.load_edges: dict[str, set[str]] = {}  # module key -> keys it loads
        self._module_keys: dict[str, str] = {}     # display path of a .bzl -> its label
        self._stderr_hold = StderrHold()

    # ---- public entry points -------------------------------------------------------

    def eval_build_file(self, source: SourceFile, text: str) -> None:
        self._evaluate(source, text, self._injection("build"),
                       f"error loading package '{source.package}'", rewritten="select")

    def eval_workspace_file(self, source: SourceFile, text: str) -> None:
        self._evaluate(source, text, self._injection("workspace"),
                       f"error evaluating {source.display}")

    def eval_module_file(self, source: SourceFile, text: str) -> None:
        """A MODULE.bazel file: module(), bazel_dep(), overrides, use_extension(), ..."""
        self._evaluate(source, text, self._injection("module"),
                       f"error evaluating {source.display}")

    def load(self, label: Label) -> Any:
        """The frozen module of a .bzl file (evaluating it and its loads once)."""
        key = str(label)
        if key not in self._modules:
            self._evaluate_module(label)
        return self._modules[key]

    def location(self, frame: Frame) -> Location:
        """The location of a frame's call: its open parenthesis, as Bazel reports calls."""
        line = self.source_line(frame)
        start = len(line) - len(line.lstrip())
        paren = line.find("(", start)
        return Location(frame.path, frame.line, (paren if paren >= 0 else start) + 1)

    def source_line(self, frame: Frame) -> str:
        lines = self._sources.get(frame.path, ())
        return lines[frame.line - 1] if 0 < frame.line <= len(lines) else ""

    def module_key(self, display: str) -> str:
        """The label of the .bzl file shown as `display` (as load() names it)."""
        return self._module_keys.get(display, display)

    def package_of(self, frame: Frame) -> PackageId | None:
        return self._packages.get(frame.path)

    def forget_sources(self, display: str) -> None:
        """Drop a BUILD file's text once its package is loaded (modules keep theirs)."""
        self._sources.pop(display, None)

    # ---- evaluation ---------------------------------------------------------------

    def _evaluate(self, source: SourceFile, text: str, injection: Any, context: str,
                  module: Any = None, bounded: bool = True, epilogue: str | None = None,
                  rewritten: str | None = None, tree: Any = None) -> Any:
        """`rewritten`: "all" to rewrite a .bzl file's operators (rewrite.py), "select"
        for a BUILD file's; `tree`: the text's Python syntax tree, if already parsed."""
        self._sources[source.display] = text.splitlines()
        changed = rewrite(text, rewritten == "all", tree) if rewritten else None
        if changed is not None:
            self._rewrites[source.display] = changed
        self._packages[source.display] = source.package
        module = module if module is not None else sl.Module()
        bounds = Bounds(self._timeout) if bounded else None
        options = sl.EvalOptions(check_cancelled=bounds, max_callstack_size=_MAX_CALL_DEPTH)
        if source.package.repo != "bp":   # bp's own code need not be checked
            check_nesting(text, source.display)   # deeper code would crash the parser
        self._stack.append((source.display, source))
        interrupted = interruptions()
        try:
            with self._stderr_hold:
                ast = sl.parse(source.display, changed.text if changed else text)
                if injection is not None:
                    sl.eval(module, injection, self._globals, self._loader)
                sl.eval_with(options, module, ast, self._globals, self._loader)
                if epilogue is not None:   # frames in it name this file
                    sl.eval(module, sl.parse(source.display, epilogue), self._globals,
                            self._loader)
        except (sl.StarlarkError, _Abort) as error:
            stashed, self._stashed = self._stashed, None
            if stashed is not None:
                raise stashed from None
            if interruptions() != interrupted:   # (Ctrl-C in Python code Starlark called)
                raise KeyboardInterrupt from None
            message = self._restore(str(error))
            if "Evaluation cancelled" in message and bounds is not None and bounds.exceeded:
                raise UserError(f"{context}: evaluation {bounds.exceeded} and was stopped"
                                f"\n{message.rstrip()}", hint=bounds.hint) from None
            raise StarlarkEvalError(context, message, _hint_for(message)) from None
        except BaseException as error:
            if not is_panic(error):
                raise
            self._stashed = None
            raise panic_error(context, source.display, error) from None
        finally:
            self._stack.pop()
        return module

    def _evaluate_module(self, label: Label) -> None:
        key = str(label)
        if key in self._loading_keys():
            cycle = self._loading_keys()[self._loading_keys().index(key):] + [key]
            raise UserError(f"cycle in load() statements: {' -> '.join(cycle)}",
                            hint="move the shared definitions into a .bzl file that both "
                                 "can load")
        chain = self._loading_keys()
        if len(chain) >= MAX_LOAD_DEPTH:   # each level nests Python and Rust frames
            raise UserError(f"load() statements nest too deeply: more than {MAX_LOAD_DEPTH} "
                            f".bzl files each loaded by the one before ({chain[0]} -> ... -> "
                            f"{chain[-1]} -> {key})",
                            hint="load what a file needs from fewer levels of files")
        source = self._resolve(label)
        try:
            text = self._read(source)
        except OSError as e:
            raise UserError(f"cannot load '{label}': {e.strerror}: {source.path}") from None
        kind = "prelude" if label.repo == "prelude" else "bzl"
        self._module_keys[source.display] = key
        self._stack.append((key, None))
        try:
            tree = parse(text)   # once, for the epilogue and the rewrite
            module = self._evaluate(source, text, self._injection(kind),
                                    f"error loading '{label}'", epilogue=_epilogue(tree),
                                    rewritten="all", tree=tree)
        finally:
            self._stack.pop()
        self._modules[key] = module.freeze()

    def _loading_keys(self) -> list[str]:
        return [key for key, source in self._stack if source is None]

    def _load_callback(self, module_id: str) -> Any:
        try:
            return self._load_by_id(module_id)
        except (BpError, KeyboardInterrupt) as error:   # Ctrl-C stays an interruption
            raise self._abort(error) from None

    def _load_by_id(self, module_id: str) -> Any:
        if module_id in self._given:
            return self._given[module_id]
        if module_id == BUILTINS_ID:
            return self._builtins()
        if module_id == NATIVE_ID:
            return self._native()
        if module_id == ANALYSIS_ID:
            return self._internal(ANALYSIS_ID, _ANALYSIS_PATH)
        if module_id == REPOSITORY_ID:
            return self._internal(REPOSITORY_ID, _REPOSITORY_PATH)
        if module_id == CC_GLOBALS_ID:   # injected, not a load of the file: no load edge
            return self.load(_CC_GLOBALS)
        current = self._current_package()
        try:
            label = parse_label(module_id, current)
        except LabelError as e:
            raise self._at_load(module_id, e.message, e.hint) from None
        if not label.name.endswith(".bzl"):
            raise self._at_load(module_id, f"cannot load '{label}': only .bzl files can be "
                                           "loaded", "name a file ending in '.bzl'")
        parent = self._module_keys.get(self._stack[-1][0], self._stack[-1][0]) \
            if self._stack else None
        if parent is not None:
            self.load_edges.setdefault(parent, set()).add(str(label))
        try:
            return self.load(label)
        except UserError as error:   # a file that cannot be found: at the load() statement
            if error.location is None and error.message.startswith(f"cannot load '{label}'"):
                raise self._at_load(module_id, error.message, error.hint) from None
            raise

    def _at_load(self, module_id: str, message: str, hint: str | None) -> BpError:
        display, _ = self._stack[-1]
        for number, line in enumerate(self._sources.get(display, ()), start=1):
            column = line.find(f'"{module_id}"')
            if column < 0:
                column = line.find(f"'{module_id}'")
            if column >= 0 and "load" in line:
                return UserError(message, location=Location(display, number, column + 1),
                                 source_line=line, hint=hint)
        return UserError(f"{display}: {message}", hint=hint)

    def _current_package(self) -> PackageId:
        for display, _ in reversed(self._stack):
            if display in self._packages:
                return self._packages[display]
        raise AssertionError("load() outside an evaluation")

    # ---- builtins and injections --------------------------------------------------

    def _builtins(self) -> Any:
        return self._internal(BUILTINS_ID, _BUILTINS_PATH)

    def _internal(self, module_id: str, path: Path) -> Any:
        """One of bp's own Starlark modules, with every native bound into it."""
        if module_id not in self._modules:
            module = sl.Module()
            this = weakref.ref(self)   # not the env itself: see __init__
            for name in self._bound:
                module.add_callable(name, _wrapped(this, name))
            for name in self._plain_natives:
                module.add_callable(name, _interruptible(this, name))
            module.add_callable("_bp_next_id", lambda: next(this()._ids))
            source = SourceFile(PackageId("bp", ""), path, module_id)
            self._evaluate(source, path.read_text(encoding="utf-8"), None,
                           f"error in bp's {module_id} (a bug of bp)", module)
            self._modules[module_id] = module.freeze()
        return self._modules[module_id]

    def evaluate_generated(self, display: str, text: str, context: str) -> Any:
        """Evaluate Starlark that bp wrote itself (loads only); returns the frozen module."""
        source = SourceFile(PackageId("bp", ""), Path(display), display)
        return self._evaluate(source, text, None, context).freeze()

    def run_generated(self, display: str, text: str, natives: dict[str, Callable[..., Any]],
                      context: str, module: Any = None,
                      given: Mapping[str, Any] | None = None) -> Any:
        """Run a program bp wrote itself, with extra plain natives, for its effects: no
        time limit, and nothing frozen. Starlark collects garbage only between top-level
        statements, so a long job written as many statements keeps its heap small.
        `given` names frozen modules the program may load() by those names. Returns the
        module, in which more programs may run (after an error too)."""
        if module is None:
            module = sl.Module()
            for name, fn in natives.items():
                module.add_callable(name, fn)
        source = SourceFile(PackageId("bp", ""), Path(display), display)
        before, self._given = self._given, dict(given or {})
        try:
            self._evaluate(source, text, None, context, module, bounded=False)
        finally:
            self._given = before
        return module

    def transition_outputs(self, module_key: str, name: str, settings: dict, attr: dict,
                           context: str) -> Any:
        """What the transition exported as `name` by .bzl file `module_key` returns for
        these input settings and attribute values."""
        module = self._modules.get(f"<transitions {module_key}>")
        if module is None:
            absolute = "@" + module_key if module_key.startswith("//") else module_key
            module = self.evaluate_generated(
                f"<transitions of {module_key}>",
                f'load("{absolute}", "{RULES_GLOBAL}")\n'
                "def apply(name, settings, attr):\n"
                f"    return {RULES_GLOBAL}[name].implementation(settings, struct(**attr))\n",
                context)
            self._modules[f"<transitions {module_key}>"] = module
        return self.call(module, "apply", name, settings, attr, context=context)

    def run_repository_rule(self, module_key: str, name: str, repository: str,
                            attrs: dict, fetch_id: int, workspace_root: str,
                            context: str) -> Any:
        """Run the repository rule that .bzl file `module_key` exports as `name`, for
        `repository` with `attrs` (repository.bzl's fetch)."""
        return self._run_exported("fetch", module_key, name,
                                  (repository, attrs, fetch_id, workspace_root), context)

    def run_module_extension(self, module_key: str, name: str, modules: list,
                             fetch_id: int, workspace_root: str, context: str) -> Any:
        """Run the module extension that .bzl file `module_key` exports as `name`, for
        the modules that use it (repository.bzl's run_extension)."""
        return self._run_exported("run_extension", module_key, name,
                                  (modules, fetch_id, workspace_root), context)

    def _run_exported(self, helper: str, module_key: str, name: str, args: tuple,
                      context: str) -> Any:
        """Call repository.bzl's `helper` with what .bzl file `module_key` exports as
        `name` (from its private `bp__rules`), then `args`."""
        key = f"<{helper} {module_key}>"
        module = self._modules.get(key)
        if module is None:
            absolute = "@" + module_key if module_key.startswith("//") else module_key
            module = self.evaluate_generated(
                f"<{helper} of {module_key}>",
                f'load("{REPOSITORY_ID}", "{helper}")\n'
                f'load("{absolute}", "{RULES_GLOBAL}")\n'
                "def run(name, *args):\n"
                f"    if name not in {RULES_GLOBAL}:\n"
                f"        fail('{module_key} exports nothing named %s' % name)\n"
                f"    return {helper}({RULES_GLOBAL}[name], *args)\n",
                context)
            self._modules[key] = module
        return self.call(module, "run", name, *args, context=context)

    def call(self, module: Any, function: str, *args: Any, context: str) -> Any:
        """Call a Starlark function of a frozen module; errors become bp errors."""
        interrupted = interruptions()
        try:
            with self._stderr_hold:
                return module.call(function, *args)
        except (sl.StarlarkError, _Abort) as error:
            stashed, self._stashed = self._stashed, None
            if stashed is not None:
                raise stashed from None
            if interruptions() != interrupted:   # (Ctrl-C in Python code Starlark called)
                raise KeyboardInterrupt from None
            message = self._restore(str(error))
            raise StarlarkEvalError(context, message, _hint_for(message)) from None
        except BaseException as error:
            if not is_panic(error):
                raise
            self._stashed = None
            raise panic_error(context, None, error) from None

    def _restore(self, message: str) -> str:
        """A Starlark error message as the rewritten files were written."""
        if not self._rewrites:
            return message
        return restore(message, self._rewrites, BUILTINS_ID, _builtins_helper_lines())

    def _native(self) -> Any:
        """The module BUILD files see: builtins natives plus every rule of the prelude."""
        if NATIVE_ID not in self._modules:
            names = self._native_rule_names()
            lines = ['load("<builtins>", "BUILD_NATIVES", "WORKSPACE_NATIVES", "select", '
                     '"Label", "print")']
            if self._prelude_entry is not None:
                lines.append(f'load("{self._prelude_entry}", "NATIVE_RULES")')
            else:
                lines.append("NATIVE_RULES = {}")
            lines += [
                "def _merge():",
                "    merged = dict(BUILD_NATIVES)",
                "    merged.update(WORKSPACE_NATIVES)",
                "    merged.update(NATIVE_RULES)",
                "    return merged",
                "_ALL = _merge()",
                "native = struct(**_ALL)",
            ]
            lines += [f'{name} = _ALL["{name}"]' for name in names]
            source = SourceFile(PackageId("bp", ""), Path("<native>"), "<native>")
            module = self._evaluate(source, "\n".join(lines) + "\n", None,
                                    "error loading the prelude")
            self._modules[NATIVE_ID] = module.freeze()
            self._native_names = ("native", "select", "Label", "print", *names)
        return self._modules[NATIVE_ID]

    def _native_rule_names(self) -> list[str]:
        names = list(self._builtins().call("build_native_names"))
        if self._prelude_entry is not None:
            names += self._prelude_rule_names()
        return sorted(set(names))

    def _prelude_rule_names(self) -> list[str]:
        source = SourceFile(PackageId("bp", ""), Path("<names>"), "<names>")
        probe = self._evaluate(
            source,
            f'load("{self._prelude_entry}", "NATIVE_RULES")\n'
            "def names():\n    return sorted(NATIVE_RULES.keys())\n",
            None, "error loading the prelude")
        return list(probe.freeze().call("names"))

    def _injection(self, kind: str) -> Any:
        if kind not in self._injections:
            if kind == "build":
                self._native()
                names = self._native_names
                text = f'load("{NATIVE_ID}", {", ".join(repr(n) for n in names)})\n'
                text += f'load("{BUILTINS_ID}", _bp_add = "bp_add")\n'
            elif kind == "workspace":
                text = f'load("{BUILTINS_ID}", {", ".join(repr(n) for n in _WORKSPACE_NAMES)})\n'
            elif kind == "module":
                text = f'load("{BUILTINS_ID}", {", ".join(repr(n) for n in _MODULE_NAMES)})\n'
            else:
                text = f'load("{BUILTINS_ID}", {", ".join(repr(n) for n in _CORE_NAMES)})\n'
                text += f'load("{BUILTINS_ID}", ' + ", ".join(
                    f'{name} = "{value}"' for name, value in _TYPE_NAMES.items()) + ")\n"
                if kind == "bzl":   # Bazel's globals of .bzl files, and its C++ API
                    text += f'load("{NATIVE_ID}", "native")\n'
                    text += (f'load("{CC_GLOBALS_ID}", "CcInfo", "cc_common", '
                             '"DebugPackageInfo", "CcToolchainConfigInfo")\n')
            self._injections[kind] = sl.parse("<bp-injected>", text.replace("'", '"'))
        return self._injections[kind]

    def _core_natives(self) -> dict[str, Callable[..., Any]]:
        return {
            "_bp_function_parameters": self._function_parameters,
            "_bp_select": self._select,
            "_bp_label": self._label,
            "_bp_print": self._print,
            "_bp_declaration_error": self._declaration_error,
        }

    def _abort(self, error: BpError | KeyboardInterrupt) -> _Abort:
        """Unwind Starlark from a native: the first error is kept, to be raised again
        once evaluation has returned."""
        self._stashed = self._stashed or error
        return _Abort(error.message if isinstance(error, BpError) else "interrupted")

    # ---- core natives ----------------------------------------------------------------

    def caller(self, frames: tuple[Frame, ...]) -> Frame:
        """The frame that called a builtin (the builtin's own frame is the last one)."""
        return frames[-2] if len(frames) >= 2 else frames[-1]

    def error_at(self, frame: Frame, message: str, hint: str | None = None) -> UserError:
        return UserError(message, location=self.location(frame),
                         source_line=self.source_line(frame) or None, hint=hint)

    def _select(self, conditions: Any, no_match_error: str, *, frames) -> Any:
        frame = self.caller(frames)
        if not isinstance(conditions, dict):
            raise self.error_at(frame, f"select() takes a dict of conditions, not "
                                       f"{type(conditions).__name__}")
        if not conditions:
            raise self.error_at(frame, "select() needs at least one condition",
                                hint="add a '//conditions:default' entry")
        if not isinstance(no_match_error, str):
            raise self.error_at(frame, "select() 'no_match_error' must be a string")
        for key in conditions:
            if not isinstance(key, str):
                raise self.error_at(frame, f"select() condition keys must be label strings, "
                                           f"got {key!r}")
        return sl.OpaquePythonObject(
            Select(tuple(conditions.items()), no_match_error, self.location(frame)))

    def _label(self, text: Any, *, frames) -> dict[str, str]:
        frame = self.caller(frames)
        package = self.package_of(frame) or PackageId("", "")
        try:
            label = parse_label(text, package)
        except LabelError as e:
            raise self.error_at(frame, e.message, e.hint) from None
        return {"__bp_label__": str(label), "name": label.name, "package": label.package,
                "workspace_name": label.repo, "workspace_root":
                f"external/{label.repo}" if label.repo else ""}

    def _function_parameters(self, function: str, *, frames) -> list[str]:
        """The parameter names of a .bzl file's function, named as `str()` names it
        (`pkg/defs.bzl._get_filter`): read from the file's text."""
        import ast

        display, _, name = function.rpartition(".")
        if display not in self._parameters:   # each file parsed once, when first asked
            tree = parse("\n".join(self._sources.get(display, ())))
            self._parameters[display] = {
                node.name: [a.arg for a in node.args.args + node.args.kwonlyargs]
                for node in (ast.walk(tree) if tree is not None else ())
                if isinstance(node, ast.FunctionDef)}
        parameters = self._parameters[display].get(name)
        if parameters is None:
            raise self.error_at(self.caller(frames), f"cannot find the function {function}, "
                                "the computed default of an attribute",
                                hint="define it with def at the top level of a .bzl file")
        return parameters

    def _print(self, message: str, *, frames) -> None:
        print(f"DEBUG: {self.location(self.caller(frames))}: {message}", file=sys.stderr)

    def _declaration_error(self, message: str, *, frames) -> None:
        raise self.error_at(self.caller(frames), message)


@functools.cache
def _builtins_helper_lines() -> frozenset[int]:
    return helper_lines(_BUILTINS_PATH.read_text(encoding="utf-8"))


def _wrapped(env: Callable[[], StarlarkEnv], name: str) -> Callable[..., Any]:
    """Native `name` as Starlark calls it: with the call stack, errors stashed in the env.
    Holds the env weakly (see StarlarkEnv.__init__): Starlark holds this function."""
    def native(*args: Any) -> Any:
        this = env()
        try:
            return this._bound[name](*args[:-1], frames=CallStack(args[-1]))
        except (BpError, KeyboardInterrupt) as error:
            raise this._abort(error) from None
    return native


def _interruptible(env: Callable[[], StarlarkEnv], name: str) -> Callable[..., Any]:
    """A plain native (it cannot fail), but Ctrl-C may still arrive while it runs."""
    def native(*args: Any) -> Any:
        this = env()
        try:
            return this._plain_natives[name](*args)
        except KeyboardInterrupt as interrupt:
            raise this._abort(interrupt) from None
    return native


RULES_GLOBAL = "bp__rules"   # a .bzl file's rules by global name, private ones too


def _epilogue(tree: Any) -> str | None:
    """What runs after a .bzl file: its rules take the names of the globals they are
    assigned to (`bp_export_rules`), and `bp__rules` holds them for the analysis, which
    cannot load() a private name. The globals come from the file's Python syntax tree;
    None when it did not parse."""
    import ast

    if tree is None:
        return None
    names: dict[str, int] = {}   # global -> the line of its first assignment
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name):
                    names.setdefault(leaf.id, node.lineno)
    pairs = ", ".join(f'("{n}", {n}, {line})' for n, line in names.items())
    return (f'load("{BUILTINS_ID}", __bp_export_rules = "bp_export_rules")\n'
            f"{RULES_GLOBAL} = __bp_export_rules([{pairs}])\n")
