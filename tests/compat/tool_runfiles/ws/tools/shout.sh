#!/bin/bash
# Shouts its first argument, then the suffix from its runfiles, into the file its
# second argument names (or to stdout).
set -euo pipefail
here="$0.runfiles"
if [[ ! -d "$here" ]]; then   # run from another tool's tree: that tree is ours too
  here="${RUNFILES_DIR:?no runfiles}"
fi
if [[ $# -gt 1 ]]; then
  exec > "$2"
fi
printf '%s %s\n' "$(echo "$1" | tr a-z A-Z)" "$(cat "$here/compat/tools/suffix.txt")"
