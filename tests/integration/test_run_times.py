"""A job's recorded run is when its actor ran, not when it was claimed or its outcome written (issue 20).

The board's Duration column, its run-time percentiles and a job's "ran 1.0 s" all
read ``completed_at - started_at`` (and an attempt's ``finished_at - started_at``).
On local, a worker claims jobs ahead of its threads (its prefetch) and writes acks
in batches, up to a poll interval (1 s here) after the job ended; on bullmq the
history is written in the background. Neither delay may count as run time.

Each test sends its jobs before the worker starts, so one claim takes them all and
the order they run in is fixed; the actors record, on the database's clock, when
they ran (``test_event``), and the rows must agree with that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import dramatiq
import psycopg
import pytest

from docjobs.runtime import Runtime
from tests.conftest import events, provider_overrides, wait_for
from tests.support import actors

#: Long enough that the local consumer's next claim (a poll interval, 1 s, after the
#: first) comes before it ends: the acks of the jobs that ran beside it wait for that claim.
BUSY_SECONDS = 1.2
#: The run the brief allows a no-op job (its actor opens one database connection).
NO_OP_RUN = timedelta(milliseconds=200)
#: Rows finish within this of the test's own wait.
ROW_TIMEOUT_SECONDS = 15.0


@pytest.fixture(params=["local", "bullmq"])
def current(request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]) -> Runtime:
    """A runtime on each provider that keeps job rows from a worker (local, bullmq)."""
    return make_runtime(**provider_overrides(request, request.param))


def ended(url: str, job_id: str) -> dict[str, Any]:
    """The job's row once it completed or failed (bullmq's history may write it a little later)."""

    def row() -> dict[str, Any] | None:
        with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
            found = conn.execute("SELECT * FROM background_job WHERE id = %s", (job_id,)).fetchone()
        return found if found is not None and found["status"] in ("COMPLETED", "FAILED") else None

    found: dict[str, Any] = wait_for(row, timeout=ROW_TIMEOUT_SECONDS)
    return found


def event_at(url: str, key: str, kind: str) -> datetime:
    """When the actor of ``key`` recorded ``kind`` (the database's clock)."""
    (found,) = [event["at"] for event in events(url, key) if event["kind"] == kind]
    assert isinstance(found, datetime)
    return found


def attempts_of(url: str, job_id: str, *, count: int) -> list[dict[str, Any]]:
    """The job's ``count`` kept attempts, first first, once all are written."""

    def kept() -> list[dict[str, Any]] | None:
        with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
            found = conn.execute(
                "SELECT * FROM background_job_attempt WHERE job_id = %s ORDER BY attempt", (job_id,)
            ).fetchall()
        return found if len(found) == count else None

    found: list[dict[str, Any]] = wait_for(kept, timeout=ROW_TIMEOUT_SECONDS)
    return found


def run_of(row: dict[str, Any]) -> timedelta:
    run: timedelta = row["completed_at"] - row["started_at"]
    return run


def test_a_no_op_job_records_milliseconds_though_its_ack_is_written_a_second_later(
    current: Runtime, database_url: str, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    busy = actors.sleep_job.send(key="busy", seconds=BUSY_SECONDS)
    no_op = actors.record_job.send(key="no-op")
    start_worker(current.broker, threads=2)
    row = ended(database_url, no_op.message_id)
    ran_at = event_at(database_url, "no-op", "ran")
    assert run_of(row) < NO_OP_RUN
    assert row["started_at"] <= ran_at <= row["completed_at"]
    ended(database_url, busy.message_id)
    if current.settings.provider == "local":
        # The scenario: the ack went out with the next claim, most of a second after the job ended.
        assert row["updated_at"] - row["completed_at"] > timedelta(milliseconds=500)


def test_a_job_that_sleeps_0_3_s_records_0_3_to_0_5_s(
    current: Runtime, database_url: str, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    busy = actors.sleep_job.send(key="busy", seconds=BUSY_SECONDS)
    short = actors.sleep_job.send(key="short", seconds=0.3)
    start_worker(current.broker, threads=2)
    row = ended(database_url, short.message_id)
    assert timedelta(seconds=0.3) <= run_of(row) <= timedelta(seconds=0.5)
    assert row["started_at"] <= event_at(database_url, "short", "started")
    assert event_at(database_url, "short", "finished") <= row["completed_at"]
    ended(database_url, busy.message_id)


def test_a_job_waiting_in_the_prefetch_buffer_behind_a_busy_thread_does_not_count_the_wait(
    current: Runtime, database_url: str, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    busy = actors.sleep_job.send(key="busy", seconds=0.5)
    no_op = actors.record_job.send(key="queued")
    start_worker(current.broker, threads=1)  # claims both: the no-op waits for the one thread
    busy_row, row = ended(database_url, busy.message_id), ended(database_url, no_op.message_id)
    assert event_at(database_url, "busy", "finished") <= row["started_at"]
    assert run_of(row) < NO_OP_RUN
    assert timedelta(seconds=0.5) <= run_of(busy_row) <= timedelta(seconds=0.7)


def test_failed_attempts_record_their_own_runs_not_their_wait_nor_their_write(
    current: Runtime, database_url: str, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    @dramatiq.actor(
        actor_name="test.slow_failure", broker=current.broker, max_retries=1, min_backoff=20, max_backoff=20
    )
    def slow_failure() -> None:
        # Longer than bullmq's history interval: the attempt's start is written before its end.
        time.sleep(0.4)  # the run under test must take this long
        raise ValueError("slow failure")

    actors.sleep_job.send(key="busy", seconds=0.5)
    failing = slow_failure.send()
    start_worker(current.broker, threads=1)  # the failing job waits for the one thread
    row = ended(database_url, failing.message_id)
    assert "FAILED" == row["status"]
    attempts = attempts_of(database_url, failing.message_id, count=2)
    assert [(1, "retried"), (2, "failed")] == [(a["attempt"], a["outcome"]) for a in attempts]
    assert None not in [a["started_at"] for a in attempts]
    # The first attempt waited for the busy job's thread; its run starts when the busy job ended.
    assert event_at(database_url, "busy", "finished") <= attempts[0]["started_at"]
    for attempt in attempts:
        ran = attempt["finished_at"] - attempt["started_at"]
        assert timedelta(seconds=0.4) <= ran <= timedelta(seconds=0.6)
    assert attempts[0]["finished_at"] <= attempts[1]["started_at"]
    assert (attempts[1]["started_at"], attempts[1]["finished_at"]) == (row["started_at"], row["completed_at"])
