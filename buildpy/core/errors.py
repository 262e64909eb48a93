"""The one error shape of bp: where, what went wrong, the source line, what to do.

Errors are classified by whose fault they are, and each class maps to its own exit code
(the same numbers Bazel uses). Knows nothing about Starlark, loading or the CLI.
"""

from __future__ import annotations

import difflib
import errno
from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True, order=True)
class Location:
    """A position in a file; `path` is shown as given (workspace-relative for BUILD files)."""

    path: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


class BpError(Exception):
    """Base of every error bp reports to a user. `render()` gives the text to print."""

    exit_code = 37

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        source_line: str | None = None,
        hint: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.location = location
        self.source_line = source_line
        self.hint = hint

    def render(self) -> str:
        head = f"{self.location}: {self.message}" if self.location else self.message
        lines = [head]
        if self.source_line is not None and self.location is not None:
            number = str(self.location.line)
            pad = " " * len(number)
            lines.append(f"{number} | {self.source_line.rstrip()}")
            lines.append(f"{pad} | {' ' * (self.location.column - 1)}^")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def __reduce__(self):
        # pickled (to cross from another process) without calling __init__ again, whose
        # parameters differ from subclass to subclass
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type, args: tuple, state: dict) -> BpError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class UserError(BpError):
    """The user's input is wrong: a bad flag, label, pattern or BUILD file (exit 2)."""

    exit_code = 2


class RemoteError(BpError):
    """A remote cache or executor failed or refused a call (exit 34, as Bazel's)."""

    exit_code = 34


class EnvError(BpError):
    """The environment is wrong: a missing tool, an unreadable file, no workspace (exit 36)."""

    exit_code = 36


class InternalError(BpError):
    """A bug of ours (exit 37)."""

    exit_code = 37


class ErrorGroup(UserError):
    """Several user errors found in one go (e.g. every bad attribute of a BUILD file)."""

    def __init__(self, errors: Iterable[BpError]):
        unique: dict[str, BpError] = {}   # found through several targets: said once
        for error in errors:
            unique.setdefault(error.render(), error)
        self.errors = tuple(unique.values())
        super().__init__(f"{len(self.errors)} errors")
        self.exit_code = max(e.exit_code for e in self.errors)

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)

    @staticmethod
    def of(errors: Sequence[BpError]) -> BpError:
        """The one error to raise for `errors` (not empty): itself when alone."""
        return errors[0] if len(errors) == 1 else ErrorGroup(errors)


def decode_utf8(data: bytes, path: str, hint: str) -> str:
    """`data` (the bytes of file `path`) as text; bytes that are not UTF-8 are an error
    at the first bad one."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise invalid_utf8(path, error, hint) from None


def invalid_utf8(path: str, error: UnicodeDecodeError, hint: str) -> UserError:
    """The error for file `path` that is not UTF-8, at its first bad byte (the column
    counts characters, as in every other error)."""
    data: bytes = error.object
    start = data.rfind(b"\n", 0, error.start) + 1
    end = data.find(b"\n", error.start)
    line = data[start:end if end >= 0 else len(data)].decode("utf-8", errors="replace")
    column = len(data[start:error.start].decode("utf-8", errors="replace")) + 1
    return UserError(f"invalid UTF-8 in {path}: byte 0x{data[error.start]:02x} "
                     f"({error.reason})",
                     location=Location(path, data.count(b"\n", 0, error.start) + 1, column),
                     source_line=line.rstrip("\r"), hint=hint)


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `word`, or None when none is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str], quote: str = "'") -> str:
    """Return "; did you mean 'x'?" for the closest candidate, or "" when none is close."""
    match = closest(word, candidates)
    return f"; did you mean {quote}{match}{quote}?" if match else ""


_ENVIRONMENT_ERRNOS = {   # errno -> what bp could not do to the file
    errno.ENOSPC: "write", errno.EDQUOT: "write", errno.EROFS: "write",
    errno.EACCES: "access", errno.EPERM: "access",
}
NO_SPACE_HINT = "free some space on that disk (bp clean --gc trims the shared cache to " \
    "--disk_cache_max_size), then run the command again"


def environment_error(error: OSError, path: object = None) -> EnvError | None:
    """The EnvError (exit 36) for an OSError that is the environment's fault (a full
    disk or quota, a read-only file system, a file bp may not write), naming `path` (or
    the error's own file); None for any other error."""
    if error.errno not in _ENVIRONMENT_ERRNOS:
        return None
    where = path if path is not None else error.filename
    if where is None:
        where = "a file"
    hint = NO_SPACE_HINT if error.errno in (errno.ENOSPC, errno.EDQUOT) else \
        "make it writable, or run bp where it may write"
    return EnvError(f"cannot {_ENVIRONMENT_ERRNOS[error.errno]} {where}: {error.strerror}",
                    hint=hint)
