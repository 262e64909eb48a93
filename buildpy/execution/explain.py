"""Why an action ran: its manifest (everything its key is made from: argv, the resolved
environment, the tools' identities, its inputs' digests, an in-process action's
content) kept for its last run in this workspace, and the differences from the one
before, in words; and which actions a build found up to date. `bp why`, `--explain`
and `bp log` read what the last build recorded.

Knows actions, manifests and the workspace's state database; not the scheduler, nor
how actions run.
"""

from __future__ import annotations

import difflib
import itertools
import json
import sqlite3
import time
import zlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from buildpy.actions.graph import Action, ActionKind

_CONTENT_KEPT = 64 * 1024   # an in-process action's content is kept up to this size
_SHOWN = 12                 # changed inputs named one by one, before "and N more"


def manifest(action: Action, env: tuple[tuple[str, str], ...], tools: tuple,
             inputs: Mapping[str, Any]) -> dict:
    """What the action's key is made from, as JSON-ready values (inputs: path ->
    digest, a declared symlink's marked)."""
    data: dict[str, Any] = {
        "argv": list(action.argv), "env": dict(env), "tools": [list(t) for t in tools],
        "inputs": {p: i.sha256 + ("@link" if i.link is not None else "")
                   for p, i in sorted(inputs.items())},
        "outputs": sorted(action.outputs), "platform": dict(action.platform),
        "timeout": action.timeout, "cacheable": action.cacheable}
    if action.kind is not ActionKind.RUN:
        content = action.content or ""
        data["content"] = content if len(content) <= _CONTENT_KEPT else \
            f"<{len(content)} characters>"
        data["substitutions"] = [list(s) for s in action.substitutions]
        data["target"] = action.target
        data["is_executable"] = action.is_executable
    elif action.is_executable:
        data["is_executable"] = True
    return data


def differences(before: Mapping | None, now: Mapping) -> list[str]:
    """What changed from `before` to `now`, one finding per line (diffs indented)."""
    if before is None:
        return ["first build: no earlier run of this action is recorded"]
    found: list[str] = []
    old_inputs, new_inputs = before.get("inputs", {}), now.get("inputs", {})
    changed = [p for p in new_inputs if p in old_inputs and old_inputs[p] != new_inputs[p]]
    for path in changed[:_SHOWN]:
        found.append(f"input {path} changed: {_short(old_inputs[path])} -> "
                     f"{_short(new_inputs[path])}")
    added = [p for p in new_inputs if p not in old_inputs]
    removed = [p for p in old_inputs if p not in new_inputs]
    found += [f"new input {p}" for p in added[:_SHOWN]]
    found += [f"input {p} is no longer read" for p in removed[:_SHOWN]]
    hidden = max(0, len(changed) - _SHOWN) + max(0, len(added) - _SHOWN) + \
        max(0, len(removed) - _SHOWN)
    if hidden:
        found.append(f"and {hidden} more input changes")
    if before.get("argv") != now.get("argv"):
        found.append("command line changed (one argument a line):\n" + _diff(
            [_one_line(a) for a in before.get("argv", [])],
            [_one_line(a) for a in now.get("argv", [])]))
    old_env, new_env = before.get("env", {}), now.get("env", {})
    for name in sorted(set(old_env) | set(new_env)):
        if old_env.get(name) != new_env.get(name):
            found.append(f"environment {name}: {_shown(old_env.get(name))} -> "
                         f"{_shown(new_env.get(name))}")
    if before.get("tools") != now.get("tools"):
        old_tools = {t[0]: t[1] for t in before.get("tools", [])}
        for path, digest in now.get("tools", []):
            if old_tools.get(path) != digest:
                found.append(f"tool {path} changed: {_short(old_tools.get(path))} -> "
                             f"{_short(digest)}")
    if before.get("content") != now.get("content"):
        found.append("the content it writes changed:\n" + _diff(
            str(before.get("content", "")).splitlines(),
            str(now.get("content", "")).splitlines()))
    for field in ("substitutions", "target", "is_executable", "outputs", "platform",
                  "timeout", "cacheable"):
        if before.get(field) != now.get(field):
            found.append(f"{field} changed: {_shown(before.get(field))} -> "
                         f"{_shown(now.get(field))}")
    return found


