"""The LISTEN connection while PostgreSQL is down: start-up's backoff, one log line per attempt."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace

import psycopg
import pytest

from docjobs.brokers.local.wakeups import Listener

REFUSED = (
    'connection failed: connection to server at "127.0.0.1", port 5432 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?"
)
ATTEMPTS = 7


class CountedStop(threading.Event):
    """The listener's stop event: records each wait, and stops it after ``ATTEMPTS`` of them."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        if len(self.waits) >= ATTEMPTS:
            self.set()
        return self.is_set()


def test_a_database_that_stays_down_is_retried_with_growing_waits_and_one_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refuse() -> None:
        raise psycopg.OperationalError(REFUSED)

    store = SimpleNamespace(database=SimpleNamespace(connect_listener=refuse))
    listener = Listener(store, lambda queue: None)  # type: ignore[arg-type]  # only its database is used
    stop = CountedStop()
    listener._stopping = stop
    with caplog.at_level(logging.WARNING, logger="docjobs.brokers.local.wakeups"):
        listener._run()
    # Before: a line and a 1 s wait per attempt, for ever (45 lines in 45 s).
    assert [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0] == stop.waits
    assert [
        'The LISTEN connection failed (connection failed: connection to server at "127.0.0.1", port 5432 '
        f"failed: Connection refused); reconnecting in {delay:g} s."
        for delay in stop.waits
    ] == [record.getMessage() for record in caplog.records]


class DroppedConnection:
    """A LISTEN connection that opens, then drops (the server went away)."""

    def __enter__(self) -> DroppedConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def notifies(self, timeout: float) -> list[object]:
        raise psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")


def test_the_waits_start_again_from_the_first_after_the_listener_was_connected() -> None:
    outcomes = iter(["refused", "refused", "connects", "refused", "refused", "refused", "refused"])
    woken: list[str | None] = []

    def connect() -> DroppedConnection:
        if next(outcomes) == "refused":
            raise psycopg.OperationalError(REFUSED)
        return DroppedConnection()

    store = SimpleNamespace(
        database=SimpleNamespace(connect_listener=connect), queues=SimpleNamespace(listen=lambda conn: None)
    )
    listener = Listener(store, woken.append)  # type: ignore[arg-type]  # a stand-in store
    stop = CountedStop()
    listener._stopping = stop
    listener._run()
    assert [0.5, 1.0, 0.5, 1.0, 2.0, 4.0, 8.0] == stop.waits
    assert [None] == woken  # on reconnecting, every consumer looks again
