"""Parses query expressions (Bazel's language plus our `|` pipelines) into a tree.

Knows the grammar and the signature of every function; evaluates nothing.

    query    := pipeline
    pipeline := setexpr ('|' stage (setop primary)*)*
    stage    := NAME arg*          the previous result fills the stage's last set argument
                                   (for except/intersect/union: its left operand)
    setexpr  := primary (('intersect' | '^' | 'union' | '+' | 'except' | '-') primary)*
    primary  := 'let' NAME '=' pipeline 'in' pipeline | '(' pipeline ')' | '$' NAME
              | 'set' '(' WORD* ')' | NAME '(' args ')' | WORD
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Generator, Union

from buildpy.core.errors import BpError, Location, UserError, did_you_mean

EXPR, WORD, INT = "expression", "word", "integer"


@dataclass(frozen=True)
class Signature:
    params: tuple[str, ...]   # EXPR, WORD or INT
    required: int             # how many of them must be given
    variadic: bool = False    # the last parameter repeats (rbuildfiles)


FUNCTIONS: dict[str, Signature] = {
    "deps": Signature((EXPR, INT), 1),
    "rdeps": Signature((EXPR, EXPR, INT), 2),
    "allrdeps": Signature((EXPR, INT), 1),
    "somepath": Signature((EXPR, EXPR), 2),
    "allpaths": Signature((EXPR, EXPR), 2),
    "kind": Signature((WORD, EXPR), 2),
    "filter": Signature((WORD, EXPR), 2),
    "attr": Signature((WORD, WORD, EXPR), 3),
    "labels": Signature((WORD, EXPR), 2),
    "tests": Signature((EXPR,), 1),
    "buildfiles": Signature((EXPR,), 1),
    "loadfiles": Signature((EXPR,), 1),
    "rbuildfiles": Signature((WORD,), 1, variadic=True),
    "siblings": Signature((EXPR,), 1),
    "same_pkg_direct_rdeps": Signature((EXPR,), 1),
    "visible": Signature((EXPR, EXPR), 2),
    "some": Signature((EXPR, INT), 1),
    "config": Signature((EXPR, WORD), 2),
    "subquery": Signature((EXPR,), 1),
    # aquery: filters on the actions of targets, and the pipeline stage choosing the output
    "inputs": Signature((WORD, EXPR), 2),
    "outputs": Signature((WORD, EXPR), 2),
    "mnemonic": Signature((WORD, EXPR), 2),
    "emit": Signature((WORD, EXPR), 2),
}
MAX_NESTING = 10_000   # far beyond written queries; bounds the parser's memory
KEYWORDS = {"let", "in", "set", "intersect", "union", "except"}
SET_OPERATORS = {"intersect": "intersect", "^": "intersect", "union": "union",
                 "+": "union", "except": "except", "-": "except"}


# ---- the tree -----------------------------------------------------------------------

@dataclass(frozen=True)
class Word:
    """A target pattern (in expression position) or a plain word argument."""
    text: str
    location: Location


@dataclass(frozen=True)
class Var:
    name: str
    location: Location


@dataclass(frozen=True)
class Let:
    name: str
    value: "Expr"
    body: "Expr"
    location: Location


@dataclass(frozen=True)
class SetLiteral:
    words: tuple[Word, ...]
    location: Location


@dataclass(frozen=True)
class BinaryOp:
    op: str          # intersect, union or except
    left: "Expr"
    right: "Expr"
    location: Location


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Union["Expr", str, int], ...]   # expressions, words (str) and ints
    location: Location
    arg_locations: tuple[Location, ...] = ()    # where each argument starts

    def location_of(self, word: str) -> Location:
        """Where the (first) argument `word` is written; the call's own place if unknown."""
        for arg, location in zip(self.args, self.arg_locations):
            if arg == word and isinstance(arg, str):
                return location
        return self.location


Expr = Union[Word, Var, Let, SetLiteral, BinaryOp, Call]


# ---- tokens -------------------------------------------------------------------------

class Tok(enum.Enum):
    WORD = "word"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    EQUALS = "'='"
    PIPE = "'|'"
    OP = "operator"          # ^ + -
    VAR = "variable"
    EOF = "end of query"


@dataclass(frozen=True)
class Token:
    kind: Tok
    text: str
    offset: int
    quoted: bool = False

    def describe(self) -> str:
        if self.kind is Tok.EOF:
            return "end of query"
        return f"'{self.text}'" if self.kind is not Tok.VAR else f"'${self.text}'"


