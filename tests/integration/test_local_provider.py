"""The local provider against a real PostgreSQL: enqueue, run, retry, delay, dedupe."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import dramatiq
import psycopg
import pytest

from docjobs import db, errors, jobs, runtime
from docjobs.runtime import Runtime
from tests.conftest import events, job_row, wait_for
from tests.support import actors


def completed(url: str, job_id: str) -> bool:
    return job_row(url, job_id)["status"] == "COMPLETED"


def test_a_sent_job_runs_once_and_is_completed(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    start_worker(pg_runtime.broker)
    message = actors.record_job.send(key="once")
    wait_for(lambda: completed(database_url, message.message_id))
    assert ["ran"] == [event["kind"] for event in events(database_url, "once")]
    row = job_row(database_url, message.message_id)
    assert "test.record" == row["actor"]
    assert "Record" == row["name"]
    assert {"key": "once", "documentId": 0} == row["payload"]
    assert 1 == row["attempts"]
    assert row["locked_by"] is None and row["lease_until"] is None
    assert row["submitted_at"] <= row["started_at"] <= row["completed_at"]


def test_trigger_takes_the_camel_case_payload(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    start_worker(pg_runtime.broker)
    message = jobs.trigger("test.record", {"key": "camel", "documentId": 73})
    wait_for(lambda: completed(database_url, message.message_id))
    assert 73 == job_row(database_url, message.message_id)["payload"]["documentId"]


def test_an_enqueue_inside_a_transaction_is_invisible_until_commit(
    pg_runtime: Runtime, database_url: str
) -> None:
    with db.transaction() as conn:
        message = jobs.trigger("test.record", {"key": "tx"}, conn=conn)
        with psycopg.connect(database_url) as other:
            assert (
                other.execute("SELECT 1 FROM background_job WHERE id = %s", (message.message_id,)).fetchone()
                is None
            )
    assert "PENDING" == job_row(database_url, message.message_id)["status"]


def test_a_rolled_back_transaction_enqueues_nothing(pg_runtime: Runtime, database_url: str) -> None:
    sent: list[str] = []
    with pytest.raises(RuntimeError, match="roll back"), db.transaction() as conn:
        sent.append(jobs.trigger("test.record", {"key": "rolled-back"}, conn=conn).message_id)
        raise RuntimeError("roll back")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM background_job").fetchone() == (0,)
    assert sent


def test_a_committed_transactional_job_runs(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    start_worker(pg_runtime.broker)
    with db.transaction() as conn:
        message = jobs.trigger("test.record", {"key": "tx-run"}, conn=conn)
    wait_for(lambda: completed(database_url, message.message_id))


def test_a_bad_payload_is_refused_at_send_and_nothing_is_enqueued(
    pg_runtime: Runtime, database_url: str
) -> None:
    with pytest.raises(errors.PayloadError) as raised:
        jobs.trigger("test.record", {"key": "x", "documentId": "seventy-three"})
    assert "documentId" == raised.value.field
    with pytest.raises(errors.PayloadError, match="key: Field required"):
        actors.record_job.send()  # type: ignore[call-arg]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM background_job").fetchone() == (0,)


def test_an_unknown_job_id_is_refused(pg_runtime: Runtime) -> None:
    with pytest.raises(errors.ActorNotFound):
        jobs.trigger("test.nope", {})


def test_a_second_trigger_with_the_same_id_enqueues_nothing(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    first = jobs.trigger("test.record", {"key": "dedupe"}, id="doc-73-seal")
    second = jobs.trigger("test.record", {"key": "dedupe-again"}, id="doc-73-seal")
    with db.transaction() as conn:
        jobs.trigger("test.record", {"key": "dedupe-tx"}, id="doc-73-seal", conn=conn)
    assert "doc-73-seal" == first.message_id == second.message_id
    start_worker(pg_runtime.broker)
    wait_for(lambda: completed(database_url, "doc-73-seal"))
    assert ["dedupe"] == [event["key"] for event in events(database_url)]


def test_a_delayed_job_does_not_start_before_its_time(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    start_worker(pg_runtime.broker)
    message = jobs.trigger("test.record", {"key": "later"}, delay=timedelta(milliseconds=800))
    row = job_row(database_url, message.message_id)
    assert timedelta(milliseconds=790) <= row["run_at"] - row["submitted_at"] <= timedelta(milliseconds=900)
    wait_for(lambda: completed(database_url, message.message_id))
    (ran,) = events(database_url, "later")
    assert ran["at"] >= row["run_at"]


def test_dramatiq_delays_in_milliseconds_work_too(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    start_worker(pg_runtime.broker)
    message = actors.record_job.send_with_options(kwargs={"key": "ms"}, delay=300)
    row = job_row(database_url, message.message_id)
    assert row["run_at"] - row["submitted_at"] >= timedelta(milliseconds=300)
    wait_for(lambda: completed(database_url, message.message_id))


def test_a_failing_job_is_retried_with_growing_backoff_then_failed_with_its_traceback(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    start_worker(pg_runtime.broker)
    message = actors.fail_job.send(key="doomed")
    row = wait_for(lambda: (r := job_row(database_url, message.message_id))["status"] == "FAILED" and r)
    runs = events(database_url, "doomed")
    assert 4 == len(runs)  # the reference's local attempt count
    assert 3 == row["retried"]
    assert 4 == row["attempts"]
    assert "ValueError: doomed fails every time" == row["last_error"]
    assert "Traceback (most recent call last)" in row["last_traceback"]
    assert "fail_job" in row["last_traceback"]
    assert row["completed_at"] is not None
    gaps = [
        (later["at"] - earlier["at"]).total_seconds() for earlier, later in zip(runs, runs[1:], strict=False)
    ]
    # min_backoff 20 ms doubling with jitter: at least 20, 40, 80 ms.
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04 and gaps[2] >= 0.08


def test_a_job_that_fails_once_completes_on_the_retry(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    start_worker(pg_runtime.broker)
    message = actors.fail_once_job.send(key="flaky")
    wait_for(lambda: completed(database_url, message.message_id))
    row = job_row(database_url, message.message_id)
    assert 2 == len(events(database_url, "flaky"))
    assert 1 == row["retried"]
    assert "RuntimeError: first attempt fails" == row["last_error"]
    assert row["last_retried_at"] is not None


def test_a_payload_that_no_longer_validates_fails_without_retry(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    # A job stored by an older version whose payload the current model rejects.
    message = dramatiq.Message(
        queue_name="default", actor_name="test.record", args=(), kwargs={"documentId": "x"}, options={}
    )
    pg_runtime.broker.enqueue(message)
    start_worker(pg_runtime.broker)
    row = wait_for(lambda: (r := job_row(database_url, message.message_id))["status"] == "FAILED" and r)
    assert 1 == row["attempts"]
    assert row["last_error"].startswith("PayloadError: test.record: key: Field required")


def test_trigger_many_enqueues_everything_in_one_go(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    messages = jobs.trigger_many("test.record", [{"key": f"bulk-{i}"} for i in range(500)])
    assert 500 == len({message.message_id for message in messages})
    start_worker(pg_runtime.broker, threads=8)
    pg_runtime.broker.join("default", timeout=30_000)
    assert 500 == len(events(database_url))


def test_trigger_many_with_ids_skips_the_ones_that_exist(pg_runtime: Runtime, database_url: str) -> None:
    jobs.trigger("test.record", {"key": "a"}, id="bulk-a")
    jobs.trigger_many("test.record", [{"key": "a2"}, {"key": "b"}], ids=["bulk-a", "bulk-b"])
    assert {"key": "a", "documentId": 0} == job_row(database_url, "bulk-a")["payload"]
    assert "b" == job_row(database_url, "bulk-b")["payload"]["key"]


def test_trigger_many_with_one_bad_payload_enqueues_nothing(pg_runtime: Runtime, database_url: str) -> None:
    with pytest.raises(errors.PayloadError, match="payload 1: key: "):
        jobs.trigger_many("test.record", [{"key": "fine"}, {"key": ["not", "a", "string"]}])
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM background_job").fetchone() == (0,)


def test_trigger_many_inside_a_transaction_rolls_back_with_it(pg_runtime: Runtime, database_url: str) -> None:
    with pytest.raises(RuntimeError), db.transaction() as conn:
        jobs.trigger_many("test.record", [{"key": "x"}, {"key": "y"}], conn=conn)
        raise RuntimeError("roll back")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM background_job").fetchone() == (0,)


def test_a_job_whose_wake_ups_are_all_lost_still_runs_by_polling(
    make_runtime: Callable[..., Runtime], start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    # No LISTEN, a self-trigger URL nothing answers, and a sender that is not the
    # consumer's process: only the poll can find the job.
    consumer = make_runtime(NEXT_PRIVATE_JOBS_LISTEN="false", NEXT_PRIVATE_JOBS_POLL_INTERVAL_SECONDS="0.5")
    start_worker(consumer.broker)
    time.sleep(0.2)  # let the consumer finish its first (empty) claim and go to sleep
    sender = runtime.build(consumer.settings)
    try:
        sender.broker.declare_actor(actors.record_job)
        message = actors.record_job.message(key="lost")
        sender.broker.enqueue(message)
        sent_at = time.monotonic()
        wait_for(lambda: completed(database_url, message.message_id), timeout=5)
        assert time.monotonic() - sent_at < 2.0
    finally:
        sender.close()
