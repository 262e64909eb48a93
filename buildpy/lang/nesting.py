"""Finds Starlark source nested too deeply for starlark-pyo3, before it reaches the parser.

starlark-rust compiles expressions recursively: a BUILD file holding `1+1+...+1` with
about 3,200 terms, a list nested about 2,300 deep or about 1,000 nested lambdas overflows
the native stack and kills bp with SIGSEGV (measured with an 8 MiB stack). A scan in
Python (strings and comments skipped) bounds the depth of each statement's tree: every
open bracket, binary or unary operator in a chain, and indented block is one level
(a lambda three), and anything past MAX_DEPTH is reported at its line and column.
Knows nothing of what the file means; it never evaluates anything.
"""

from __future__ import annotations

import re

from buildpy.core.errors import Location, UserError

MAX_DEPTH = 500   # real code stays far below; the crashes start near 1,000 (lambdas)
_LAMBDA_WEIGHT = 3

_STRING = (r'[rRbB]{0,2}(?:"""(?:\\.|[^\\])*?"""|\'\'\'(?:\\.|[^\\])*?\'\'\''
           r'|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\')')
_SKIPPED = re.compile(rf"{_STRING}|#[^\n]*")
_OPERATORS = r"\*\*|//|<<|>>|[<>=!]=|[-+*/%|&^~<>@]|(?<![0-9])\.|\.(?![0-9])"   # not 1.5
_KEYWORDS = ("and", "or", "not", "in", "if", "lambda")
_TOKEN = re.compile(
    rf"(?P<skip>{_STRING}|#[^\n]*|\\\n)"
    r"|(?P<open>[(\[{])|(?P<close>[)\]}])|(?P<comma>,)"
    r"|(?P<newline>\n[ \t]*)"
    rf"|(?P<op>{_OPERATORS}|\b(?:and|or|not|in|if|lambda)\b)")
_INDENTED = re.compile(r"\n[ \t]+")   # (with the line break: one longer than the indent)
_WITHOUT_OPERATORS = str.maketrans("", "", "([{-+*/%|&^~<>.@")


class TooDeep(UserError):
    pass


def check_nesting(text: str, path: str) -> None:
    """Raise TooDeep (a UserError at the offending line and column) if a statement of
    `text` nests deeper than MAX_DEPTH; cheap for ordinary files."""
    if _quick_bound(text) <= MAX_DEPTH or _quick_bound(_SKIPPED.sub("", text)) <= MAX_DEPTH:
        return
    _Scan(text, path).run()


def _quick_bound(code: str) -> int:
    """An upper bound of the depth, computed at C speed: all brackets, operators and
    indentation columns of the file as if they were nested in one statement (which is a
    level itself, as the scan counts it).

    Strings and comments need not be taken out first (that costs more than the counting,
    and most files are far below the bound with them in): what they hold only adds to
    the count, and each real line's indentation is in the text as it is. (Only a keyword
    spelled across a string, as in `i"x"n`, appears when they are taken out, and that is
    a syntax error, which the parser reports before anything is compiled.)"""
    bound = 1   # the statement itself
    bound += len(code) - len(code.translate(_WITHOUT_OPERATORS))
    bound += sum(code.count(word) for word in _KEYWORDS)
    bound += code.count("lambda") * _LAMBDA_WEIGHT
    return bound + max(map(len, _INDENTED.findall(code)), default=1) - 1


class _Group:
    """An open bracket (or a statement): its position, the operators of its element being
    read and the most of any element before (elements between commas are siblings, not
    a chain), and its deepest child."""
    __slots__ = ("offset", "ops", "most_ops", "child")

    def __init__(self, offset: int):
        self.offset = offset
        self.ops = 0
        self.most_ops = 0
        self.child = 0

    def depth(self) -> int:
        return 1 + max(self.ops, self.most_ops) + self.child


class _Scan:
    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.indents = [0]             # widths of the enclosing blocks' indentation
        self.groups = [_Group(0)]      # the statement, then each open bracket
        self.running = 1               # levels open at this point of the scan

    def run(self) -> None:
        for match in _TOKEN.finditer(self.text):   # the hot loop: kept to a few tests
            kind = match.lastgroup
            if kind == "op":
                weight = _LAMBDA_WEIGHT if match.group() == "lambda" else 1
                self.groups[-1].ops += weight
                self.running += weight
            elif kind == "open":
                self.groups.append(_Group(match.start()))
                self.running += 1
            elif kind == "close":
                if len(self.groups) > 1:
                    self._close_group()
                continue
            elif kind == "comma":
                group = self.groups[-1]
                group.most_ops = max(group.most_ops, group.ops)
                self.running -= group.ops
                group.ops = 0
                continue
            elif kind == "newline" and len(self.groups) == 1:   # the end of a statement
                self._end_statement()
                self._indent(match)
                continue
            else:
                continue
            if self.running + len(self.indents) > MAX_DEPTH + 1:
                self._fail(match.start())
        self._end_statement()

    def _close_group(self) -> None:
        group = self.groups.pop()
        self.running -= 1 + group.ops
        if group.depth() + self._base() > MAX_DEPTH:
            self._fail(group.offset)
        parent = self.groups[-1]
        parent.child = max(parent.child, group.depth())

    def _end_statement(self) -> None:
        while len(self.groups) > 1:   # unclosed brackets: the parser will say so
            self._close_group()
        statement = self.groups[0]
        if statement.depth() + self._base() > MAX_DEPTH:
            self._fail(statement.offset)
        self.groups = [_Group(0)]
        self.running = 1

    def _base(self) -> int:
        return len(self.indents) - 1

    def _indent(self, match: re.Match) -> None:
        end = match.end()
        if end >= len(self.text) or self.text[end] in "\n#\r":
            return   # a blank or comment line does not open or close a block
        self.groups[0].offset = end
        width = end - match.start() - 1
        while width < self.indents[-1]:
            self.indents.pop()
        if width > self.indents[-1]:
            self.indents.append(width)
            if self._base() > MAX_DEPTH:
                self._fail(end)

    def _fail(self, offset: int) -> None:
        start = self.text.rfind("\n", 0, offset) + 1
        end = self.text.find("\n", offset)
        line = self.text[start: end if end >= 0 else len(self.text)]
        raise TooDeep(
            f"this code is too deeply nested: more than {MAX_DEPTH} levels of brackets, "
            "operators and blocks (Starlark cannot evaluate it safely)",
            location=Location(self.path, self.text.count("\n", 0, offset) + 1,
                              offset - start + 1),
            source_line=line if len(line) <= 200 else None,
            hint="split the expression: assign parts of it to variables")
