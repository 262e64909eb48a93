#!/bin/sh
# Fails on every first attempt and passes on the retry (flaky = True gives it 3): the
# marker lives in TEST_UNDECLARED_OUTPUTS_DIR, which outlives one attempt.
marker="$TEST_UNDECLARED_OUTPUTS_DIR/attempted"
if [ -e "$marker" ]; then
    echo "second attempt: pass"
else
    : > "$marker"
    echo "first attempt: fail"
    exit 1
fi
