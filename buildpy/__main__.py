"""`python -m buildpy` and the `bp` console script: the command line, with a stop signal
during its start ending bp quietly (exit 8)."""

# `_signal` and `os` are loaded by the interpreter's own start; `signal` is not, and
# importing it builds enums for milliseconds in which a SIGINT would print a traceback.
import _signal
import os


def _stopped_while_starting(signum, frame) -> None:
    os.write(2, b"ERROR: interrupted\n")
    os._exit(8)   # EXIT_INTERRUPTED: nothing has started that needs stopping


def run() -> None:
    # First, with nothing imported but what the interpreter has already loaded: loading
    # bp's modules (typing among them) takes a while, and a KeyboardInterrupt in the
    # middle of an import would print a traceback. The command's own handlers
    # (core/signals.py) take over once it runs.
    for number in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP):
        _signal.signal(number, _stopped_while_starting)
    from buildpy.cli import entry_point

    entry_point()


if __name__ == "__main__":
    run()
