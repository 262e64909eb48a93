#!/bin/sh
# Test for //scripts:greet. $1 is the path of the greet binary.
set -u

greet="$1"
. scripts/testlib.sh

assert_eq "Hello, world!" "$("$greet" 2>/dev/null)" "default name"
assert_eq "Hello, Ada!
Hello, Linus!" "$("$greet" Ada Linus 2>/dev/null)" "two names"
assert_contains "$("$greet" Ada 2>&1 >/dev/null)" "[greet] greeted 1 name(s)" "log line"

if "$greet" --bad >/dev/null 2>&1; then
  fail "greet should reject option-like names"
fi

finish
