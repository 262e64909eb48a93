#!/bin/sh
test "$(readlink pkg/m.far)" = ../nowhere/at/all