_WORD_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                  "*/@._:$~-[]!%&?{}<>#")
_SINGLE = {"(": Tok.LPAREN, ")": Tok.RPAREN, ",": Tok.COMMA, "=": Tok.EQUALS,
           "|": Tok.PIPE, "^": Tok.OP, "+": Tok.OP, "-": Tok.OP}


class QuerySyntaxError(UserError):
    pass


class _Source:
    """The query text and where it came from, to place errors."""

    def __init__(self, text: str, path: str, first_line: int = 1):
        self.text = text
        self.path = path
        self.first_line = first_line

    def location(self, offset: int) -> Location:
        line = self.text.count("\n", 0, offset)
        start = self.text.rfind("\n", 0, offset) + 1
        return Location(self.path, self.first_line + line, offset - start + 1)

    def error(self, offset: int, message: str, hint: str | None = None) -> QuerySyntaxError:
        start = self.text.rfind("\n", 0, offset) + 1
        end = self.text.find("\n", offset)
        line = self.text[start: end if end >= 0 else len(self.text)]
        return QuerySyntaxError(message, location=self.location(offset), source_line=line,
                                hint=hint)


def tokenize(source: _Source) -> list[Token]:
    text = source.text
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "\"'":
            end = text.find(c, i + 1)
            if end < 0:
                raise source.error(i, f"unclosed quotation mark {c}",
                                   hint=f"end the word with {c}")
            tokens.append(Token(Tok.WORD, text[i + 1:end], i, quoted=True))
            i = end + 1
        elif c == "$" and i + 1 < len(text) and (text[i + 1].isalpha() or text[i + 1] == "_"):
            j = i + 1
            while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Token(Tok.VAR, text[i + 1:j], i))
            i = j
        elif c in _SINGLE:
            tokens.append(Token(_SINGLE[c], c, i))
            i += 1
        elif c in _WORD_CHARS:
            j = i
            while j < len(text) and text[j] in _WORD_CHARS:
                j += 1
            tokens.append(Token(Tok.WORD, text[i:j], i))
            i = j
        else:
            raise source.error(i, f"unexpected character '{c}'",
                               hint="quote words that contain it: \"...\"")
    tokens.append(Token(Tok.EOF, "", len(text)))
    return tokens


# ---- the parser ---------------------------------------------------------------------

# The parser's rules are generators: a rule yields the generator of a sub-rule and gets
# back that rule's result. `trampoline` drives them with an explicit stack, so expressions
# nested thousands deep (parentheses, `let`s, pipeline stages) need no Python recursion.
_Parsing = Generator["_Parsing", Any, Any]


def trampoline(rule: Generator) -> Any:
    """Run a recursive computation written as generators that yield their sub-computations
    (and receive their results) without Python recursion; the evaluator uses it too."""
    stack = [rule]
    value = None
    while stack:
        try:
            sub = stack[-1].send(value)
        except StopIteration as done:
            stack.pop()
            value = done.value
            continue
        stack.append(sub)
        value = None
    return value


