"""The machine bp runs on, in the names of bp's constraint values (os and cpu)."""

from __future__ import annotations

import platform

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
