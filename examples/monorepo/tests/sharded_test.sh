#!/bin/sh
# Checks its shard of the numbers 1..9: each shard takes every TEST_TOTAL_SHARDS-th one.
set -eu
: "${TEST_SHARD_INDEX:?not run as a sharded test}"
touch "$TEST_SHARD_STATUS_FILE"   # tells the runner this test understands sharding
i=0
for n in 1 2 3 4 5 6 7 8 9; do
    if [ $((i % TEST_TOTAL_SHARDS)) -eq "$TEST_SHARD_INDEX" ]; then
        [ $((n * n)) -ge "$n" ] || { echo "FAIL: $n"; exit 1; }
        echo "shard $TEST_SHARD_INDEX checked $n"
    fi
    i=$((i + 1))
done