class _Parser:
    def __init__(self, source: _Source):
        self.source = source
        self.tokens = tokenize(source)
        self.pos = 0
        self.depth = 0

    @property
    def peek(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def at_keyword(self, word: str) -> bool:
        return self.peek.kind is Tok.WORD and not self.peek.quoted and self.peek.text == word

    def expect(self, kind: Tok, what: str) -> Token:
        token = self.peek
        if token.kind is not kind:
            raise self.source.error(token.offset, f"syntax error: expected {what}, found "
                                                  f"{token.describe()}")
        return self.next()

    def loc(self, token: Token) -> Location:
        return self.source.location(token.offset)

    def parse(self) -> Expr:
        expr = trampoline(self.pipeline())
        if self.peek.kind is not Tok.EOF:
            token = self.peek
            hint = None
            if token.kind is Tok.WORD and not token.quoted:
                hint = "join expressions with an operator (union, intersect, except) or '|'"
            raise self.source.error(token.offset, f"syntax error: expected an operator, '|' or "
                                                  f"the end of the query, found "
                                                  f"{token.describe()}", hint)
        return expr

    def pipeline(self) -> _Parsing:
        self.depth += 1   # every nested expression (parentheses, arguments, let) is one
        if self.depth > MAX_NESTING:
            raise self.source.error(self.peek.offset, f"query is nested too deeply: more than "
                                                      f"{MAX_NESTING} levels of parentheses, "
                                                      "arguments and let")
        expr = yield self.setexpr()
        while self.peek.kind is Tok.PIPE:
            self.next()
            stage = yield self.stage(expr)
            expr = yield self.setexpr(stage)
        self.depth -= 1
        return expr

    def at_stage_end(self) -> bool:
        token = self.peek
        return token.kind in (Tok.PIPE, Tok.RPAREN, Tok.COMMA, Tok.EOF, Tok.OP) or (
            token.kind is Tok.WORD and not token.quoted
            and (token.text in SET_OPERATORS or token.text == "in"))

    def setexpr(self, left: Expr | None = None) -> _Parsing:
        if left is None:
            left = yield self.primary()
        while True:
            token = self.peek
            op = None
            if token.kind is Tok.OP:
                op = SET_OPERATORS[token.text]
            elif token.kind is Tok.WORD and not token.quoted and token.text in SET_OPERATORS:
                op = SET_OPERATORS[token.text]
            if op is None:
                return left
            self.next()
            right = yield self.primary()
            left = BinaryOp(op, left, right, self.loc(token))

    def primary(self) -> _Parsing:
        token = self.peek
        if token.kind is Tok.LPAREN:
            self.next()
            expr = yield self.pipeline()
            self.expect(Tok.RPAREN, "')'")
            return expr
        if token.kind is Tok.VAR:
            self.next()
            return Var(token.text, self.loc(token))
        if token.kind is not Tok.WORD:
            raise self.source.error(token.offset, f"syntax error: expected an expression, "
                                                  f"found {token.describe()}")
        if not token.quoted and token.text == "let":
            return (yield self.let())
        if not token.quoted and token.text == "set":
            return self.set_literal()
        if not token.quoted and token.text in KEYWORDS | {"^"}:
            raise self.source.error(token.offset, f"syntax error: expected an expression, "
                                                  f"found keyword '{token.text}'")
        self.next()
        if self.peek.kind is Tok.LPAREN and not token.quoted:
            return (yield self.call(token))
        return Word(token.text, self.loc(token))

    def let(self) -> _Parsing:
        start = self.next()
        name = self.expect(Tok.WORD, "a variable name after 'let'")
        self.expect(Tok.EQUALS, "'=' after 'let " + name.text + "'")
        value = yield self.pipeline()
        if not self.at_keyword("in"):
            raise self.source.error(self.peek.offset, f"syntax error: expected 'in', found "
                                                      f"{self.peek.describe()}")
        self.next()
        body = yield self.pipeline()
        return Let(name.text, value, body, self.loc(start))

    def set_literal(self) -> Expr:
        start = self.next()
        self.expect(Tok.LPAREN, "'(' after 'set'")
        words = []
        while self.peek.kind is Tok.WORD:
            token = self.next()
            words.append(Word(token.text, self.loc(token)))
        self.expect(Tok.RPAREN, "')' to close set(")
        return SetLiteral(tuple(words), self.loc(start))

    def function(self, name: Token) -> Signature:
        signature = FUNCTIONS.get(name.text)
        if signature is None:
            raise self.source.error(
                name.offset, f"unknown function '{name.text}'"
                f"{did_you_mean(name.text, FUNCTIONS)}",
                hint="the functions are: " + ", ".join(sorted(FUNCTIONS)))
        return signature

    def call(self, name: Token) -> _Parsing:
        signature = self.function(name)
        self.expect(Tok.LPAREN, "'('")
        args: list = []
        locations: list[Location] = []
        while True:
            if self.peek.kind is Tok.RPAREN and len(args) >= signature.required:
                break
            locations.append(self.loc(self.peek))
            index = min(len(args), len(signature.params) - 1)
            if len(args) >= len(signature.params) and not signature.variadic:
                raise self.source.error(self.peek.offset, f"syntax error: {name.text}() takes "
                                                          f"at most {len(signature.params)} "
                                                          "arguments")
            args.append((yield self.argument(signature.params[index], name.text)))
            if self.peek.kind is Tok.COMMA:
                self.next()
                continue
            if self.peek.kind is not Tok.RPAREN:
                raise self.source.error(self.peek.offset, f"syntax error: expected ',' or ')' "
                                                          f"in the arguments of {name.text}(), "
                                                          f"found {self.peek.describe()}")
            if len(args) < signature.required:
                raise self.source.error(
                    self.peek.offset, f"syntax error: {name.text}() needs "
                    f"{signature.required} arguments, got {len(args)}",
                    hint=f"{name.text}({', '.join(_param_names(signature))})")
        self.next()
        return Call(name.text, tuple(args), self.loc(name), tuple(locations))

    def argument(self, kind: str, function: str) -> _Parsing:
        if kind == EXPR:
            return (yield self.pipeline())
        token = self.peek
        if token.kind is not Tok.WORD:
            raise self.source.error(token.offset, f"syntax error: {function}() expects a "
                                                  f"{kind} here, found {token.describe()}")
        self.next()
        if kind == INT:
            return self.integer(token, function)
        return token.text

    def integer(self, token: Token, function: str) -> int:
        try:
            return int(token.text)
        except ValueError:
            raise self.source.error(token.offset, f"syntax error: {function}() expects an "
                                                  f"integer here, found '{token.text}'") from None

    def stage(self, previous: Expr) -> _Parsing:
        """A pipeline stage: the previous result goes in as the last set argument."""
        name = self.peek
        if name.kind is Tok.OP or (name.kind is Tok.WORD and name.text in SET_OPERATORS):
            self.next()
            right = yield self.stage_arg(EXPR, name.text)
            return BinaryOp(SET_OPERATORS[name.text], previous, right, self.loc(name))
        if name.kind is not Tok.WORD or name.quoted:
            raise self.source.error(name.offset, f"syntax error: expected a function name "
                                                 f"after '|', found {name.describe()}")
        self.next()
        signature = self.function(name)
        slot = max(i for i, p in enumerate(signature.params) if p == EXPR) \
            if EXPR in signature.params else None
        if slot is None:
            raise self.source.error(name.offset, f"{name.text}() takes no set argument, so it "
                                                 "cannot be a pipeline stage")
        args: list = []
        locations: list[Location] = []
        while not self.at_stage_end():
            locations.append(self.loc(self.peek))
            index = len(args) + (1 if len(args) >= slot else 0)
            if index >= len(signature.params):
                raise self.source.error(self.peek.offset, f"syntax error: too many arguments "
                                                          f"for the stage '{name.text}'",
                                        hint="use subquery(...) for a complex argument")
            args.append((yield self.stage_arg(signature.params[index], name.text)))
        if len(args) < slot:
            raise self.source.error(self.peek.offset, f"syntax error: the stage '{name.text}' "
                                                      f"needs one more "
                                                      f"{signature.params[len(args)]} argument")
        args.insert(slot, previous)
        locations.insert(slot, self.loc(name))
        if len(args) < signature.required:
            missing = signature.params[len(args)]
            raise self.source.error(self.peek.offset, f"syntax error: the stage '{name.text}' "
                                                      f"needs one more {missing} argument")
        return Call(name.text, tuple(args), self.loc(name), tuple(locations))

    def stage_arg(self, kind: str, function: str) -> _Parsing:
        token = self.peek
        if kind != EXPR:
            return (yield self.argument(kind, function))
        if token.kind is Tok.WORD and not token.quoted and token.text == "subquery":
            self.next()
            self.expect(Tok.LPAREN, "'(' after subquery")
            expr = yield self.pipeline()
            self.expect(Tok.RPAREN, "')' to close subquery(")
            return expr
        return (yield self.primary())


def _param_names(signature: Signature) -> list[str]:
    return [p if i < signature.required else f"[{p}]" for i, p in enumerate(signature.params)]


def parse_query(text: str, path: str = "<query>", first_line: int = 1) -> Expr:
    """The tree of a query expression; raises QuerySyntaxError pointing at the column."""
    if not text.strip():
        raise QuerySyntaxError("empty query", hint="for example: bp query '//...'")
    return _Parser(_Source(text, path, first_line)).parse()


def show_query_line(error: BpError, text: str, path: str = "<query>",
                    first_line: int = 1) -> BpError:
    """Give an error located in the query text the line it points at."""
    for single in getattr(error, "errors", (error,)):
        location = single.location
        if location is not None and location.path == path and single.source_line is None:
            lines = text.splitlines()
            index = location.line - first_line
            if 0 <= index < len(lines):
                single.source_line = lines[index]
    return error


def target_words(expr: Expr) -> list[Word]:
    """Every target pattern in `expr` (words in expression position), in query order."""
    out: list[Word] = []
    stack: list = [expr]   # an explicit stack: trees can be thousands of levels deep
    while stack:
        node = stack.pop()
        if isinstance(node, Word):
            out.append(node)
        elif isinstance(node, SetLiteral):
            out.extend(node.words)
        elif isinstance(node, Let):
            stack += [node.body, node.value]
        elif isinstance(node, BinaryOp):
            stack += [node.right, node.left]
        elif isinstance(node, Call):
            stack += [arg for arg in reversed(node.args) if not isinstance(arg, (str, int))]
    return out
