"""Routes four operators and three methods of a .bzl file through bp's helpers, so that
bp's own values behave as Bazel's do.

starlark-pyo3 offers no custom types: a Target is a struct, and a Label a struct that
`str()` would print as one. Names such as `str` and `type` are shadowed by the module's
injection, at no cost to positions; operators cannot be, so before evaluation
`x[k]` becomes `_bp_at(x, k)`, `k in x` becomes `_bp_in(k, x)` (and `not in`
`_bp_not_in`), `a % b` becomes `_bp_mod(a, b)`, `s.format(...)` becomes
`_bp_format(s, ...)`; `d.to_list()` becomes `_bp_to_list(d)` and `r.merge(x)`
`_bp_merge(r, x)` (as `merge_all`): bp's depsets and runfiles hold no function of their
own, as one made for each would cost memory. Edits never add or remove a
line, so line numbers hold; the columns they shift, and the excerpts of errors, are
mapped back to the file as written (`restore`), and an error raised inside a helper is
shown at the user's expression.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

# the functions of bp's builtins that stand in for Starlark's own (and the ones a depset's
# `to_list` and runfiles' `merge` hold, which say how to call them): an error inside one
# is shown at the user's expression
HELPERS = ("bp_at", "bp_in", "bp_not_in", "bp_mod", "bp_format", "bp_str", "bp_repr",
           "bp_type", "bp_add", "bp_dir", "bp_to_list", "bp_merge", "bp_merge_all",
           "_to_list_unrouted", "bp_merge_unrouted")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class Rewrite:
    """A rewritten text and, per line, what was changed: enough to map back."""

    text: str
    lines: list[str]                  # the original lines
    # line -> [(new column, original column, removed, inserted)], in order
    edits: dict[int, list[tuple[int, int, int, int]]] = field(default_factory=dict)
    # line -> original (start column, end line, end column) of each rewritten expression
    spans: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)

    def original_column(self, line: int, column: int) -> int:
        """The 0-based column of the original line that `column` of the new one shows."""
        shift = 0
        for new, old, removed, inserted in self.edits.get(line, ()):
            if column < new:
                break
            if column < new + inserted:   # inside inserted text: the edit's place
                return old
            shift = (new + inserted) - (old + removed)
        return max(column - shift, 0)


def parse(text: str) -> ast.Module | None:
    """The text's syntax tree, read as Python (Starlark's syntax is Python's, near
    enough); None when it does not parse."""
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def rewrite(text: str, operators: bool = True, tree: ast.Module | None = None
            ) -> Rewrite | None:
    """The text with the operators routed through helpers, or None when it needs none
    (or does not parse: Starlark then reports the error on the text as written).

    A `+` with a `select()` call among its operands becomes `_bp_add(a, b)`, so that a
    string and a select() concatenate as in Bazel; with `operators` False (BUILD files)
    that is the only change. `tree` is the text's, when the caller has parsed it."""
    tokens = ("[", " in ", "%", ".format", ".to_list", ".merge", "select(") if operators \
        else ("select(",)
    if not any(token in text for token in tokens):
        return None
    tree = tree or parse(text)
    if tree is None:
        return None
    lines = _LINE_BREAK.split(text)
    starts = [0]
    for match in _LINE_BREAK.finditer(text):
        starts.append(match.end())
    collector = _Collector(text, lines, starts, operators)
    try:
        collector.visit(tree)
    except RecursionError:
        return None
    if not collector.edits:
        return None
    return _apply(text, lines, starts, collector)


