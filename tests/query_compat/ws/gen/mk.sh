#!/bin/bash
cat "$@"
