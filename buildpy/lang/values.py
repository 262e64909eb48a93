"""Values that cross between Starlark and Python: select() and call-stack frames.

Knows their shape only; resolving a select() against a configuration is config's job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from buildpy.core.errors import Location

DEFAULT_CONDITION = "//conditions:default"


@dataclass(frozen=True)
class Select:
    """One `select({...})`: (condition label text, value) pairs in source order."""

    conditions: tuple[tuple[str, Any], ...]
    no_match_error: str
    location: Location

    def __repr__(self) -> str:
        body = ", ".join(f"{k!r}: {v!r}" for k, v in self.conditions)
        return f"select({{{body}}})"


@dataclass(frozen=True)
class SelectorList:
    """A configurable attribute value: literal parts and selects joined by `+`."""

    parts: tuple[Any, ...]

    def __repr__(self) -> str:
        return " + ".join(repr(p) for p in self.parts)


@dataclass(frozen=True)
class Frame:
    """One frame of a Starlark call stack: the file as shown, its line, the function."""

    path: str
    line: int
    function: str


# A frame's line, from the line break before it (a literal first character lets the
# search skip ahead to line breaks; `[ \t]*`, not `\s*`: a match starts on the frame's
# own line, and does not try every line break as the start of a run of blank lines)
_FRAME = re.compile(r"\n[ \t]*\* ([^\n]*):(\d+), in ([^\n]*)")


def parse_call_stack(text: str) -> tuple[Frame, ...]:
    """Frames of a `call_stack()` text, outermost first."""
    return tuple([Frame(path, int(line), function)
                  for path, line, function in _FRAME.findall("\n" + text)])


class CallStack(Sequence):
    """The frames of a `call_stack()` text, outermost first, parsed when first used:
    most native calls never look at them (only errors and locations do)."""

    __slots__ = ("_text", "_frames")

    def __init__(self, text: str):
        self._text = text
        self._frames: tuple[Frame, ...] | None = None

    def _parsed(self) -> tuple[Frame, ...]:
        if self._frames is None:
            self._frames = parse_call_stack(self._text)
        return self._frames

    def __getitem__(self, index):
        return self._parsed()[index]

    def __len__(self) -> int:
        return len(self._parsed())

    def __iter__(self):   # (Sequence's own would index frame by frame)
        return iter(self._parsed())

    def index(self, value, *bounds) -> int:
        return self._parsed().index(value, *bounds)
