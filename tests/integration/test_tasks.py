"""run_task: memoised steps with the reference's task-row semantics."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import dramatiq
import psycopg
import pytest

from docjobs import errors, run_task
from docjobs.runtime import Runtime
from docjobs.tasks import task_id
from tests.conftest import events, job_row, wait_for
from tests.support import actors


def test_task_ids_follow_the_reference_scheme() -> None:
    digest = hashlib.sha256(b"seal-document").hexdigest()
    assert f"task-{digest}--job-1" == task_id("seal-document", "job-1")


def test_a_retried_job_skips_the_tasks_it_completed(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    start_worker(pg_runtime.broker)
    message = actors.tasks_job.send(key="steps", fail_after_first=True)
    wait_for(lambda: job_row(database_url, message.message_id)["status"] == "COMPLETED")
    kinds = [event["kind"] for event in events(database_url, "steps")]
    assert ["first", "second:42"] == kinds  # the first step ran once, its result was reused
    assert 2 == job_row(database_url, message.message_id)["attempts"]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT name, status, result FROM background_job_task WHERE job_id = %s ORDER BY name",
            (message.message_id,),
        ).fetchall()
    assert [("first", "COMPLETED", {"value": 41}), ("second", "COMPLETED", None)] == rows


def test_a_task_that_fails_three_times_fails_the_job_for_good(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    start_worker(pg_runtime.broker)
    message = actors.task_fails_job.send(key="bad-step")  # the actor allows 10 retries
    row = wait_for(lambda: (r := job_row(database_url, message.message_id))["status"] == "FAILED" and r)
    assert 3 == len(events(database_url, "bad-step"))
    assert 4 == row["attempts"]
    assert row["last_error"].startswith("TaskExceededRetries: task 'always-fails'")


def test_run_task_outside_a_job_is_an_error(pg_runtime: Runtime) -> None:
    with pytest.raises(errors.TaskOutsideJob):
        run_task("nope", lambda: 1)


def test_a_job_row_made_by_its_first_task_reads_like_any_other(
    pg_runtime: Runtime, database_url: str
) -> None:
    # On bullmq and inngest a job's first task may run before its history is written.
    store = pg_runtime.store
    assert store is not None
    store.task_get_or_create(task_id="task-early", job_id="early", actor="test.record", name="step")
    (progress,) = store.get_many(["early"])
    assert "PROCESSING" == progress["status"]
    row = job_row(database_url, "early")  # every column loads
    assert row["updated_at"] < datetime.now(UTC)  # any recorded event is newer and replaces it
