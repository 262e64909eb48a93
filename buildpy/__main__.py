"""`python -m buildpy` runs the `bp` command line."""

from buildpy.cli import entry_point

entry_point()
