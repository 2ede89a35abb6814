"""Leases, heartbeats, the rescuer and fencing: nothing stuck, nothing run twice at once."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import dramatiq
import psycopg
import pytest

from docjobs import jobs, runtime
from docjobs.brokers.local.broker import LocalBroker
from docjobs.runtime import Runtime
from tests.conftest import events, job_row, wait_for
from tests.support import actors


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def database_gone(*args: object, **kwargs: object) -> None:
    """Stands in for a store method while PostgreSQL is away."""
    raise psycopg.OperationalError("connection lost")


def claim_one(broker: LocalBroker) -> object:
    consumer = broker.consume("default", prefetch=1, timeout=2000)
    message = next(consumer)
    assert message is not None
    return consumer, message


def test_an_expired_lease_puts_the_job_back_to_pending_as_a_retry(
    pg_runtime: Runtime, database_url: str
) -> None:
    store = pg_runtime.store
    assert store is not None
    message = actors.record_job.send(key="stuck")
    consumer, claimed = claim_one(pg_runtime.broker)
    assert "PROCESSING" == job_row(database_url, message.message_id)["status"]
    assert [] == store.workers.maintain(stale_worker_seconds=60, retention_days=30, now=later(1))
    rescued = store.workers.maintain(stale_worker_seconds=60, retention_days=30, now=later(31))
    assert [message.message_id] == [job["id"] for job in rescued or []]
    row = job_row(database_url, message.message_id)
    assert "PENDING" == row["status"]
    assert 1 == row["retried"]
    assert row["locked_by"] is None
    assert "stopped heartbeating" in row["last_error"]
    consumer.close()


def test_a_job_that_keeps_killing_its_worker_ends_failed(pg_runtime: Runtime, database_url: str) -> None:
    store = pg_runtime.store
    assert store is not None
    message = actors.record_job.send_with_options(kwargs={"key": "poison"}, max_retries=1)
    for _ in range(2):
        consumer, _claimed = claim_one(pg_runtime.broker)
        store.workers.maintain(stale_worker_seconds=60, retention_days=30, now=later(31))
        consumer.close()
    row = job_row(database_url, message.message_id)
    assert "FAILED" == row["status"]
    assert row["completed_at"] is not None


def test_a_late_ack_from_a_rescued_attempt_changes_nothing(pg_runtime: Runtime, database_url: str) -> None:
    store = pg_runtime.store
    assert store is not None
    broker = pg_runtime.broker
    message = actors.record_job.send(key="fenced")
    first_consumer, first = claim_one(broker)
    store.workers.maintain(stale_worker_seconds=60, retention_days=30, now=later(31))
    second_consumer, second = claim_one(broker)
    first_consumer.ack(first)
    first_consumer.close()  # flushes the stale ack
    row = job_row(database_url, message.message_id)
    assert "PROCESSING" == row["status"]
    assert 2 == row["attempts"]
    second_consumer.ack(second)
    second_consumer.close()
    assert "COMPLETED" == job_row(database_url, message.message_id)["status"]


def test_a_late_retry_or_nack_from_a_rescued_attempt_changes_nothing(
    pg_runtime: Runtime, database_url: str
) -> None:
    store = pg_runtime.store
    assert store is not None
    broker = pg_runtime.broker
    message = actors.record_job.send(key="fenced-nack")
    first_consumer, first = claim_one(broker)
    store.workers.maintain(stale_worker_seconds=60, retention_days=30, now=later(31))
    second_consumer, _second = claim_one(broker)
    broker.enqueue(first, delay=0)  # what the Retries middleware does after a failure
    first.fail()
    first_consumer.nack(first)
    row = job_row(database_url, message.message_id)
    assert "PROCESSING" == row["status"]
    assert row["locked_by"] == broker.worker_id
    first_consumer.close()
    second_consumer.close()


def test_heartbeats_extend_the_leases_of_held_jobs(pg_runtime: Runtime, database_url: str) -> None:
    store = pg_runtime.store
    assert store is not None
    broker = pg_runtime.broker
    message = actors.record_job.send(key="held")
    consumer, _claimed = claim_one(broker)
    before = job_row(database_url, message.message_id)["lease_until"]
    assert [message.message_id] == broker.held()
    store.workers.heartbeat(
        worker=broker.worker_id, held=broker.held(), queues=["default"], concurrency=4, lease_seconds=120
    )
    after = job_row(database_url, message.message_id)["lease_until"]
    assert after - before > timedelta(seconds=80)
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT concurrency FROM worker WHERE id = %s", (broker.worker_id,)
        ).fetchone() == (4,)
    consumer.close()


def test_a_heartbeat_skips_a_held_job_another_statement_is_writing_instead_of_waiting(
    pg_runtime: Runtime, database_url: str
) -> None:
    """An ack in flight (its row locked) and the heartbeat used to lock the worker's rows in
    different orders: under `make load` they deadlocked, and the consumer stalled (issue 21)."""
    store = pg_runtime.store
    assert store is not None
    broker = pg_runtime.broker
    sent = [actors.record_job.send(key=f"beat {n}").message_id for n in range(2)]
    consumer = broker.consume("default", prefetch=2, timeout=2000)
    assert {next(consumer).message_id, next(consumer).message_id} == set(sent)
    free, writing = sent
    leases = {job_id: job_row(database_url, job_id)["lease_until"] for job_id in sent}
    failures: list[BaseException] = []

    def beat() -> None:
        try:
            store.workers.heartbeat(
                worker=broker.worker_id, held=sent, queues=["default"], concurrency=4, lease_seconds=600
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    with psycopg.connect(database_url) as ack_in_flight:
        ack_in_flight.execute("UPDATE background_job SET updated_at = now() WHERE id = %s", (writing,))
        beating = threading.Thread(target=beat, daemon=True)
        beating.start()
        beating.join(10)
        waited = beating.is_alive()
        ack_in_flight.rollback()
    beating.join(10)
    assert not waited, "the heartbeat waited for a row another statement was writing"
    assert [] == failures
    assert job_row(database_url, free)["lease_until"] - leases[free] > timedelta(seconds=500)
    assert job_row(database_url, writing)["lease_until"] == leases[writing]  # extended next beat
    consumer.close()


def test_acks_a_database_outage_kept_from_a_consumer_are_written_by_its_successor(
    pg_runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = pg_runtime.store
    assert store is not None
    broker = pg_runtime.broker
    first = actors.record_job.send(key="ack before the outage")
    second = actors.record_job.send(key="ack after the close")
    consumer = broker.consume("default", prefetch=2, timeout=2000)
    claimed = [next(consumer), next(consumer)]
    consumer.ack(claimed[0])

    monkeypatch.setattr(store.claims, "complete_and_claim", database_gone)
    with pytest.raises(dramatiq.errors.BrokerConnectionError):
        next(consumer)
    with pytest.raises(dramatiq.errors.BrokerConnectionError):
        consumer.close()  # tries once more, fails, and hands the ack over
    monkeypatch.undo()
    # A worker thread that finishes later still acks through the consumer it knew.
    consumer.ack(claimed[1])
    # The jobs ran: their leases are still extended, so nobody runs them again...
    assert {first.message_id, second.message_id} == set(broker.held())
    assert {"PROCESSING"} == {job_row(database_url, m.message_id)["status"] for m in (first, second)}
    # ...until the queue's next consumer writes the acks with its first claim.
    successor = broker.consume("default", prefetch=2, timeout=200)
    assert next(successor) is None
    assert {"COMPLETED"} == {job_row(database_url, m.message_id)["status"] for m in (first, second)}
    assert [] == broker.held()
    successor.close()


def test_a_failure_the_database_missed_keeps_its_lease_until_dramatiq_nacks_again(
    pg_runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = pg_runtime.store
    assert store is not None
    broker = pg_runtime.broker
    message = actors.fail_when_job.send(key="failed in an outage", fail=True)
    consumer, claimed = claim_one(broker)
    claimed.fail()
    claimed.stuff_exception(ValueError("failed in an outage was told to fail"))
    real_fail = store.claims.fail

    monkeypatch.setattr(store.claims, "fail", database_gone)
    with pytest.raises(dramatiq.errors.BrokerConnectionError):
        consumer.nack(claimed)
    # Still held: the heartbeat extends its lease, and the rescuer leaves it alone.
    assert [message.message_id] == broker.held()
    monkeypatch.setattr(store.claims, "fail", real_fail)
    consumer.nack(claimed)  # Dramatiq's retry, once the database is back
    row = job_row(database_url, message.message_id)
    assert ("FAILED", "ValueError: failed in an outage was told to fail") == (
        row["status"],
        row["last_error"],
    )
    assert [] == broker.held()
    consumer.close()


def test_only_one_process_maintains_at_a_time(pg_runtime: Runtime, database_url: str) -> None:
    store = pg_runtime.store
    assert store is not None
    with psycopg.connect(database_url, autocommit=True) as holder, holder.transaction():
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (0x646F636A6F6273,))
        assert store.workers.maintain(stale_worker_seconds=60, retention_days=30) is None
    assert [] == store.workers.maintain(stale_worker_seconds=60, retention_days=30)


def test_retention_deletes_old_finished_jobs_only(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    store = pg_runtime.store
    assert store is not None
    start_worker(pg_runtime.broker)
    done = actors.record_job.send(key="old")
    waiting = jobs.trigger("test.record", {"key": "waiting"}, delay=3600)
    wait_for(lambda: job_row(database_url, done.message_id)["status"] == "COMPLETED")
    store.workers.maintain(stale_worker_seconds=60, retention_days=7, now=later(6 * 86400))
    assert job_row(database_url, done.message_id)
    store.workers.maintain(stale_worker_seconds=60, retention_days=7, now=later(8 * 86400))
    with psycopg.connect(database_url) as conn:
        remaining = [row[0] for row in conn.execute("SELECT id FROM background_job").fetchall()]
    assert [waiting.message_id] == remaining


def test_retention_keeps_up_with_more_than_one_batch(pg_runtime: Runtime, database_url: str) -> None:
    store = pg_runtime.store
    assert store is not None
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO background_job (id, actor, name, status, completed_at) "
            "SELECT 'old-' || n, 'test.record', 'Record', 'COMPLETED', now() - interval '10 days' "
            "FROM generate_series(1, 12000) AS n"
        )
    store.workers.maintain(stale_worker_seconds=60, retention_days=7)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM background_job").fetchone() == (0,)


def test_a_running_worker_registers_and_unregisters_itself(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    worker = start_worker(pg_runtime.broker, threads=3)

    def worker_rows() -> list[tuple[str, int]]:
        with psycopg.connect(database_url) as conn:
            return conn.execute("SELECT id, concurrency FROM worker").fetchall()

    assert [(pg_runtime.broker.worker_id, 3)] == worker_rows()
    worker.stop()
    assert [] == worker_rows()


def test_two_workers_never_run_one_job_at_the_same_time(
    make_runtime: Callable[..., Runtime], start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    first = make_runtime()
    second = runtime.build(first.settings)
    try:
        for actor in (actors.sleep_job, actors.record_job):
            second.broker.declare_actor(actor)
        start_worker(first.broker, threads=4)
        start_worker(second.broker, threads=4)
        jobs.trigger_many("test.sleep", [{"key": f"race-{i}", "seconds": 0.005} for i in range(300)])
        first.broker.join("default", timeout=60_000)
        by_job: dict[str, list[str]] = defaultdict(list)
        pids = set()
        for event in events(database_url):
            by_job[event["job_id"]].append(event["kind"])
            pids.add(event["pid"])
        assert 300 == len(by_job)
        assert all(["started", "finished"] == kinds for kinds in by_job.values())
        with psycopg.connect(database_url) as conn:
            owners = conn.execute("SELECT count(DISTINCT locked_by) FROM background_job").fetchone()
            statuses = conn.execute("SELECT status, count(*) FROM background_job GROUP BY status").fetchall()
        assert owners == (0,)
        assert [("COMPLETED", 300)] == statuses
    finally:
        second.close()


@pytest.mark.parametrize("threads", [1, 8])
def test_a_worker_keeps_at_most_its_prefetch_claimed(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str, threads: int
) -> None:
    jobs.trigger_many("test.sleep", [{"key": f"cap-{i}", "seconds": 0.2} for i in range(40)])
    start_worker(pg_runtime.broker, threads=threads)

    def processing() -> int:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT count(*) FROM background_job WHERE status = 'PROCESSING'").fetchone()
        return int(row[0]) if row else 0

    wait_for(lambda: processing() > 0)
    assert processing() <= threads * 2  # Dramatiq's prefetch
