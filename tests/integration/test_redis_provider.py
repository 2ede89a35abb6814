"""The bullmq provider against a real Redis and PostgreSQL: history, tasks, retries, prefixes, restarts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
import psycopg
import pytest
import redis
from docjobs_devkit import RedisServer
from dramatiq.message import Message

from docjobs import db, jobs, runtime
from docjobs.brokers.bullmq import enqueue as enqueue_module
from docjobs.brokers.bullmq.broker import BullmqBroker
from docjobs.runtime import Runtime
from docjobs.settings import Settings
from docjobs.web.app import create_app
from tests.conftest import events, provider_overrides, wait_for
from tests.support import actors


@pytest.fixture
def bullmq(request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime(**provider_overrides(request, "bullmq"))


def finished(url: str, job_id: str) -> dict[str, Any] | None:
    row = _row(url, job_id)
    return row if row is not None and row["status"] in ("COMPLETED", "FAILED") else None


def _row(url: str, job_id: str) -> dict[str, Any] | None:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM background_job WHERE id = %s", (job_id,)).fetchone()


def test_jobs_run_and_their_history_is_recorded(
    bullmq: Runtime, database_url: str, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    assert isinstance(bullmq.broker, BullmqBroker)
    start_worker(bullmq.broker, threads=2)
    sent = [actors.record_job.send(key=f"r{index}") for index in range(5)]
    rows = [wait_for(lambda m=message: finished(database_url, m.message_id)) for message in sent]
    assert {"COMPLETED"} == {row["status"] for row in rows}
    for row, message in zip(rows, sent, strict=True):
        assert ("test.record", "default", "Record") == (row["actor"], row["queue"], row["name"])
        assert message.kwargs == row["payload"]
        assert row["submitted_at"] <= row["started_at"] <= row["completed_at"]
    assert [f"r{index}" for index in range(5)] == sorted(event["key"] for event in events(database_url))


def test_run_task_steps_are_kept_in_postgres_across_a_retry(
    bullmq: Runtime, database_url: str, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    start_worker(bullmq.broker, threads=2)
    message = actors.tasks_job.send(key="steps", fail_after_first=True)
    row = wait_for(lambda: finished(database_url, message.message_id), timeout=20)
    assert "COMPLETED" == row["status"]
    assert 1 == row["retried"]
    # The first step ran once although the job ran twice, and its result was kept.
    assert ["first", "second:42"] == [event["kind"] for event in events(database_url, "steps")]
    with psycopg.connect(database_url) as conn:
        tasks = conn.execute(
            "SELECT status FROM background_job_task WHERE job_id = %s", (message.message_id,)
        )
        assert {("COMPLETED",)} == set(tasks.fetchall())


def test_a_failing_job_gets_three_attempts_with_backoff_from_one_second(
    make_runtime: Callable[..., Runtime],
    bullmq_environ: dict[str, str],
    database_url: str,
    start_worker: Callable[..., dramatiq.Worker],
) -> None:
    current = runtime.configure(
        Settings.from_environ(
            {
                **bullmq_environ,
                "NEXT_PRIVATE_JOBS_MIN_BACKOFF_SECONDS": "1",
                "NEXT_PRIVATE_JOBS_MAX_BACKOFF_SECONDS": "60",
            }
        )
    )
    attempts: list[float] = []

    def always_fails() -> None:
        attempts.append(time.monotonic())
        raise RuntimeError("the mail server is on fire")

    actor = dramatiq.actor(always_fails, actor_name="redis.always_fails", broker=current.broker)
    start_worker(current.broker, threads=2)
    message = actor.send()
    row = wait_for(lambda: finished(database_url, message.message_id), timeout=30, interval=0.1)
    assert 3 == len(attempts)
    first_wait, second_wait = attempts[1] - attempts[0], attempts[2] - attempts[1]
    assert 1.0 <= first_wait < 2.5, first_wait  # 1 s x U(1, 2)
    assert 2.0 <= second_wait < 4.5, second_wait  # 2 s x U(1, 2)
    assert ("FAILED", 2, "RuntimeError: the mail server is on fire") == (
        row["status"],
        row["retried"],
        row["last_error"],
    )
    assert "raise RuntimeError" in row["last_traceback"]
    # The dead message stays in Redis with its traceback, as Dramatiq keeps it.
    prefix = bullmq_environ["NEXT_PRIVATE_REDIS_PREFIX"]
    client = redis.Redis.from_url(bullmq_environ["NEXT_PRIVATE_REDIS_URL"])
    assert 1 == client.zcard(f"{prefix}:default.XQ")


def test_two_prefixes_on_one_redis_never_see_each_others_jobs(
    redis_server: RedisServer, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    ran: dict[str, list[str]] = {"left": [], "right": []}
    brokers = {
        side: BullmqBroker(
            redis_server.url, namespace=f"prefix-{side}", middleware=[], heartbeat_timeout_seconds=5
        )
        for side in ran
    }
    actors_by_side = {
        side: dramatiq.actor(
            lambda value, side=side: ran[side].append(value), actor_name="shared.name", broker=broker
        )
        for side, broker in brokers.items()
    }
    try:
        start_worker(brokers["right"], threads=2)
        actors_by_side["left"].send("for the left")
        actors_by_side["right"].send("for the right")
        wait_for(lambda: ran["right"])  # the right worker fetched, and only its own
        assert ["for the right"] == ran["right"]
        start_worker(brokers["left"], threads=2)
        wait_for(lambda: ran["left"])
        assert (["for the left"], ["for the right"]) == (ran["left"], ran["right"])
        client = redis.Redis.from_url(redis_server.url)
        assert [] == client.keys("prefix-right:default*")
    finally:
        for broker in brokers.values():
            broker.close()


def test_the_concurrency_setting_sets_the_embedded_workers_threads(
    make_runtime: Callable[..., Runtime], bullmq_environ: dict[str, str], database_url: str
) -> None:
    current = runtime.configure(
        Settings.from_environ({**bullmq_environ, "NEXT_PRIVATE_BULLMQ_CONCURRENCY": "3"})
    )
    app = create_app(current)
    worker = app.state.worker
    worker.start()
    try:
        messages = [actors.sleep_job.send(key=f"s{index}", seconds=0.6) for index in range(6)]
        for message in messages:
            wait_for(lambda m=message: finished(database_url, m.message_id), timeout=20)
    finally:
        worker.stop()
    moments = sorted((event["at"], 1 if event["kind"] == "started" else -1) for event in events(database_url))
    running, most = 0, 0
    for _, change in moments:
        running += change
        most = max(most, running)
    assert 3 == most


def test_a_redis_restart_mid_run_loses_no_job(
    bullmq_environ: dict[str, str], database_url: str, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    server = RedisServer(appendonly=True).start()
    try:
        current = runtime.configure(
            Settings.from_environ({**bullmq_environ, "NEXT_PRIVATE_REDIS_URL": server.url})
        )
        keys = [f"k{index}" for index in range(300)]
        for key in keys[:200]:
            actors.record_job.send(key=key)
        worker = start_worker(current.broker, threads=4)
        wait_for(lambda: len(events(database_url)) >= 20)
        restart = threading.Thread(target=server.restart, kwargs={"down_seconds": 1.0})
        restart.start()
        for key in keys[200:]:  # sent while Redis goes down and comes back: they wait, then go
            actors.record_job.send(key=key)
        restart.join()
        wait_for(
            lambda: set(keys) <= {event["key"] for event in events(database_url)}, timeout=60, interval=0.2
        )
        worker.stop(timeout=10_000)
    finally:
        runtime.reset()
        server.stop()


def test_a_fetch_whose_answer_was_lost_is_given_back(
    bullmq: Runtime, database_url: str, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    broker = bullmq.broker
    assert isinstance(broker, BullmqBroker)
    sent = [actors.record_job.send(key=f"lost{index}") for index in range(3)]
    # What Redis did for a fetch whose answer never arrived: the messages moved to
    # this process's ack set, and the process does not know it has them.
    broker.commands.run_pipeline(
        lambda pipeline: broker.commands.dispatch_to(pipeline, "fetch", "default", 10)
    )
    assert 3 == broker.client.scard(f"{broker.namespace}:__acks__.{broker.broker_id}.default")
    broker.holdings("default").suspect = True  # as a connection error during a fetch leaves it
    start_worker(broker, threads=2)
    for message in sent:
        wait_for(lambda m=message: finished(database_url, m.message_id))
    assert ["lost0", "lost1", "lost2"] == sorted(event["key"] for event in events(database_url))
    wait_for(lambda: 0 == broker.client.scard(f"{broker.namespace}:__acks__.{broker.broker_id}.default"))


def _outbox(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT id FROM job_outbox").fetchall()


@pytest.mark.parametrize("flush_between", [False, True], ids=["in-memory", "in-postgres"])
def test_a_send_recorded_after_its_job_ended_does_not_move_it_back(
    bullmq: Runtime, database_url: str, flush_between: bool
) -> None:
    history, broker = bullmq.history, bullmq.broker
    assert history is not None
    message = actors.record_job.message(key="fast")
    # A worker thread runs the job before the sending thread records the send.
    running = dramatiq.MessageProxy(message)
    history.before_process_message(broker, running)
    history.after_process_message(broker, running, result=None)
    if flush_between:
        history.flush()
    history.after_enqueue(broker, message, None)
    history.flush()
    row = _row(database_url, message.message_id)
    assert row is not None
    assert ("COMPLETED", 1) == (row["status"], row["attempts"])
    assert row["submitted_at"] <= row["started_at"]


@pytest.mark.parametrize("in_transaction", [False, True], ids=["direct", "through-the-outbox"])
def test_a_batch_bigger_than_one_script_call_is_enqueued_whole_in_order(
    bullmq: Runtime, database_url: str, in_transaction: bool
) -> None:
    broker = bullmq.broker
    assert isinstance(broker, BullmqBroker)
    payloads = [{"key": f"b{index}"} for index in range(2 * enqueue_module.ENQUEUE_CHUNK + 500)]
    if in_transaction:
        with db.transaction() as conn:
            sent = jobs.trigger_many("test.record", payloads, conn=conn)
    else:
        sent = jobs.trigger_many("test.record", payloads)
    queued = broker.client.lrange(f"{broker.namespace}:default", 0, -1)
    bodies = broker.client.hmget(f"{broker.namespace}:default.msgs", queued)
    assert [message.message_id for message in sent] == [Message.decode(body).message_id for body in bodies]
    assert [] == _outbox(database_url)


def test_a_failed_attempt_is_kept_even_when_its_job_finishes_before_the_history_is_written(
    bullmq: Runtime, database_url: str
) -> None:
    history, broker = bullmq.history, bullmq.broker
    assert history is not None
    message = actors.fail_once_job.message(key="collapsed")
    history.after_enqueue(broker, message, None)
    history.before_process_message(broker, dramatiq.MessageProxy(message))
    retry = message.copy(
        options={"retries": 1, "traceback": "Traceback ...\nRuntimeError: first attempt fails"}
    )
    history.after_enqueue(broker, retry, 20)
    second = dramatiq.MessageProxy(retry)
    history.before_process_message(broker, second)
    history.after_process_message(broker, second, result=None)
    history.flush()  # one write: the job's events collapse into COMPLETED
    assert "COMPLETED" == _row(database_url, message.message_id)["status"]  # type: ignore[index]
    with psycopg.connect(database_url) as conn:
        attempts = conn.execute(
            "SELECT attempt, outcome, error FROM background_job_attempt WHERE job_id = %s",
            (message.message_id,),
        ).fetchall()
    assert [(1, "retried", "RuntimeError: first attempt fails")] == attempts


def test_history_waits_in_the_journal_while_the_database_refuses_and_a_bad_entry_blocks_nothing(
    bullmq: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    history, broker = bullmq.history, bullmq.broker
    assert history is not None and isinstance(broker, BullmqBroker) and broker.journal is not None
    journal = broker.journal
    message = actors.record_job.message(key="journaled")
    running = dramatiq.MessageProxy(message)

    def database_gone(*args: object, **kwargs: object) -> None:
        raise psycopg.OperationalError("connection lost")

    # Gone before the job's events exist: the background writer must not win a race to write them.
    monkeypatch.setattr(journal.store.history, "record", database_gone)
    history.before_process_message(broker, running)
    history.after_process_message(broker, running, result=None)
    with pytest.raises(psycopg.OperationalError):
        history.flush()
    assert journal.pending() >= 1  # in Redis, not in this process's memory: a kill loses nothing
    assert _row(database_url, message.message_id) is None
    monkeypatch.undo()
    # An entry the database refuses (a failed attempt of a job it has no row for) is
    # dropped with an error, and the entries after it still go through.
    stray = {"job_id": "no-such-job", "attempt": 1, "started_at": None, "finished_at": "2026-01-01T00:00:00+00:00",
             "outcome": "failed", "error": "x", "traceback": None}  # fmt: skip
    broker.client.lpush(journal.key, json.dumps({"events": [], "failures": [stray]}))
    history.flush()
    assert 0 == journal.pending()
    row = _row(database_url, message.message_id)
    assert row is not None and "COMPLETED" == row["status"]
