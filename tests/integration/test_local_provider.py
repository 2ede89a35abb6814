"""The local provider against a real PostgreSQL: enqueue, run, retry, delay, dedupe."""

from __future__ import annotations

import time
from collections.abc import Callable

import dramatiq
import psycopg
import pytest
from dramatiq import MessageProxy

from docjobs import db, errors, jobs, runtime
from docjobs.brokers.local.broker import LocalBroker
from docjobs.runtime import Runtime
from tests.conftest import events, job_row, wait_for
from tests.support import actors
from tests.support.waits import settle_local_consumer


def completed(url: str, job_id: str) -> bool:
    return job_row(url, job_id)["status"] == "COMPLETED"


def test_trigger_takes_the_camel_case_payload(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    start_worker(pg_runtime.broker)
    message = jobs.trigger("test.record", {"key": "camel", "documentId": 73})
    wait_for(lambda: completed(database_url, message.message_id))
    assert 73 == job_row(database_url, message.message_id)["payload"]["documentId"]


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


def test_a_payload_that_no_longer_validates_fails_without_retry(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    # A job stored by an older version whose payload the current model rejects (a send
    # of that payload today is refused before it is stored).
    message = jobs.trigger("test.record", {"key": "k"})
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE background_job SET payload = %s WHERE id = %s",
            ('{"documentId": "x"}', message.message_id),
        )
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
    settle_local_consumer(consumer, database_url)  # from now on it sleeps until the poll
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


#: A message_timestamp far in the past (ms since the epoch), so no insert time can pass for it.
BUILT_AT_MS = 1_000_000_000_000


def claim_all(broker: LocalBroker, count: int) -> list[MessageProxy]:
    """Claim ``count`` jobs of the default queue through a consumer, then give them back."""
    consumer = broker.consume("default", prefetch=count, timeout=200)
    claimed: list[MessageProxy] = []
    deadline = time.monotonic() + 5
    try:
        while len(claimed) < count and time.monotonic() < deadline:
            message = next(consumer)
            if message is not None:
                claimed.append(message)
        consumer.requeue(claimed)
    finally:
        consumer.close()
    return claimed


@pytest.mark.parametrize(
    "path", ["enqueue", "enqueue_in_transaction", "enqueue_many", "enqueue_many_by_copy"]
)
def test_every_insert_keeps_the_message_timestamp_that_max_age_counts_from(
    pg_runtime: Runtime, path: str
) -> None:
    broker = pg_runtime.broker
    assert isinstance(broker, LocalBroker)
    built = [
        actors.record_job.message(key=f"built-{index}").copy(message_timestamp=BUILT_AT_MS + index)
        for index in range(2)
    ]
    if path == "enqueue":
        for message in built:
            broker.enqueue(message)
    elif path == "enqueue_in_transaction":
        with db.transaction() as conn:
            for message in built:
                broker.enqueue(message, conn=conn)
    else:
        broker.enqueue_many(built, deduplicate=path == "enqueue_many")
    claimed = claim_all(broker, len(built))
    assert {(m.message_id, m.message_timestamp) for m in built} == {
        (m.message_id, m.message_timestamp) for m in claimed
    }


def test_a_job_stored_before_message_timestamps_were_kept_counts_from_its_insert(
    pg_runtime: Runtime, database_url: str
) -> None:
    message = actors.record_job.message(key="old-row").copy(message_timestamp=BUILT_AT_MS)
    pg_runtime.broker.enqueue(message)
    with psycopg.connect(database_url) as conn:
        # As migration 0007 leaves the rows it finds.
        conn.execute("UPDATE background_job SET message_ts_ms = NULL WHERE id = %s", (message.message_id,))
    (claimed,) = claim_all(pg_runtime.broker, 1)
    submitted_ms = job_row(database_url, message.message_id)["submitted_at"].timestamp() * 1000
    assert abs(claimed.message_timestamp - submitted_ms) < 1
