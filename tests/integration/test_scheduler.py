"""Once per slot, against a real PostgreSQL: claims, crashed schedulers, and the worker-side guard."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import pendulum
import psycopg
import pytest

from docjobs.actors import maintenance
from docjobs.db.cron import CronLedger
from docjobs.runtime import Runtime
from docjobs.scheduler.firing import SLOT_OPTION, Firer
from tests.conftest import provider_overrides, wait_for

SCHEDULE = "internal.cleanup-rate-limits"
#: Every minute, so the latest slot is always within the schedule's 5-minute tolerance.
EVERY_MINUTE = {"NEXT_PRIVATE_JOBS_CLEANUP_RATE_LIMITS_CRON": "* * * * *"}


@pytest.fixture
def pg_runtime(make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime(**EVERY_MINUTE)


@pytest.fixture(params=["local", "bullmq"])
def any_runtime(request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]) -> Runtime:
    """The scheduler's runtime on each provider with workers."""
    return make_runtime(**EVERY_MINUTE, **provider_overrides(request, request.param))


def execute(url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        cursor = conn.execute(query.encode(), params)
        return cursor.fetchall() if cursor.description else []


def ledger_of(runtime: Runtime) -> CronLedger:
    assert runtime.ledger is not None
    return runtime.ledger


def current_slot(runtime: Runtime) -> datetime:
    slot = runtime.cron[SCHEDULE].due_slot(datetime.now(UTC))
    assert slot is not None
    return slot


def send_like_periodiq(runtime: Runtime, sent_at: datetime) -> dramatiq.Message[Any]:
    """What a periodiq process sends: the actor with ``scheduled_at`` = its wake-up time."""
    actor = runtime.broker.get_actor(SCHEDULE)
    return actor.send_with_options(**{SLOT_OPTION: str(pendulum.instance(sent_at))})


def cron_rows(url: str) -> list[dict[str, Any]]:
    return execute(url, "SELECT * FROM cron_run ORDER BY schedule, slot")


def wait_for_firing(url: str, status: str) -> dict[str, Any]:
    """The first ledger row that reaches ``status``."""
    found: dict[str, Any] = wait_for(lambda: next((r for r in cron_rows(url) if r["status"] == status), None))
    return found


def scheduled_jobs(url: str) -> list[dict[str, Any]]:
    return execute(url, "SELECT * FROM background_job WHERE options ? %s ORDER BY seq", SLOT_OPTION)


def old_bucket(url: str, key: str) -> None:
    """A rate-limit bucket the cleanup deletes when it runs: the proof that it ran."""
    execute(
        url,
        "INSERT INTO rate_limit (key, action, bucket, created_at) VALUES (%s, 'sign-in', now(), now() - interval '2 days')",
        key,
    )


def bucket_exists(url: str, key: str) -> bool:
    return bool(execute(url, "SELECT 1 FROM rate_limit WHERE key = %s", key))


def settled(url: str) -> bool:
    jobs = scheduled_jobs(url)
    return bool(jobs) and all(job["status"] in ("COMPLETED", "FAILED") for job in jobs)


def actions(caplog: pytest.LogCaptureFixture, action: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if getattr(record, "action", None) == action]


def test_two_schedulers_firing_one_slot_send_one_job(pg_runtime: Runtime, database_url: str) -> None:
    slot = current_slot(pg_runtime)
    schedule = pg_runtime.cron[SCHEDULE]
    first = Firer(pg_runtime.broker, ledger_of(pg_runtime), fired_by="first")
    second = Firer(pg_runtime.broker, ledger_of(pg_runtime), fired_by="second")
    assert first.fire(schedule, slot)
    assert not second.fire(schedule, slot)
    assert not first.fire(schedule, slot)
    (row,) = cron_rows(database_url)
    (job,) = scheduled_jobs(database_url)
    assert (SCHEDULE, slot, "first", "fired", job["id"]) == (
        row["schedule"],
        row["slot"],
        row["fired_by"],
        row["status"],
        row["job_id"],
    )
    assert slot.isoformat() == job["options"][SLOT_OPTION]


def test_a_scheduler_that_dies_before_committing_its_claim_leaves_the_slot_to_another(
    pg_runtime: Runtime, database_url: str
) -> None:
    slot = current_slot(pg_runtime)
    schedule = pg_runtime.cron[SCHEDULE]
    outcome: list[bool] = []
    survivor = Firer(pg_runtime.broker, ledger_of(pg_runtime), fired_by="survivor")
    crashing = psycopg.connect(database_url)
    try:
        ledger_of(pg_runtime).claim(
            crashing, schedule=SCHEDULE, slot=slot, job_id="lost", fired_by="crashing"
        )
        waiting = threading.Thread(target=lambda: outcome.append(survivor.fire(schedule, slot)))
        waiting.start()
        # The second claim waits on the first transaction's row lock...
        wait_for(
            lambda: execute(
                database_url,
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                "%cron_run%",
            )
        )
        assert [] == outcome
        # ...and wins once that scheduler dies without committing.
        execute(database_url, "SELECT pg_terminate_backend(%s)", crashing.info.backend_pid)
        waiting.join(10)
    finally:
        crashing.close()  # closing, not leaving the block: that would commit on a dead connection
    assert [True] == outcome
    (row,) = cron_rows(database_url)
    assert "survivor" == row["fired_by"]
    assert [row["job_id"]] == [job["id"] for job in scheduled_jobs(database_url)]


def test_a_fired_slot_runs_once_on_a_worker_and_is_recorded(
    any_runtime: Runtime, database_url: str, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    old_bucket(database_url, "fired")
    slot = current_slot(any_runtime)
    Firer(any_runtime.broker, ledger_of(any_runtime), fired_by="test").fire(any_runtime.cron[SCHEDULE], slot)
    start_worker(any_runtime.broker)
    row = wait_for_firing(database_url, "succeeded")
    assert slot == row["slot"]
    assert row["created_at"] <= row["started_at"] <= row["finished_at"]
    assert row["error"] is None
    assert not bucket_exists(database_url, "fired")


def test_duplicates_from_periodiq_and_the_in_process_scheduler_run_once(
    any_runtime: Runtime,
    database_url: str,
    start_worker: Callable[..., dramatiq.Worker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    slot = current_slot(any_runtime)
    Firer(any_runtime.broker, ledger_of(any_runtime), fired_by="in-process").fire(
        any_runtime.cron[SCHEDULE], slot
    )
    for _ in range(2):  # two periodiq processes, woken half a second after the slot
        send_like_periodiq(any_runtime, slot + timedelta(seconds=0.5))
    start_worker(any_runtime.broker, threads=4)
    wait_for(lambda: settled(database_url) and len(scheduled_jobs(database_url)) == 3)
    (row,) = cron_rows(database_url)
    started = actions(caplog, "job_started")
    assert [row["job_id"]] == [record.message_id for record in started]  # type: ignore[attr-defined]
    assert 2 == len(actions(caplog, "cron_duplicate"))
    assert "succeeded" == row["status"]


def test_a_slot_periodiq_got_to_first_is_not_fired_again_in_process(
    any_runtime: Runtime, database_url: str, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    slot = current_slot(any_runtime)
    sent = send_like_periodiq(any_runtime, slot + timedelta(seconds=0.5))
    start_worker(any_runtime.broker)
    row = wait_for_firing(database_url, "succeeded")
    assert (sent.message_id, "periodiq", slot) == (row["job_id"], row["fired_by"], row["slot"])
    firer = Firer(any_runtime.broker, ledger_of(any_runtime), fired_by="in-process")
    assert not firer.fire(any_runtime.cron[SCHEDULE], slot)
    any_runtime.join()
    assert 1 == len(scheduled_jobs(database_url))


def test_a_firing_later_than_the_tolerance_is_skipped_and_recorded(
    pg_runtime: Runtime,
    database_url: str,
    start_worker: Callable[..., dramatiq.Worker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    old_bucket(database_url, "late")
    sent_at = datetime.now(UTC) - timedelta(minutes=6)  # tolerance: 5 minutes after the slot
    send_like_periodiq(pg_runtime, sent_at)
    start_worker(pg_runtime.broker)
    row = wait_for_firing(database_url, "late")
    assert pg_runtime.cron[SCHEDULE].slot_of(sent_at) == row["slot"]
    assert row["finished_at"] is not None
    wait_for(lambda: settled(database_url))
    assert bucket_exists(database_url, "late")
    assert [] == actions(caplog, "job_started")
    (warning,) = actions(caplog, "cron_late")
    assert logging.WARNING == warning.levelno


def test_a_firing_is_not_run_unguarded_while_the_ledger_is_unreachable(
    make_runtime: Callable[..., Runtime], database_url: str, start_worker: Callable[..., dramatiq.Worker]
) -> None:
    current = make_runtime(
        **EVERY_MINUTE, NEXT_PRIVATE_JOBS_MIN_BACKOFF_SECONDS="1", NEXT_PRIVATE_JOBS_MAX_BACKOFF_SECONDS="1.5"
    )
    old_bucket(database_url, "unguarded")
    execute(database_url, "ALTER TABLE cron_run RENAME TO cron_run_hidden")
    try:
        sent = send_like_periodiq(current, datetime.now(UTC))
        start_worker(current.broker)
        wait_for(
            lambda: (
                "the cron ledger is unavailable"
                in (
                    execute(
                        database_url, "SELECT last_error FROM background_job WHERE id = %s", sent.message_id
                    )[0]["last_error"]
                    or ""
                )
            )
        )
        assert bucket_exists(database_url, "unguarded")
    finally:
        execute(database_url, "ALTER TABLE cron_run_hidden RENAME TO cron_run")
    wait_for(lambda: not bucket_exists(database_url, "unguarded"))
    (row,) = wait_for(lambda: [r for r in cron_rows(database_url) if r["status"] == "succeeded"])
    assert sent.message_id == row["job_id"]


def test_the_ledger_lets_the_owner_retry_and_nobody_else_run(pg_runtime: Runtime, database_url: str) -> None:
    ledger = ledger_of(pg_runtime)
    slot = datetime(2026, 3, 10, 10, 15, tzinfo=UTC)

    def decide(job_id: str, late: bool = False) -> str | None:
        return ledger.decide(schedule=SCHEDULE, slot=slot, job_id=job_id, fired_by="periodiq", late=late)

    assert "running" == decide("owner")
    assert decide("other") is None
    ledger.finish(schedule=SCHEDULE, slot=slot, job_id="owner", succeeded=False, error="OSError: disk full")
    (row,) = cron_rows(database_url)
    assert ("failed", "OSError: disk full") == (row["status"], row["error"])
    assert "running" == decide("owner")  # Dramatiq's retry of the same message
    assert decide("other") is None
    ledger.finish(schedule=SCHEDULE, slot=slot, job_id="owner", succeeded=True)
    assert "succeeded" == decide("owner")  # redelivered after it succeeded: not again
    (row,) = cron_rows(database_url)
    assert ("succeeded", None) == (row["status"], row["error"])


def test_a_retry_later_than_the_tolerance_is_skipped_as_late(pg_runtime: Runtime, database_url: str) -> None:
    ledger = ledger_of(pg_runtime)
    slot = datetime(2026, 3, 10, 10, 15, tzinfo=UTC)
    with pg_runtime.ledger.database.transaction() as conn:  # type: ignore[union-attr]
        assert ledger.claim(conn, schedule=SCHEDULE, slot=slot, job_id="owner", fired_by="in-process")
    assert "running" == ledger.decide(schedule=SCHEDULE, slot=slot, job_id="owner", fired_by="x", late=False)
    ledger.finish(schedule=SCHEDULE, slot=slot, job_id="owner", succeeded=False, error="boom")
    assert "late" == ledger.decide(schedule=SCHEDULE, slot=slot, job_id="owner", fired_by="x", late=True)
    assert "late" == ledger.decide(schedule=SCHEDULE, slot=slot, job_id="owner", fired_by="x", late=False)
    (row,) = cron_rows(database_url)
    assert ("late", "in-process") == (row["status"], row["fired_by"])


def test_the_retention_job_deletes_old_cron_firings(pg_runtime: Runtime, database_url: str) -> None:
    for days, schedule in ((45, "internal.cleanup-rate-limits"), (1, "internal.seal-document-sweep")):
        execute(
            database_url,
            "INSERT INTO cron_run (schedule, slot, job_id, created_at) VALUES (%s, now(), 'j', now() - %s * interval '1 day')",
            schedule,
            days,
        )
    maintenance.cleanup_background_jobs()
    assert ["internal.seal-document-sweep"] == [row["schedule"] for row in cron_rows(database_url)]
