# Assertion helpers for sh_test scripts; source this file.

testlib_failures=0

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  testlib_failures=$((testlib_failures + 1))
}

# assert_eq EXPECTED ACTUAL [MESSAGE]
assert_eq() {
  if [ "$1" != "$2" ]; then
    fail "${3:-values differ}: expected '$1', got '$2'"
  fi
}

# assert_contains HAYSTACK NEEDLE [MESSAGE]
assert_contains() {
  case "$1" in
    *"$2"*) ;;
    *) fail "${3:-missing text}: '$2' not found in '$1'" ;;
  esac
}

# Call last: exits 0 if every assertion passed, 1 otherwise.
finish() {
  if [ "$testlib_failures" -ne 0 ]; then
    printf '%d assertion(s) failed\n' "$testlib_failures" >&2
    exit 1
  fi
  echo "PASS"
  exit 0
}
