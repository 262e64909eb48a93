"""The machine bp runs on, in the names of bp's constraint values (os and cpu), and
where bp keeps its caches for the user on it."""

from __future__ import annotations

import os
import platform
from pathlib import Path

_OS = {"linux": "linux", "darwin": "macos", "windows": "windows", "freebsd": "freebsd"}
_CPU = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64",
        "i386": "x86_32", "i686": "x86_32", "armv7l": "armv7", "riscv64": "riscv64",
        "ppc64le": "ppc64le", "s390x": "s390x"}


def host_os() -> str:
    system = platform.system().lower()
    return _OS.get(system, system)


def host_cpu() -> str:
    machine = platform.machine().lower()
    return _CPU.get(machine, machine)


def bp_cache_home() -> Path:
    """$XDG_CACHE_HOME/bp (~/.cache/bp): the disk cache and the repository cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bp"
