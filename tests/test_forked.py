"""core/forked: a function run in a forked child that sends values back while it runs."""

from __future__ import annotations

import os
import select
import time

from buildpy.core import forked


def _drain(child: forked.Forked, seconds: float = 20) -> list:
    """Everything the child sends, until its end (bounded)."""
    values = []
    poller = select.poll()
    poller.register(child.fileno(), select.POLLIN)
    deadline = time.monotonic() + seconds
    while not child.eof:
        assert time.monotonic() < deadline, "the child never ended"
        poller.poll(100)
        values += child.receive()
    return values


def test_values_larger_than_the_pipe_arrive_whole_and_in_order():
    big = "x" * (3 << 20)   # three times the pipe's buffer

    def work(send):
        send(("first", 1))
        send(big)
        send(("last", os.getpid()))

    child = forked.start(work)
    try:
        values = _drain(child)
    finally:
        child.close()
    assert values[0] == ("first", 1) and values[1] == big
    assert values[2][0] == "last" and values[2][1] != os.getpid()   # sent by the child
    assert child.exit_code == 0


def test_a_child_that_raises_keeps_what_it_sent_and_exits_1():
    def work(send):
        send("before")
        raise RuntimeError("boom")

    child = forked.start(work)
    try:
        assert _drain(child) == ["before"]
    finally:
        child.close()
    assert child.exit_code == 1


def test_close_kills_a_child_still_at_work():
    def work(send):
        send("started")
        time.sleep(60)

    child = forked.start(work)
    began = time.monotonic()
    poller = select.poll()
    poller.register(child.fileno(), select.POLLIN)
    while not child.receive():
        assert time.monotonic() - began < 20
        poller.poll(100)
    child.close()
    assert time.monotonic() - began < 20 and child.exit_code == -9
