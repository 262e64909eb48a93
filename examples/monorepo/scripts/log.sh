# Logging helpers; source this file, do not execute it.

log_prefix="${LOG_PREFIX:-[log]}"

log_info() {
  printf '%s %s\n' "$log_prefix" "$*" >&2
}

die() {
  printf '%s error: %s\n' "$log_prefix" "$*" >&2
  exit 1
}
