"""What analysis tells later phases about one configured target (saved with the plan).

Plain data, kept apart from the analyzer so that reading a saved plan imports nothing
of loading or analysis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from operator import attrgetter


@dataclass(frozen=True, slots=True)
class TargetResult:
    """A configured target's files, executable, runfiles and run environment; a test's
    `args` and `env` attributes with $(location) expanded (each arg still to be split
    as a shell would, its paths quoted)."""

    files: tuple[str, ...]
    executable: str | None = None
    runfiles: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    test_args: tuple[str, ...] = ()
    test_env: tuple[tuple[str, str], ...] = ()
    # runfiles at names of their own (runfiles' symlinks and root_symlinks): (name in
    # the tree, exec path)
    runfile_links: tuple[tuple[str, str], ...] = ()
    # a test's testing.ExecutionInfo requirements
    test_requirements: tuple[tuple[str, str], ...] = ()

    def __reduce__(self):   # (its values in a tuple: smaller, and faster to read back)
        return TargetResult, _VALUES(self)


_VALUES = attrgetter(*(f.name for f in fields(TargetResult)))
