"""A batch statement PostgreSQL rolled back (a deadlock) is run again, not handled as an outage.

Under ``make load`` two processes' batches of acks and claims deadlocked every few minutes.
PostgreSQL broke each after its 1 s deadlock timeout, and the consumer treated the error as
the database being unreachable: it stopped, and Dramatiq restarted it after a back-off, while
its jobs waited (issue 21).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast

import psycopg
import pytest
from dramatiq.errors import BrokerConnectionError

from docjobs.brokers.local.consumer import BATCH_TRIES, LocalConsumer
from docjobs.brokers.local.consumers import ClaimSettings, ConsumerRegistry, HeldJobs
from docjobs.db.claims import Claim, Done, Ran
from tests.support.fakes import claimed_row


class RollingBackClaims:
    """A claim store whose first ``failures`` statements are rolled back by PostgreSQL."""

    def __init__(self, failures: int, error: type[psycopg.OperationalError]) -> None:
        self.failures = failures
        self.error = error
        self.calls: list[list[Done]] = []

    def complete_and_claim(
        self, conn: object, *, done: list[Done], limit: int, **_: Any
    ) -> list[dict[str, Any]]:
        self.calls.append(list(done))
        if len(self.calls) <= self.failures:
            raise self.error("deadlock detected")
        return [claimed_row(number) for number in range(limit)]


def consumer_over(claims: RollingBackClaims) -> LocalConsumer:
    @contextmanager
    def connection() -> Iterator[None]:
        yield None

    store = SimpleNamespace(database=SimpleNamespace(connection=connection), claims=claims)
    return LocalConsumer(
        cast(Any, store),
        "default",
        4,
        timeout_ms=10,
        consumers=ConsumerRegistry(),
        held=HeldJobs(),
        settings=ClaimSettings(worker_id="w", lease_seconds=30, poll_interval_seconds=1, retention_days=1),
    )


ACKED = [Done(Claim("acked-1", 1), Ran(1.0, 2.0)), Done(Claim("acked-2", 1), Ran(1.0, 2.0))]


@pytest.mark.parametrize("error", [psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure])
def test_a_rolled_back_batch_runs_again_with_the_same_acks(error: type[psycopg.OperationalError]) -> None:
    claims = RollingBackClaims(BATCH_TRIES - 1, error)
    consumer = consumer_over(claims)

    rows = consumer._complete_and_claim(list(ACKED), 2)

    assert ["job-0", "job-1"] == [row["id"] for row in rows]
    assert [ACKED] * BATCH_TRIES == claims.calls


def test_a_batch_rolled_back_every_time_keeps_its_acks_and_reports_the_database() -> None:
    claims = RollingBackClaims(BATCH_TRIES, psycopg.errors.DeadlockDetected)
    consumer = consumer_over(claims)

    with pytest.raises(BrokerConnectionError) as raised:
        consumer._complete_and_claim(list(ACKED), 2)

    assert f"claims on default were rolled back {BATCH_TRIES} times in a row: deadlock detected" == str(
        raised.value
    )

    assert BATCH_TRIES == len(claims.calls)
    assert ACKED == consumer._acked  # for close(), or the queue's next consumer


def test_a_lost_connection_is_not_run_again() -> None:
    claims = RollingBackClaims(1, psycopg.OperationalError)
    consumer = consumer_over(claims)

    with pytest.raises(BrokerConnectionError, match="the database is unreachable"):
        consumer._complete_and_claim(list(ACKED), 2)

    assert 1 == len(claims.calls)


def test_an_unreachable_database_is_named_once() -> None:
    """A connection error docjobs raised already is not prefixed a second time (outside trial, issue 22)."""
    import psycopg

    from docjobs.brokers.local.unreachable import database_unreachable

    inner = database_unreachable(psycopg.OperationalError("connection refused"))
    assert "the database is unreachable: connection refused" == str(inner)
    again = database_unreachable(psycopg.OperationalError(str(inner)))
    assert "the database is unreachable: connection refused" == str(again)
