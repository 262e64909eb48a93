#!/bin/sh
# Usage: greet [NAME...] -- prints one greeting per name.
set -eu

# log.sh sits next to this script in the source tree and in the runfiles tree.
lib=""
for dir in "$(dirname "$0")" "$0.runfiles/monorepo/scripts" \
    "${RUNFILES_DIR:-/nonexistent}/monorepo/scripts" scripts; do
  if [ -f "$dir/log.sh" ]; then
    lib="$dir/log.sh"
    break
  fi
done
[ -n "$lib" ] || { echo "greet: cannot find log.sh" >&2; exit 1; }
LOG_PREFIX="[greet]"
. "$lib"

[ "$#" -gt 0 ] || set -- world
for name in "$@"; do
  case "$name" in
    "" | -*) die "invalid name: '$name'" ;;
  esac
  printf 'Hello, %s!\n' "$name"
done
log_info "greeted $# name(s)"
