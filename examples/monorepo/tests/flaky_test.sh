#!/bin/sh
# Fails on every first attempt and passes on the retry (flaky = True gives it 3): the
# marker lives in TEST_UNDECLARED_OUTPUTS_DIR, which outlives one attempt only when the
# test runs unsandboxed (tagged no-sandbox): a sandbox starts every attempt afresh.
marker="$TEST_UNDECLARED_OUTPUTS_DIR/attempted"
if [ -e "$marker" ]; then
    echo "second attempt: pass"
else
    : > "$marker"
    echo "first attempt: fail"
    exit 1
fi