class _Collector(ast.NodeVisitor):
    def __init__(self, text: str, lines: list[str], starts: list[int], operators: bool):
        self.text, self.lines, self.starts, self.operators = text, lines, starts, operators
        # (offset, rank, order, removed, inserted): rank puts an insertion that closes a
        # node before one that opens another at the same place, and those before a
        # replacement; order puts outer openings before inner ones, inner closings first
        self.edits: list[tuple[int, int, int, int, str]] = []
        self.spans: list[tuple[int, int, int, int]] = []

    def offset(self, line: int, byte_column: int) -> int:
        text = self.lines[line - 1]
        return self.starts[line - 1] + len(text.encode("utf-8")[:byte_column]
                                           .decode("utf-8", "replace"))

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.generic_visit(node)
        if not self.operators or not isinstance(node.ctx, ast.Load) or isinstance(node.slice, ast.Slice):
            return
        start, end = self._bounds(node)
        bracket = self._operator(self._end(node.value), "[")
        if bracket is None or self.text[end - 1] != "]":
            return
        self._wrap(node, start, end, "_bp_at(", [(bracket, 1, ", ")], close=False)
        self.edits.append((end - 1, 2, 0, 1, ")"))

    def visit_Compare(self, node: ast.Compare) -> None:
        self.generic_visit(node)
        if not self.operators or len(node.ops) != 1 or not isinstance(node.ops[0], (ast.In, ast.NotIn)):
            return
        start, end = self._bounds(node)
        negated = isinstance(node.ops[0], ast.NotIn)
        left = self._end(node.left)
        match = re.compile(r"[\s)]*(not\s+in|in)\b").match(self.text, left)
        if match is None or "\n" in match.group(1) or "\\" in match.group(1):
            return
        helper = "_bp_not_in(" if negated else "_bp_in("
        self._wrap(node, start, end, helper,
                   [(match.start(1), match.end(1) - match.start(1), ",")])

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self.generic_visit(node)
        if isinstance(node.op, ast.Add) and _adds_select(node):
            helper, operator = "_bp_add(", "+"
        elif isinstance(node.op, ast.Mod) and self.operators:
            helper, operator = "_bp_mod(", "%"
        else:
            return
        start, end = self._bounds(node)
        at = self._operator(self._end(node.left), operator)
        if at is not None:
            self._wrap(node, start, end, helper, [(at, 1, ",")])

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        func = node.func
        if not self.operators or not isinstance(func, ast.Attribute):
            return
        if func.attr == "format":
            helper, separator = "_bp_format(", ", "
        elif func.attr == "to_list" and not node.args and not node.keywords:
            helper, separator = "_bp_to_list(", ""
        elif func.attr in ("merge", "merge_all") and node.args:
            helper, separator = f"_bp_{func.attr}(", ", "
        else:
            return
        start, end = self._bounds(node)
        match = re.compile(r"[ \t)]*(\.[ \t]*" + func.attr + r"[ \t]*\()").match(
            self.text, self._end(func.value))
        if match is None:
            return
        self._wrap(node, start, end, helper,
                   [(match.start(1), match.end(1) - match.start(1), separator)], close=False)

    def _bounds(self, node: ast.expr) -> tuple[int, int]:
        return self.offset(node.lineno, node.col_offset), self._end(node)

    def _end(self, node: ast.expr) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)

    def _operator(self, after: int, char: str) -> int | None:
        """Where `char` is, past the closing parentheses and blanks that follow `after`
        (None when a line break or comment lies between)."""
        match = re.compile(r"[ \t)]*").match(self.text, after)
        at = match.end()
        return at if self.text[at:at + 1] == char else None

    def _wrap(self, node: ast.expr, start: int, end: int, opening: str,
              replacements: list[tuple[int, int, str]], close: bool = True) -> None:
        size = end - start
        self.edits.append((start, 1, -size, 0, opening))
        for at, removed, inserted in replacements:
            self.edits.append((at, 2, 0, removed, inserted))
        if close:
            self.edits.append((end, 0, size, 0, ")"))
        self.spans.append((node.lineno, node.col_offset, node.end_lineno or node.lineno,
                           node.end_col_offset or 0))


def _adds_select(node: ast.expr) -> bool:
    """Whether a `+` (or a chain of them) has a `select(...)` call among its operands."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _adds_select(node.left) or _adds_select(node.right)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
        node.func.id == "select"


def _apply(text: str, lines: list[str], starts: list[int], collector: _Collector) -> Rewrite:
    result = Rewrite("", lines)
    out: list[str] = []
    position = 0      # in the original text
    line = 1
    line_shift = 0    # new column minus original column, on the current line
    for offset, _rank, _order, removed, inserted in sorted(collector.edits):
        out.append(text[position:offset])
        while line < len(starts) and starts[line] <= offset:
            line += 1
            line_shift = 0
        old_column = offset - starts[line - 1]
        result.edits.setdefault(line, []).append(
            (old_column + line_shift, old_column, removed, len(inserted)))
        out.append(inserted)
        line_shift += len(inserted) - removed
        position = offset + removed
    out.append(text[position:])
    result.text = "".join(out)
    for line_no, byte_col, end_line, end_byte_col in collector.spans:
        column = collector.offset(line_no, byte_col) - starts[line_no - 1]
        end_column = collector.offset(end_line, end_byte_col) - starts[end_line - 1]
        result.spans.setdefault(line_no, []).append((column, end_line, end_column))
    return result


_FRAME = re.compile(r"^  \* (?P<file>.+):(?P<line>\d+), in (?P<function>.+)$")
_ARROW = re.compile(r"^\s*--> (?P<file>.+):(?P<line>\d+):(?P<column>\d+)$")
_GUTTER = re.compile(r"^\s*(\d+\s*)?\|")


def helper_lines(helpers_source: str) -> frozenset[int]:
    """The lines of the HELPERS functions in the text of bp's builtins."""
    lines: set[int] = set()
    for node in ast.parse(helpers_source).body:
        if isinstance(node, ast.FunctionDef) and node.name in HELPERS:
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return frozenset(lines)


