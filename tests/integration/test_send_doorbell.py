"""A standalone local send rings the doorbell in its own INSERT (issue 21: single enqueue).

The doorbell's NOTIFY used to go out from a thread, in a transaction of its own (a
borrow, a statement, an xid and a commit record: ~100-200 us of CPU per ring). A send
due a ring now carries it: the NOTIFY is delivered at the send's commit, so a listener
sees the job, and the thread stays idle. Sends within the interval still get a ring:
the next send due one carries it, or the thread sends it after two intervals.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from docjobs.brokers.local.broker import LocalBroker
from docjobs.brokers.local.wakeups import Doorbell
from docjobs.db.queues import QueueStore
from docjobs.runtime import Runtime
from tests.support import actors
from tests.support.fakes import ManualClock

#: The longest a test waits for a notification (a poll interval is 1 s).
DEADLINE_SECONDS = 5.0
#: The doorbell's interval in the burst test (its own clock: only the test moves it).
INTERVAL_SECONDS = 1 / 128


@pytest.fixture
def listener(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("LISTEN docjobs_jobs")
        yield conn


@pytest.fixture
def thread_rings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The queues the doorbell's thread rang (a NOTIFY in a transaction of its own)."""
    rung: list[str] = []
    notify = QueueStore.notify

    def counted(store: QueueStore, queue: str, *, conn: psycopg.Connection[Any] | None = None) -> None:
        if conn is None:
            rung.append(queue)
        notify(store, queue, conn=conn)

    monkeypatch.setattr(QueueStore, "notify", counted)
    return rung


def _next_notification(conn: psycopg.Connection[Any]) -> str:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while (left := deadline - time.monotonic()) > 0:
        for notification in conn.notifies(timeout=left, stop_after=1):
            return notification.payload
    raise AssertionError(f"no NOTIFY within {DEADLINE_SECONDS} s")


def _pending(conn: psycopg.Connection[Any], job_id: str) -> bool:
    row = conn.execute("SELECT status FROM background_job WHERE id = %s", (job_id,)).fetchone()
    return row is not None and row[0] == "PENDING"


def test_a_standalone_send_rings_in_its_own_insert_and_the_job_is_there(
    make_runtime: Callable[..., Runtime], listener: psycopg.Connection[Any], thread_rings: list[str]
) -> None:
    make_runtime()
    message = actors.record_job.send(key="rings-itself")

    assert "default" == _next_notification(listener)
    assert _pending(listener, message.message_id)
    assert [] == thread_rings  # before: the doorbell's thread sent it, in its own transaction


def _notifications(conn: psycopg.Connection[Any], count: int) -> list[str]:
    # One generator for all: notifications read together with the last one asked for stay unseen.
    payloads = [n.payload for n in conn.notifies(timeout=DEADLINE_SECONDS, stop_after=count)]
    assert len(payloads) == count, f"{len(payloads)} of {count} NOTIFYs within {DEADLINE_SECONDS} s"
    return payloads


def test_a_burst_rings_in_the_sends_due_a_ring_and_the_thread_only_closes_it(
    make_runtime: Callable[..., Runtime], listener: psycopg.Connection[Any], thread_rings: list[str]
) -> None:
    broker = make_runtime().broker
    assert isinstance(broker, LocalBroker)
    clock = ManualClock()
    doorbell = Doorbell(broker.store, min_interval_seconds=INTERVAL_SECONDS, clock=clock)
    broker.doorbell = broker.announcer.doorbell = doorbell

    first = actors.record_job.send(key="first")  # due: rings in its INSERT
    actors.record_job.send(key="within-1")  # within the interval: asks the thread
    actors.record_job.send(key="within-2")
    clock.now += INTERVAL_SECONDS
    due = actors.record_job.send(key="due")  # due again: carries the ring the others asked for
    assert ["default", "default"] == _notifications(listener, 2)
    assert _pending(listener, first.message_id) and _pending(listener, due.message_id)

    last = actors.record_job.send(key="last")  # within the interval, and no send follows
    assert [] == thread_rings
    clock.now += 2 * INTERVAL_SECONDS
    assert ["default"] == _notifications(listener, 1)  # the thread closes the burst
    assert ["default"] == thread_rings
    assert _pending(listener, last.message_id)
    doorbell.close()
