"""run_task: memoised steps with the reference's task-row semantics."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from docjobs import errors, run_task
from docjobs.runtime import Runtime
from docjobs.tasks import task_id
from tests.conftest import job_row


def test_task_ids_follow_the_reference_scheme() -> None:
    digest = hashlib.sha256(b"seal-document").hexdigest()
    assert f"task-{digest}--job-1" == task_id("seal-document", "job-1")


def test_run_task_outside_a_job_is_an_error(pg_runtime: Runtime) -> None:
    with pytest.raises(errors.TaskOutsideJob):
        run_task("nope", lambda: 1)


def test_a_job_row_made_by_its_first_task_reads_like_any_other(
    pg_runtime: Runtime, database_url: str
) -> None:
    # On bullmq and inngest a job's first task may run before its history is written.
    store = pg_runtime.store
    assert store is not None
    store.tasks.get_or_create(task_id="task-early", job_id="early", actor="test.record", name="step")
    (progress,) = store.jobs.get_many(["early"])
    assert "PROCESSING" == progress["status"]
    row = job_row(database_url, "early")  # every column loads
    assert row["updated_at"] < datetime.now(UTC)  # any recorded event is newer and replaces it
