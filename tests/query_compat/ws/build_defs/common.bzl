"""Helpers shared by the other .bzl files (loaded transitively)."""

DEFAULT_MODE = "fast"

def stamp_cmd(prefix):
    return "echo " + prefix + " > $@ && cat $(SRCS) >> $@"
