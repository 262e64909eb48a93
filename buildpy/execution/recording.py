"""One command's telemetry and where it goes: the recorder the build reports to, the
build event file (--build_event_json_file) and the trace (--profile), both finished
however the command ends (success, failure, an error, Ctrl-C).

Knows exit codes and files; not targets, rules or how actions run.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Sequence

from buildpy.actions.tests import TEST_MNEMONIC
from buildpy.core.errors import BpError, UserError
from buildpy.execution.events import BuildEvents
from buildpy.execution.telemetry import Telemetry


class Recording:
    """A context manager around a command: `code` is set by the command as it returns;
    an exception leaving it gives the code bp exits with (8 for Ctrl-C)."""

    def __init__(self, command: str, words: Sequence[str], workspace: Path,
                 profile: Path | None = None, events: Path | None = None,
                 publish_all_actions: bool = False):
        from buildpy import __version__

        self.command = command
        self.telemetry = Telemetry()
        self.build_id = str(uuid.uuid4())
        self.profile = profile
        self.publish_all_actions = publish_all_actions
        self.code = 0
        self._actions_posted = False
        self.events: BuildEvents | None = None
        if events is not None:
            try:
                self.events = BuildEvents(events, self.build_id, command, words, workspace,
                                          int(self.telemetry.origin_wall * 1000), __version__)
            except OSError as error:
                raise UserError(f"--build_event_json_file: cannot write {events}: "
                                f"{error.strerror}",
                                hint="give a path in a writable directory") from None

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, kind, error, _traceback) -> None:
        code, reason = self.code, "INCOMPLETE"
        if kind is not None:
            if issubclass(kind, KeyboardInterrupt):
                code, reason = 8, "USER_INTERRUPTED"
            elif issubclass(kind, SystemExit):
                code = error.code if isinstance(error.code, int) else 0
            elif isinstance(error, BpError):
                code = error.exit_code
            else:
                code = 37
        elif code == 8:
            reason = "USER_INTERRUPTED"
        self.close(code, reason)

    def post_actions(self) -> None:
        """The actions of the build as events: the failed ones (not test attempts,
        which tests report), or all with --build_event_publish_all_actions. Once."""
        if self.events is None or self._actions_posted:
            return
        self._actions_posted = True
        for run in self.telemetry.runs:
            if self.publish_all_actions or (not run.ok and run.mnemonic != TEST_MNEMONIC):
                self.events.action(run)

    def targets(self, reported: Sequence[tuple[str, Sequence[str]]], produced,
                kinds: dict[str, str] | None = None, tests: Sequence[str] = ()) -> None:
        """The events of the requested targets ((label, files) pairs): configured, then
        completed, successfully when every file it should make under bp-out was made."""
        if self.events is None:
            return
        self.post_actions()
        self.events.expanded([label for label, _ in reported], kinds, tests)
        tests = set(tests)
        for label, files in reported:
            self.events.completed(label, all(p in produced or not p.startswith("bp-out/")
                                             for p in files), files, test=label in tests)

    def tests(self, run, results, reported, produced, kinds: dict[str, str]) -> None:
        """The events of a test command: its targets, then a result per attempt of each
        run and shard of each test (a testrunner.TestRun's), and each test's summary."""
        if self.events is None:
            return
        self.targets(reported, produced, kinds, tests=[r.spec.label for r in results])
        workspace = self.events.workspace
        for result in results:
            status, spec = result.status.value, result.spec
            attempts = run.attempts(spec.label)
            for one in attempts:
                self.events.test_result(spec.label, one.status.value, one.attempt,
                                        one.duration, [workspace / one.log], one.cached,
                                        run=one.run, shard=one.shard)
            self.events.test_summary(spec.label, status, spec.runs, spec.shard_count,
                                     len(attempts), result.duration, result.logs,
                                     result.cached)

    def summary(self) -> list[str]:
        return self.telemetry.summary()

    def close(self, code: int, reason: str = "INCOMPLETE") -> None:
        if self.events is not None:
            self.post_actions()
            self.events.finished(code, int(time.time() * 1000), reason)
            self.events = None
        if self.profile is not None:
            profile, self.profile = self.profile, None
            try:
                self.telemetry.write_trace(profile, self.command, self.build_id)
            except OSError as error:
                import sys

                sys.stderr.write(f"WARNING: could not write --profile file {profile}: "
                                 f"{error.strerror}\n")
