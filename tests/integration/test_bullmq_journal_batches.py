"""A bullmq process moves its own history journal entries without decoding them again.

Issue 21 (bullmq enqueue and drain): each history batch goes to the Redis journal
as JSON and is, most often, moved into PostgreSQL by the same process a moment
later; reading it back (JSON, then five ISO times per event into datetimes) cost
~1.5 us per event, a tenth of the history thread's round, in every sender and
worker. The process keeps the batches it pushed until its next drains and applies
those as they are; an entry of another process is decoded as before. Checked over
sends, a worker's runs (its entries go with the acks) and a retried attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dramatiq
import psycopg
import pytest

from docjobs.brokers import journal as journal_format
from docjobs.brokers.bullmq import journal as journal_module
from docjobs.brokers.bullmq.broker import BullmqBroker
from docjobs.runtime import Runtime
from tests.conftest import provider_overrides, wait_for
from tests.support import actors


@pytest.fixture
def bullmq(request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime(**provider_overrides(request, "bullmq"))


def _rows(url: str, ids: list[str]) -> dict[str, tuple[str, int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, status, attempts FROM background_job WHERE id = ANY(%s)", (ids,)
        ).fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


def _foreign_event(job_id: str) -> dict[str, Any]:
    """A PENDING event as another process's history writes it."""
    now = datetime.now(UTC)
    return {
        "id": job_id, "queue": "default", "actor": "test.record", "name": "Record", "status": "PENDING",
        "payload": '{"key":"foreign"}', "args": "[]", "options": "{}", "retried": 0, "attempts": 0,
        "max_retries": 0, "run_at": now, "at": now, "submitted_at": now, "started_at": None,
        "completed_at": None, "last_error": None, "last_traceback": None,
    }  # fmt: skip


def test_own_journal_entries_are_moved_without_decoding_and_others_are_decoded(
    bullmq: Runtime,
    database_url: str,
    start_worker: Callable[..., dramatiq.Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history, broker = bullmq.history, bullmq.broker
    assert history is not None and isinstance(broker, BullmqBroker) and broker.journal is not None
    decoded: list[bytes] = []
    decode = journal_module.decode

    def counting(entry: bytes) -> Any:
        decoded.append(entry)
        return decode(entry)

    monkeypatch.setattr(journal_module, "decode", counting)
    sent = [actors.record_job.send(key=f"batch-{index}").message_id for index in range(3)]
    sent.append(actors.fail_once_job.send(key="batch-retried").message_id)
    history.flush()
    assert {job_id: ("PENDING", 0) for job_id in sent} == _rows(database_url, sent)

    start_worker(broker, threads=2)
    done = {job_id: ("COMPLETED", 1) for job_id in sent[:3]} | {sent[3]: ("COMPLETED", 2)}
    wait_for(lambda: history.flush() or _rows(database_url, sent) == done)
    with psycopg.connect(database_url) as conn:
        attempts = conn.execute(
            "SELECT attempt, outcome FROM background_job_attempt WHERE job_id = %s", (sent[3],)
        ).fetchall()
    assert [(1, "retried")] == attempts
    assert [] == decoded  # every entry was this process's own

    # Another process's entry (pushed straight to the list) is read the way it always was.
    foreign = journal_format.encode([_foreign_event("foreign-job")], [])
    broker.client.rpush(broker.journal.key, foreign)
    history.flush()
    assert [foreign] == decoded
    assert {"foreign-job": ("PENDING", 0)} == _rows(database_url, ["foreign-job"])
    assert 0 == broker.journal.pending()