def restore(message: str, rewrites: dict[str, Rewrite], helpers_file: str,
            helpers: frozenset[int]) -> str:
    """A Starlark error message as the files were written: excerpts of rewritten lines
    shown as written, columns mapped back, and an error raised in a helper (a frame of
    `helpers_file` in one of HELPERS, or the error's own place on one of the `helpers`
    lines) shown at the expression that called it."""
    lines = message.split("\n")
    frames = []   # (index of the frame line, file, line, function, has an excerpt)
    arrow = None
    for i, text in enumerate(lines):
        frame = _FRAME.match(text)
        if frame is not None:
            excerpt = i + 1 < len(lines) and lines[i + 1].startswith("      ")
            frames.append((i, frame["file"], int(frame["line"]), frame["function"], excerpt))
        elif arrow is None and _ARROW.match(text):
            arrow = i
    if not frames and arrow is None:
        return message
    block: list[str] | None = None
    drop: set[int] = set()
    inner = len(frames)
    while inner > 0 and frames[inner - 1][1] == helpers_file:
        inner -= 1
    at = _ARROW.match(lines[arrow]) if arrow is not None else None
    if at is not None and at["file"] == helpers_file and (
            int(at["line"]) in helpers or any(f[3] in HELPERS for f in frames[inner:])):
        for index, _, _, _, excerpt in frames[inner:]:
            drop |= {index, index + 1} if excerpt else {index}
        del frames[inner:]
        if frames and frames[-1][1] in rewrites:
            _, file, line, _, _ = frames[-1]
            block = _anchored(file, line, rewrites[file])
        if len(frames) == 1:   # one frame left: Starlark shows no traceback for it
            index, _, _, _, excerpt = frames.pop()
            drop |= {index, index + 1} if excerpt else {index}
            drop |= {j for j, text in enumerate(lines) if text.startswith("Traceback")}
    elif arrow is not None:
        match = _ARROW.match(lines[arrow])
        if match["file"] in rewrites:
            block = _mapped(lines, arrow, match, rewrites[match["file"]])
    out: list[str] = []
    i = 0
    while i < len(lines):
        if i in drop:
            i += 1
            continue
        if i == arrow and block is not None:
            out += block
            i += 1
            while i < len(lines) and _GUTTER.match(lines[i]):
                i += 1
            continue
        out.append(lines[i])
        i += 1
    for index, file, line, _, excerpt in frames:
        if excerpt and file in rewrites and 0 < line <= len(rewrites[file].lines):
            at = out.index(lines[index])
            out[at + 1] = "      " + rewrites[file].lines[line - 1].strip()
    return "\n".join(out)


def _anchored(file: str, line: int, rewrite: Rewrite) -> list[str]:
    """The excerpt of the first rewritten expression of a line."""
    text = rewrite.lines[line - 1] if 0 < line <= len(rewrite.lines) else ""
    spans = rewrite.spans.get(line)
    if not spans:
        start = len(text) - len(text.lstrip())
        return _excerpt(file, line, text, start, len(text))
    column, end_line, end_column = min(spans)
    return _excerpt(file, line, text, column, end_column if end_line == line else len(text))


def _mapped(lines: list[str], arrow: int, match: re.Match, rewrite: Rewrite) -> list[str]:
    line = int(match["line"])
    column = int(match["column"]) - 1
    carets = 1
    if arrow + 3 < len(lines):
        carets = max(lines[arrow + 3].count("^"), 1)
    start = rewrite.original_column(line, column)
    end = rewrite.original_column(line, column + carets - 1) + 1
    text = rewrite.lines[line - 1] if 0 < line <= len(rewrite.lines) else ""
    return _excerpt(match["file"], line, text, start, max(end, start + 1))


def _excerpt(file: str, line: int, text: str, start: int, end: int) -> list[str]:
    width = len(str(line))
    bar = " " * (width + 1) + "|"
    return [f"{' ' * width}--> {file}:{line}:{start + 1}", bar, f"{line} | {text}",
            f"{bar} {' ' * start}{'^' * max(end - start, 1)}", bar]
