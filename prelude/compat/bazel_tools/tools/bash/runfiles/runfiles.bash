# bp's Bash runfiles library, for scripts written against Bazel's
# @bazel_tools//tools/bash/runfiles: they source it from their runfiles
# (RUNFILES_DIR/bazel_tools/tools/bash/runfiles/runfiles.bash) and call
#
#   rlocation WORKSPACE/PATH     prints where that runfile is (status 1 if nowhere)
#   runfiles_export_envvars      exports RUNFILES_DIR / RUNFILES_MANIFEST_FILE for
#                                the programs the script starts
#
# bp lays out runfiles as a directory tree; a manifest file ("RUNFILE REALPATH"
# lines) is read too when RUNFILES_MANIFEST_FILE names one. A script that neither
# variable points at (a tool run by an action) finds its tree beside itself,
# `$0.runfiles`, and exports it for the programs it starts.

if [[ ! -d "${RUNFILES_DIR:-/dev/null}" && ! -f "${RUNFILES_MANIFEST_FILE:-/dev/null}" \
      && -d "$0.runfiles" ]]; then
  RUNFILES_DIR="$(cd "$0.runfiles" && pwd)"
  export RUNFILES_DIR
fi

function rlocation() {
  local wanted="$1" found=""
  if [[ "$wanted" == /* ]]; then
    echo "$wanted"
    return 0
  fi
  if [[ -n "${RUNFILES_DIR:-}" && -e "${RUNFILES_DIR}/${wanted}" ]]; then
    echo "${RUNFILES_DIR}/${wanted}"
    return 0
  fi
  if [[ -f "${RUNFILES_MANIFEST_FILE:-/dev/null}" ]]; then
    found="$(grep -m1 -F "${wanted} " "${RUNFILES_MANIFEST_FILE}" | cut -d ' ' -f 2-)"
    if [[ -n "$found" ]]; then
      echo "$found"
      return 0
    fi
  fi
  return 1
}
export -f rlocation

function runfiles_export_envvars() {
  if [[ -n "${RUNFILES_DIR:-}" ]]; then
    export RUNFILES_DIR
  fi
  if [[ -n "${RUNFILES_MANIFEST_FILE:-}" ]]; then
    export RUNFILES_MANIFEST_FILE
  fi
}
export -f runfiles_export_envvars
