"""`python -m buildpy` runs the `bp` command line."""

from buildpy.cli import main

main()
