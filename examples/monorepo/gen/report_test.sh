#!/bin/sh
# Test for the //gen pipeline. Arguments: the files of //gen:outputs.
set -u

. scripts/testlib.sh

sorted=""
report=""
for f in "$@"; do
  case "$f" in
    *words.sorted) sorted="$f" ;;
    *report.txt) report="$f" ;;
  esac
done
[ -n "$sorted" ] || fail "words.sorted not passed to the test"
[ -n "$report" ] || fail "report.txt not passed to the test"

assert_eq "apple banana carrot cherry leek zucchini" \
  "$(tr '\n' ' ' < "$sorted" | sed 's/ $//')" "sorted word list"
assert_eq "words: 6
first: apple
last: zucchini" "$(cat "$report")" "report"

finish
