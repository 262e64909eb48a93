#!/bin/bash
# count.sh OUT NAME FILE...: writes "<prefix> NAME: <number of lines of FILE...>" to OUT.
set -euo pipefail
out=$1
name=$2
shift 2
prefix=$(cat "$0.runfiles/compat/tools/prefix.txt")
printf '%s %s: %s lines\n' "$prefix" "$name" "$(cat "$@" | wc -l | tr -d ' ')" > "$out"
