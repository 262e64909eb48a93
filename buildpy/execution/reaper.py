"""Orphans of actions: bp becomes their subreaper, so that a process an action started in
a session of its own (`setsid`, a daemon) comes back to bp when its parent dies, and is
killed when the build ends or stops.

An action's process group is killed when the action ends (spawn.py); what left the
group escapes that, and without a subreaper it would be adopted by init and run on.
With `prctl(PR_SET_CHILD_SUBREAPER)` such orphans become children of bp instead, which
finds them in /proc. Knows processes; not actions, strategies or the build.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from typing import Collection

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


def _prctl():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):   # not Linux: orphans go to init
        return None


class Subreaper:
    """Makes this process the subreaper of its descendants while it lives (`close()`
    restores what it was), and kills the orphans that came to it."""

    def __init__(self):
        self._prctl = _prctl()
        self._was = ctypes.c_int(0)
        self.active = False
        self.since = time.clock_gettime(time.CLOCK_BOOTTIME)
        self._session = os.getsid(0)
        if self._prctl is None:
            return
        self._prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(self._was), 0, 0, 0)
        self.active = self._prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0

    def orphans(self, keep: Collection[int] = ()) -> list[tuple[int, int]]:
        """The adopted orphans, as (pid, process group)."""
        return [(pid, group) for pid, group, _ in self._scan(keep)]

    def reap_zombies(self, keep: Collection[int] = ()) -> int:
        """Reap the orphans that died already (bubblewrap leaves one per action, its
        pid namespace's init), so that they do not hold their pids until the build
        ends; returns how many. Kills nothing."""
        dead = [pid for pid, _, state in self._scan(keep) if state == b"Z"]
        return sum(_wait(pid, 0.0) for pid in dead)

    def _scan(self, keep: Collection[int]) -> list[tuple[int, int, bytes]]:
        """The adopted orphans, as (pid, process group, state): children of this process that
        were not born to it. They are told apart by their session (what bp starts
        itself either shares bp's session or is a running action, in `keep`) and by
        their start (not before the clock tick this subreaper began in, so processes the
        caller started earlier, in sessions of their own, are not taken for orphans)."""
        if not self.active:
            return []
        me = os.getpid()
        ticks = os.sysconf("SC_CLK_TCK")
        first_tick = int(self.since * ticks)   # /proc counts starts in whole ticks
        found: list[tuple[int, int, bytes]] = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue   # gone meanwhile
            pid = int(name)
            if (int(fields[1]) != me or pid in keep or int(fields[3]) == self._session
                    or int(fields[19]) < first_tick):
                continue
            found.append((pid, int(fields[2]), fields[0]))
        return found

    def kill_orphans(self, keep: Collection[int] = (), seconds: float = 10.0) -> int:
        """Kill the adopted orphans and their groups, and wait for them (their own
        children come to this process in turn, and go the same way). Returns how many."""
        killed = 0
        deadline = time.monotonic() + seconds
        own_group = os.getpgid(0)
        while time.monotonic() < deadline:
            orphans = self.orphans(keep)
            if not orphans:
                break
            for pid, group in orphans:
                for kill, target in ((os.kill, pid), (os.killpg, group)):
                    if target in keep or target == own_group:
                        continue
                    try:
                        kill(target, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            for pid, _ in orphans:
                killed += _wait(pid, deadline)
        return killed

    def close(self, keep: Collection[int] = ()) -> None:
        """Kill the orphans, then stop being a subreaper (unless this process was one
        before)."""
        if not self.active:
            return
        try:
            self.kill_orphans(keep)
        finally:
            self.active = False
            if not self._was.value:
                self._prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def _wait(pid: int, deadline: float) -> int:
    """Reap child `pid` (killed), waiting until `deadline` at most; 1 if reaped."""
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done or time.monotonic() >= deadline:
            return 1 if done else 0
        time.sleep(0.002)
