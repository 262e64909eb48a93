#!/bin/sh
# Usage: windows_only -- prints where Windows is installed. Meant for the POSIX
# shell of Git for Windows or MSYS2; its target is compatible with Windows
# platforms only, so builds for other platforms skip it.
set -eu

# Windows sets SystemRoot (usually C:\Windows); the POSIX shells keep it.
printf 'Windows is installed in %s\n' "${SystemRoot:?SystemRoot is not set: not on Windows?}"
