"""rc files (`.bazelrc`, `.bprc`, `~/.bprc`): default flags per command, in `.bazelrc`
syntax.

Lines are `COMMAND[:CONFIG] FLAGS...`; `common` applies to every command, `build` also to
the commands that build (test, run, cquery, aquery, clean), `test` also to coverage.
`import PATH` and `try-import PATH` include other files (`%workspace%` expands).
Knows nothing of the flags themselves; the CLI decides which ones a command accepts.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from buildpy.core.errors import Location, UserError, decode_utf8

# The commands whose options a command inherits, nearest last (as Bazel does).
INHERITS = {
    "build": ("common", "build"),
    "test": ("common", "build", "test"),
    "run": ("common", "build", "run"),
    "coverage": ("common", "build", "test", "coverage"),
    "cquery": ("common", "build", "cquery"),
    "aquery": ("common", "build", "aquery"),
    "clean": ("common", "build", "clean"),
}


@dataclass(frozen=True)
class RcLine:
    command: str        # `common`, `build`, `test`, ...
    config: str | None  # `ci` for `build:ci`, None otherwise
    args: tuple[str, ...]
    location: Location
    source: str = ""    # the line as written, for messages
    bazel: bool = False  # from a .bazelrc (or a file it imports): written for Bazel

    def at(self, arg: str) -> Location:
        """Where `arg` is on this line (its first column when it cannot be found)."""
        column = self.source.find(arg)
        return Location(self.location.path, self.location.line,
                        column + 1 if column >= 0 else 1)


@dataclass(frozen=True)
class RcFile:
    lines: tuple[RcLine, ...] = ()

    def sections(self, command: str) -> tuple[str, ...]:
        return INHERITS.get(command, ("common", command))

    def args_for(self, command: str, config: str | None = None) -> list[tuple[str, str]]:
        """(section, arg) pairs that apply to `command` under `config`, in file order."""
        wanted = self.sections(command)
        out = []
        for section in wanted:  # inherited sections first, so nearer ones win
            for line in self.lines:
                if line.command == section and line.config == config:
                    out.extend((section, arg) for arg in line.args)
        return out

    def lines_for(self, command: str, config: str | None = None
                  ) -> list[tuple[str, str, RcLine]]:
        """As `args_for`, with the line each arg comes from."""
        out = []
        for section in self.sections(command):
            for line in self.lines:
                if line.command == section and line.config == config:
                    out.extend((section, arg, line) for arg in line.args)
        return out

    def has_config(self, config: str) -> bool:
        return any(line.config == config for line in self.lines)


def read_rc_files(paths: list[Path], workspace: Path | None) -> RcFile:
    lines: list[RcLine] = []
    for path in paths:
        if path.is_file():
            lines.extend(_parse(path, workspace, chain=(), bazel=path.name == ".bazelrc"))
    return RcFile(tuple(lines))


def _parse(path: Path, workspace: Path | None, chain: tuple[Path, ...], bazel: bool
           ) -> list[RcLine]:
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(str(p) for p in (*chain[chain.index(resolved):], resolved))
        raise UserError(f"{path}: rc file import cycle: {cycle}",
                        hint="remove one of these imports")
    chain = (*chain, resolved)
    out: list[RcLine] = []
    text = decode_utf8(path.read_bytes(), str(path),
                       "rc files must be UTF-8 text; save it as UTF-8")
    for number, raw in enumerate(text.splitlines(), start=1):
        location = Location(str(path), number, 1)
        try:
            words = shlex.split(raw, comments=True)
        except ValueError as e:
            raise UserError(f"{location}: cannot parse rc line: {e}", source_line=raw,
                            location=None) from None
        if not words:
            continue
        head, args = words[0], words[1:]
        if head in ("import", "try-import"):
            if len(args) != 1:
                raise UserError(f"{location}: '{head}' takes exactly one path")
            target = args[0].replace("%workspace%", str(workspace or path.parent))
            target_path = Path(target)
            if not target_path.is_absolute():
                target_path = path.parent / target_path
            if not target_path.is_file():
                if head == "try-import":
                    continue
                raise UserError(f"{location}: imported rc file '{target}' does not exist",
                                hint="use 'try-import' for optional files")
            out.extend(_parse(target_path, workspace, chain, bazel))
            continue
        command, _, config = head.partition(":")
        out.append(RcLine(command, config or None, tuple(args), location, raw, bazel))
    return out
