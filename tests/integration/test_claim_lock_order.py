"""A batch statement writes its acks before it claims: it never waits while holding a claim (issue 21).

A claim (``FOR UPDATE SKIP LOCKED``) that meets a job claimed since its snapshot locks the
job's latest version before it finds the job no longer PENDING, and keeps that lock until
it commits. When that job was already acked in another process, that process's batch
waits for the lock. Under ``make load`` two such batches waited on each other (each had
claimed first, then written its acks): a deadlock every few minutes, broken by PostgreSQL
after a second. A batch that writes its acks first holds no lock while it waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from docjobs.db.claims import Claim, Done, Ran
from docjobs.runtime import Runtime
from tests.conftest import job_row, wait_for

WORKER = "acking-worker"


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    """Closes the test's connections however it ends."""
    with ExitStack() as connections:
        yield connections


def send(database_url: str, job_id: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO background_job (id, actor, name) VALUES (%s, 'test.record', 'Record')", (job_id,)
        )


def waiting_on_a_lock(database_url: str, application: str) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            (application,),
        ).fetchone()
    return bool(row and row[0])


def test_a_batch_waiting_to_write_its_acks_holds_no_claim(
    pg_runtime: Runtime, database_url: str, stack: ExitStack
) -> None:
    store = pg_runtime.store
    assert store is not None
    send(database_url, "acked")
    with store.database.connection() as conn:
        (held,) = store.claims.complete_and_claim(
            conn, queue="default", done=[], limit=1, worker=WORKER, lease_seconds=30
        )
    send(database_url, "next")
    # Another process's claim keeps a lock on the acked job (see the module's docstring).
    other = stack.enter_context(psycopg.connect(database_url))
    other.execute("SELECT id FROM background_job WHERE id = 'acked' FOR UPDATE")
    claimed: list[Any] = []
    batch = stack.enter_context(
        psycopg.connect(database_url, autocommit=True, application_name="test-batch", row_factory=dict_row)
    )

    def write_acks_and_claim() -> None:
        now = time.monotonic()
        done = [Done(Claim(held["id"], held["attempts"]), Ran(now, now))]
        claimed.extend(
            store.claims.complete_and_claim(
                batch, queue="default", done=done, limit=1, worker=WORKER, lease_seconds=30
            )
        )

    thread = threading.Thread(target=write_acks_and_claim)
    thread.start()
    try:
        wait_for(lambda: waiting_on_a_lock(database_url, "test-batch"))
        with psycopg.connect(database_url) as probe:
            try:
                probe.execute("SELECT id FROM background_job WHERE id = 'next' FOR UPDATE NOWAIT")
            except psycopg.errors.LockNotAvailable:
                pytest.fail("the batch claimed the next job before writing its acks, and waits holding it")
    finally:
        other.rollback()
        thread.join(10)
    assert not thread.is_alive()
    assert ["next"] == [row["id"] for row in claimed]
    assert "COMPLETED" == job_row(database_url, "acked")["status"]