def one_line(reason: str) -> str:
    """A reason on one line (`bp log`): its first line; a changed command line as its
    arguments removed (-) and added (+)."""
    head, _, diff = reason.partition("\n")
    if not head.startswith("command line changed"):
        return head
    lines = [line[4:] for line in diff.splitlines()[2:]]   # past "--- before", "+++ now"
    return "command line changed: " + " ".join(
        line for line in lines if line[:1] in ("-", "+"))


def _short(digest: str | None) -> str:
    if digest is None:
        return "(none)"
    return digest[:12] + ("… (a symlink)" if digest.endswith("@link") else "…")


def _shown(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value)


def _one_line(argument: str) -> str:
    """An argument on one line: a newline in it shows as \\n."""
    return argument.replace("\\", "\\\\").replace("\n", "\\n")


def _diff(before: list[str], after: list[str]) -> str:
    lines = difflib.unified_diff(before, after, "before", "now", n=1, lineterm="")
    return "\n".join("    " + line for line in lines)


@dataclass(frozen=True)
class Run:
    """One action's last run, as recorded."""

    label: str
    mnemonic: str
    output: str
    how: str               # local-cache, remote-cache, local, remote, sandboxed, failed...
    reasons: tuple[str, ...]
    outputs: tuple[str, ...]
    duration: float
    build: float           # when the build that recorded it started


@dataclass(frozen=True)
class Unchanged:
    """An action the last build found up to date (nothing ran, no cache was asked)."""

    label: str
    mnemonic: str
    output: str


