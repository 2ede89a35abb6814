"""The local worker's per-batch statement and per-job work, against a real PostgreSQL (issue 21).

One statement writes a batch of acks and claims the next jobs. Its acks travel as one
JSON document: psycopg adapted four arrays element by element, in Python, every batch.
The claimed rows' JSON columns come back as text and are decoded by docjobs; a job's
payload is validated once when it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import dramatiq
import psycopg
import pytest

from docjobs import jobs
from docjobs.db import sql
from docjobs.db.claims import Claim, Done, Ran
from docjobs.runtime import Runtime
from tests.conftest import job_row, wait_for
from tests.support import actors
from tests.support.queries import watch_queries

#: How long the acked runs below lasted, by the worker's clock.
RUN_SECONDS = 0.25


def claim(current: Runtime, done: list[Done], limit: int) -> list[dict[str, Any]]:
    assert current.store is not None
    with current.store.database.connection() as conn:
        return current.store.claims.complete_and_claim(
            conn, queue="default", done=done, limit=limit, worker="test-worker", lease_seconds=30
        )


def test_a_batch_of_acks_goes_out_as_one_json_document_and_stays_fenced(
    pg_runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs.trigger_many("test.record", [{"key": f"k{number}", "documentId": number} for number in range(3)])
    first, second, third = claim(pg_runtime, [], 3)
    assert [{"key": "k0", "documentId": 0}, [], {}] == [first["payload"], first["args"], first["options"]]

    sent: list[Mapping[str, Any]] = []

    def seen(query: sql.Query, values: Mapping[str, Any]) -> None:
        if query.name == "job_complete_and_claim":
            sent.append(values)

    watch_queries(monkeypatch, seen)
    began = time.monotonic()
    time.sleep(RUN_SECONDS)  # the jobs' run, after their claim
    ran = Ran(began, time.monotonic())
    stale = Done(Claim(first["id"], first["attempts"] + 1), ran)  # an attempt that no longer holds it
    claim(pg_runtime, [stale, *(Done(Claim(row["id"], row["attempts"]), ran) for row in (second, third))], 0)

    (values,) = sent
    arrays = [name for name, value in values.items() if isinstance(value, list | tuple)]
    assert [] == arrays, "psycopg adapts an array element by element: send one JSON document"
    assert "PROCESSING" == job_row(database_url, first["id"])["status"]
    for row in (second, third):
        written = job_row(database_url, row["id"])
        assert "COMPLETED" == written["status"]
        # Its run, by the worker's clock (not the claim's or the write's time).
        assert RUN_SECONDS - 0.01 <= (written["completed_at"] - written["started_at"]).total_seconds() < 1.0


def test_a_claimed_payload_keeps_integers_beyond_64_bits(pg_runtime: Runtime, database_url: str) -> None:
    # A send refuses them today; a row written otherwise (an older version, by hand) may hold one.
    big = 2**70 + 1  # a float would round it
    message = jobs.trigger("test.record", {"key": "big"})
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE background_job SET payload = jsonb_set(payload, '{documentId}', %s::jsonb) WHERE id = %s",
            (str(big), message.message_id),
        )
    (row,) = claim(pg_runtime, [], 1)
    assert big == row["payload"]["documentId"]
    assert isinstance(row["payload"]["documentId"], int)


def test_a_payload_is_validated_once_per_run(
    pg_runtime: Runtime,
    start_worker: Callable[..., dramatiq.Worker],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    validated: list[object] = []
    model = actors.record_job.payload_model

    class Counted(model):  # type: ignore[misc, valid-type]
        @classmethod
        def model_validate(cls, obj: Any, **options: Any) -> Any:
            validated.append(obj)
            return super().model_validate(obj, **options)

    messages = [actors.record_job.send(key=f"once{number}") for number in range(3)]
    monkeypatch.setattr(actors.record_job, "payload_model", Counted)
    start_worker(pg_runtime.broker)
    for message in messages:
        wait_for(lambda m=message: job_row(database_url, m.message_id)["status"] == "COMPLETED")
    assert 3 == len(validated)
