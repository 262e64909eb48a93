#!/bin/sh
# Sleeps past any short timeout: `bp test //tests:slow_test --test_timeout=2` shows TIMEOUT.
echo "sleeping..."
sleep 600
