#!/bin/sh
# Test for //app:hello. $1 is the path of the hello binary. Tests run from
# the root of the runfiles tree, so workspace-relative paths work.
set -u

hello="$1"
. scripts/testlib.sh

# The test runs where the binary runs, so this machine's CPU is the one the
# binary was built for (in the names of @platforms//cpu).
case "$(uname -m)" in
  x86_64 | amd64) cpu=x86_64 ;;
  aarch64 | arm64) cpu=arm64 ;;
  *) cpu="$(uname -m)" ;;
esac

expected="=-=-=-=-=-=-=-=-=-=-
Hello, WORLD!
strutil v2
gcd(84, 36) = 12
5! = 120
12321 is a palindrome
built for $cpu"

assert_eq "$expected" "$("$hello")" "default output"
assert_contains "$("$hello" bazel)" "Hello, BAZEL!" "custom name"

if "$hello" "$(printf '%070d' 0)" >/dev/null 2>&1; then
  fail "a 70-character name should be rejected"
fi

finish
