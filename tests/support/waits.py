"""Waits on what a test can observe, so that no test sleeps hoping something has happened."""

from __future__ import annotations

import psycopg

from docjobs.runtime import Runtime
from tests.conftest import job_row, wait_for
from tests.support import actors

SETTLE_KEY = "settle"


def settle_local_consumer(current: Runtime, database_url: str, timeout: float = 10.0) -> None:
    """Run one job through ``current``'s own worker and wait until it shows COMPLETED.

    A local send wakes the process's consumer of the default queue; it writes the job's
    outcome in the statement that claims again, so once the row is COMPLETED that consumer
    has claimed and sleeps until its next wake-up or poll: a job stored after this call
    runs only if something wakes it.
    """
    message = actors.record_job.message(key=SETTLE_KEY)
    current.broker.enqueue(message)
    wait_for(lambda: job_row(database_url, message.message_id)["status"] == "COMPLETED", timeout)
    # Leave the tables as the test made them: it may count their rows.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM test_event WHERE key = %s", (SETTLE_KEY,))
        conn.execute("DELETE FROM background_job WHERE id = %s", (message.message_id,))
