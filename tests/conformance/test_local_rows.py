"""The local provider's job rows: the table is the queue, so each row says what ran, when and how it ended.

The behaviours themselves are the suite's, over every provider; these are the
columns the board and operators read on local (moved from test_local_provider.py
and test_tasks.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import dramatiq
import psycopg
import pytest

from docjobs import jobs
from docjobs.runtime import Runtime
from tests.conftest import job_row, wait_for
from tests.support import actors

#: The delay of the delayed job, and how late its run_at may be set (the send's own time).
DELAY = timedelta(milliseconds=800)
DELAY_SLACK = timedelta(milliseconds=100)


@pytest.fixture
def url(pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str) -> str:
    """The database of a local runtime whose worker runs."""
    start_worker(pg_runtime.broker)
    return database_url


def ended(url: str, job_id: str) -> dict[str, object]:
    """The job's row once it completed or failed."""
    row: dict[str, object] = wait_for(
        lambda: (r := job_row(url, job_id))["status"] in ("COMPLETED", "FAILED") and r
    )
    return row


def test_a_completed_job_s_row_says_what_ran_and_when(url: str) -> None:
    message = actors.record_job.send(key="once")
    row = ended(url, message.message_id)
    assert ("COMPLETED", "test.record", "Record") == (row["status"], row["actor"], row["name"])
    assert {"key": "once", "documentId": 0} == row["payload"]
    assert 1 == row["attempts"]
    assert row["locked_by"] is None and row["lease_until"] is None
    assert row["submitted_at"] <= row["started_at"] <= row["completed_at"]  # type: ignore[operator]


def test_a_delayed_job_s_row_runs_at_the_delay_after_its_send(url: str) -> None:
    message = jobs.trigger("test.record", {"key": "later"}, delay=DELAY)
    row = job_row(url, message.message_id)
    assert DELAY - DELAY_SLACK / 10 <= row["run_at"] - row["submitted_at"] <= DELAY + DELAY_SLACK
    assert ended(url, message.message_id)["started_at"] >= row["run_at"]


def test_a_failed_job_s_row_keeps_its_retries_error_and_traceback(url: str) -> None:
    message = actors.fail_job.send(key="doomed")
    row = ended(url, message.message_id)
    assert ("FAILED", 3, 4) == (row["status"], row["retried"], row["attempts"])
    assert "ValueError: doomed fails every time" == row["last_error"]
    assert "Traceback (most recent call last)" in str(row["last_traceback"])
    assert "fail_job" in str(row["last_traceback"])
    assert row["completed_at"] is not None


def test_a_job_that_completed_on_its_retry_keeps_the_error_it_had(url: str) -> None:
    message = actors.fail_once_job.send(key="flaky")
    row = ended(url, message.message_id)
    assert ("COMPLETED", 1) == (row["status"], row["retried"])
    assert "RuntimeError: first attempt fails" == row["last_error"]
    assert row["last_retried_at"] is not None


def test_a_retried_job_s_task_rows_keep_each_task_s_result(url: str) -> None:
    message = actors.tasks_job.send(key="steps", fail_after_first=True)
    row = ended(url, message.message_id)
    assert ("COMPLETED", 2) == (row["status"], row["attempts"])
    with psycopg.connect(url) as conn:
        tasks = conn.execute(
            "SELECT name, status, result FROM background_job_task WHERE job_id = %s ORDER BY name",
            (message.message_id,),
        ).fetchall()
    assert [("first", "COMPLETED", {"value": 41}), ("second", "COMPLETED", None)] == tasks


def test_a_job_whose_task_failed_for_good_names_the_task(url: str) -> None:
    message = actors.task_fails_job.send(key="bad-step")  # the actor allows 10 retries
    row = ended(url, message.message_id)
    assert ("FAILED", 4) == (row["status"], row["attempts"])
    assert str(row["last_error"]).startswith("TaskExceededRetries: task 'always-fails'")