class RunLog:
    """The last run of each action of this workspace (by first output), with why it ran,
    and the actions this build found up to date (one row for them all: a no-op build of
    many actions writes one value, not a row each); writes are buffered until `flush`."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.build = time.time()
        self._pending: dict[str, tuple] = {}
        self._unchanged: list[tuple[str, str, str]] = []
        self._unchanged_written = -1   # how many of them the last flush wrote

    def previous(self, output: str) -> dict | None:
        """The manifest of the last run of the action whose first output is `output`."""
        row = self._pending.get(output)
        text = row[5] if row is not None else next(iter(self.db.execute(
            "SELECT manifest FROM runs WHERE output = ?", (output,)).fetchone() or ()), None)
        return json.loads(text) if text else None

    def record(self, action: Action, how: str, reasons: list[str], data: dict,
               duration: float) -> None:
        self._pending[action.outputs[0]] = (
            action.outputs[0], action.owner_label, action.mnemonic, how,
            json.dumps(reasons), json.dumps(data, sort_keys=True), duration, self.build)

    def unchanged(self, actions: Iterable[Action]) -> None:
        """The actions were up to date: their outputs are as their last run left them."""
        self._unchanged += [(a.outputs[0], a.owner_label, a.mnemonic) for a in actions]

    def flush(self) -> None:
        unchanged = None
        if len(self._unchanged) != self._unchanged_written:
            unchanged = packed(self._unchanged)
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                self._pending.values())
            _mark_build(self.db, self.build, unchanged)
        self._pending.clear()
        self._unchanged_written = len(self._unchanged)


def packed(unchanged: Iterable[tuple[str, str, str]]) -> bytes:
    """(first output, label, mnemonic) of actions found up to date, as stored."""
    return zlib.compress("\0".join(itertools.chain.from_iterable(unchanged)).encode(), 1)


def mark_up_to_date(db: sqlite3.Connection, unchanged: bytes) -> None:
    """Record a build, now, that found the actions `unchanged` (`packed`) up to date and
    ran nothing (a no-op build proved from stat data: lastbuild.py)."""
    with db:
        db.execute("BEGIN")
        _mark_build(db, time.time(), unchanged)


def _mark_build(db: sqlite3.Connection, build: float, unchanged: bytes | None) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES ('last_build', ?)", (build,))
    if unchanged is not None:   # (NUL is in no path)
        db.execute("DELETE FROM unchanged")
        db.execute("INSERT INTO unchanged VALUES (?, ?)", (build, unchanged))


def last_build(db: sqlite3.Connection) -> float | None:
    row = db.execute("SELECT value FROM meta WHERE name = 'last_build'").fetchone()
    return row[0] if row else None


def unchanged(db: sqlite3.Connection, build: float | None) -> list[Unchanged] | None:
    """The actions that `build` (the last one) found up to date; None when that build
    recorded none (a bp from before they were recorded ran it)."""
    row = db.execute("SELECT actions FROM unchanged WHERE build = ?", (build,)).fetchone()
    if row is None:
        return None
    fields = zlib.decompress(row[0]).decode().split("\0")
    return [Unchanged(fields[i + 1], fields[i + 2], fields[i])
            for i in range(0, len(fields) - 2, 3)]


def runs(db: sqlite3.Connection, label: str | None = None, path: str | None = None
         ) -> list[Run]:
    """The recorded runs of a target's actions (`label`), or of the action that writes
    `path` (an exec path)."""
    rows = db.execute("SELECT output, label, mnemonic, how, reasons, manifest, duration, "
                      "build FROM runs" + (" WHERE label = ?" if label else ""),
                      (label,) if label else ()).fetchall()
    found = []
    for output, owner, mnemonic, how, reasons, text, duration, build in rows:
        outputs = tuple(json.loads(text).get("outputs", [output]))
        if path is not None and path not in outputs:
            continue
        found.append(Run(owner, mnemonic, output, how, tuple(json.loads(reasons)), outputs,
                         duration, build))
    return sorted(found, key=lambda r: (r.label, r.output))


def log_entries(found: list[Run], last: float | None,
                up_to_date: list[Unchanged] | None) -> list[dict]:
    """`bp log`'s entries: every action of the last build, by label and output, with how
    it was satisfied (ran, a cache hit, or `up-to-date`), how long it took, and why."""
    ran = {r.output: r for r in found if r.build == last}
    earlier = {r.output: r for r in found}
    entries = [{"label": r.label, "mnemonic": r.mnemonic, "output": r.output, "how": r.how,
                "duration": round(r.duration, 3), "reasons": list(r.reasons)}
               for r in ran.values()]
    for action in up_to_date or ():
        if action.output in ran:
            continue
        entry = {"label": action.label, "mnemonic": action.mnemonic, "output": action.output,
                 "how": "up-to-date", "duration": 0.0}
        previous = earlier.get(action.output)
        if previous is None:
            entry["reasons"] = ["up to date: its outputs are as its last run left them"]
        else:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(previous.build))
            entry["reasons"] = [f"up to date: nothing it depends on changed since its last "
                                f"run ({_how(previous)}, in the build of {when})"]
            entry["last_run"] = {"how": previous.how, "build": previous.build,
                                 "duration": round(previous.duration, 3)}
        entries.append(entry)
    return sorted(entries, key=lambda e: (e["label"], e["output"]))


def describe(found: list[Run], last: float | None,
             up_to_date: set[str] | None = None) -> list[str]:
    """`bp why`'s text: each action, how the last build satisfied it, and why.
    `up_to_date`: the first outputs of the actions the last build found up to date
    (None: not known, so every action not run by it is taken as up to date)."""
    lines: list[str] = []
    for run in found:
        head = f"{run.label}: {run.mnemonic} {run.output}"
        earlier = last is not None and run.build < last
        if earlier and (up_to_date is None or run.output in up_to_date):
            lines.append(f"{head}: up to date in the last build (nothing it depends on "
                         f"changed since it last ran: {_how(run)})")
            continue
        if earlier:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.build))
            lines.append(f"{head}: not part of the last build; in the build of {when} it "
                         f"was {_how(run)}")
        else:
            lines.append(f"{head}: {_how(run)}")
        lines += ["  " + reason.replace("\n", "\n  ") for reason in run.reasons]
    return lines


def _how(run: Run) -> str:
    if run.how.endswith("-cache"):
        return f"a hit in the {run.how.replace('-', ' ')}"
    if run.how == "failed":
        return f"ran and failed ({run.duration:.2f} s)"
    if run.how == "in-process":
        return f"written by bp itself ({run.duration:.2f} s)"
    return f"ran ({run.how}, {run.duration:.2f} s)"
