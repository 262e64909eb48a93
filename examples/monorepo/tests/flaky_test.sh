#!/bin/sh
# Fails on every first attempt and passes on the retry (flaky = True gives it 3): a failed
# attempt's log stays beside the next attempt's as test_attempt_N.log, which the test sees
# only when it runs unsandboxed (tagged no-sandbox): a sandbox shows it its inputs only.
if [ -e "$(dirname "$XML_OUTPUT_FILE")/test_attempt_1.log" ]; then
    echo "second attempt: pass"
else
    echo "first attempt: fail"
    exit 1
fi
