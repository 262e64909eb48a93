"""`python -m buildpy` and the `bp` console script: the command line, with a stop signal
during its start ending bp quietly (exit 8)."""


def run() -> None:
    from buildpy.core.signals import exit_when_stopped_while_starting

    exit_when_stopped_while_starting()   # first: loading the modules takes a while
    from buildpy.cli import entry_point

    entry_point()


if __name__ == "__main__":
    run()
