"""The board's schedules: their firings, run now, and pause and resume honoured by every driver
through the cron ledger (the in-process scheduler, a periodiq firing on a worker, Inngest's cron)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import httpx
import pytest

import docjobs
from docjobs.runtime import Runtime
from docjobs.scheduler.firing import Firer
from docjobs.scheduler.inprocess import InProcessScheduler
from tests.conftest import wait_for
from tests.integration.test_scheduler import (
    EVERY_MINUTE,
    SCHEDULE,
    bucket_exists,
    execute,
    old_bucket,
    send_like_periodiq,
)
from tests.support.board import ADMIN, BOARD, TOKEN, Board, csrf_of, job_status

APP_JOB = "test.record"
ERROR = "<script>alert('owned')</script>"


@pytest.fixture
def app_schedule() -> Iterator[str]:
    docjobs.add_schedule(APP_JOB, "*/5 * * * *", payload={"key": "from-the-schedule"})
    yield APP_JOB
    docjobs.remove_schedule(APP_JOB)


def api(board: Board) -> httpx.Client:
    """A client of the JSON API with the board token (no CSRF token needed)."""
    return board.client(headers={"authorization": f"Bearer {TOKEN}"})


def act(board: Board, schedule: str, action: str) -> httpx.Response:
    return api(board).post(f"{BOARD}/api/schedules/{schedule}/{action}", json={})


def listed(board: Board, schedule: str) -> dict[str, Any]:
    answer = api(board).get(f"{BOARD}/api/schedules")
    assert 200 == answer.status_code, answer.text
    found: dict[str, Any] = next(entry for entry in answer.json()["schedules"] if entry["job"] == schedule)
    return found


def ledger_rows(url: str, schedule: str = SCHEDULE) -> list[dict[str, Any]]:
    return execute(url, "SELECT * FROM cron_run WHERE schedule = %s ORDER BY slot", schedule)


def audit_entries(url: str) -> list[tuple[str, str, str | None]]:
    rows = execute(url, "SELECT actor, action, target FROM board_audit ORDER BY id")
    return [(row["actor"], row["action"], row["target"]) for row in rows]


def record_firing(
    url: str, schedule: str, minutes_ago: int, status: str, error: str | None = None
) -> datetime:
    slot = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minutes_ago)
    execute(
        url,
        "INSERT INTO cron_run (schedule, slot, job_id, fired_by, status, started_at, finished_at, error) "
        "VALUES (%s, %s, %s, 'in-process', %s, %s, %s, %s)",
        schedule,
        slot,
        None if status == "paused" else f"job-{minutes_ago}",
        status,
        slot + timedelta(seconds=1),
        slot + timedelta(seconds=2),
        error,
    )
    return slot


def scheduler_of(runtime: Runtime) -> InProcessScheduler:
    assert runtime.ledger is not None
    return InProcessScheduler(runtime.cron, Firer(runtime.broker, runtime.ledger, fired_by="in-process"))


def sent_jobs(url: str, actor: str = SCHEDULE) -> list[dict[str, Any]]:
    return execute(url, "SELECT * FROM background_job WHERE actor = %s ORDER BY seq", actor)


# The page and its twin.


def test_the_page_and_api_list_every_schedule_with_its_latest_firings(
    open_board: Callable[..., Board], app_schedule: str, database_url: str
) -> None:
    board = open_board(worker=False)
    record_firing(database_url, SCHEDULE, 45, "succeeded")
    record_firing(database_url, SCHEDULE, 30, "failed", ERROR)
    record_firing(database_url, SCHEDULE, 15, "late")
    record_firing(database_url, app_schedule, 5, "paused")
    answer = api(board).get(f"{BOARD}/api/schedules")
    assert 200 == answer.status_code, answer.text
    schedules = {entry["job"]: entry for entry in answer.json()["schedules"]}
    assert {SCHEDULE, "internal.cleanup-background-jobs", app_schedule} <= set(schedules)
    own, app = schedules[SCHEDULE], schedules[app_schedule]
    assert ("*/15 * * * *", "docjobs", "NEXT_PRIVATE_JOBS_CLEANUP_RATE_LIMITS_CRON", True, False) == (
        own["expression"], own["source"], own["variable"], own["enabled"], own["paused"],
    )  # fmt: skip
    assert ["late", "failed", "succeeded"] == [firing["status"] for firing in own["firings"]]
    assert ERROR == own["firings"][1]["error"]
    assert own["next"] is not None
    assert ("*/5 * * * *", "add_schedule", None) == (app["expression"], app["source"], app["variable"])
    assert ["paused"] == [firing["status"] for firing in app["firings"]]
    page = board.signed_in(*ADMIN).get(f"{BOARD}/schedules")
    assert 200 == page.status_code
    assert app_schedule in page.text and SCHEDULE in page.text
    assert "&lt;script&gt;alert(" in page.text and ERROR not in page.text
    overview = board.signed_in(*ADMIN).get(f"{BOARD}/")
    assert f'href="{BOARD}/schedules"' in overview.text


# Pause and resume, through each driver.


def test_a_pause_is_kept_in_postgresql_and_a_new_runtimes_scheduler_skips_the_slot(
    open_board: Callable[..., Board], make_runtime: Callable[..., Runtime], database_url: str
) -> None:
    board = open_board(worker=False, **EVERY_MINUTE)
    answer = act(board, SCHEDULE, "pause")
    assert 200 == answer.status_code, answer.text
    assert {"schedule": SCHEDULE, "paused": True} == answer.json()
    fresh = make_runtime(**EVERY_MINUTE)  # another process, started after the pause
    assert fresh.ledger is not None
    assert fresh.ledger.pause_states()[SCHEDULE]["paused"]
    now = datetime.now(UTC)
    scheduler_of(fresh).tick(now)
    (row,) = ledger_rows(database_url)
    assert ("paused", None, fresh.cron[SCHEDULE].due_slot(now)) == (row["status"], row["job_id"], row["slot"])
    assert row["finished_at"] is not None
    assert [] == sent_jobs(database_url)


def test_the_in_process_scheduler_skips_a_paused_slot_and_fires_again_after_the_resume(
    open_board: Callable[..., Board], database_url: str
) -> None:
    board = open_board(worker=False, **EVERY_MINUTE)
    now = datetime.now(UTC)
    assert 200 == act(board, SCHEDULE, "pause").status_code
    scheduler_of(board.runtime).tick(now)
    assert 200 == act(board, SCHEDULE, "resume").status_code
    assert not listed(board, SCHEDULE)["paused"]
    # The paused slot is not replayed by any scheduler after the resume...
    scheduler_of(board.runtime).tick(now)
    assert [] == sent_jobs(database_url)
    # ...and the next slot fires.
    later = now + timedelta(minutes=2)
    scheduler_of(board.runtime).tick(later)
    statuses = [(row["slot"], row["status"]) for row in ledger_rows(database_url)]
    schedule = board.runtime.cron[SCHEDULE]
    assert [(schedule.due_slot(now), "paused"), (schedule.due_slot(later), "fired")] == statuses
    assert 1 == len(sent_jobs(database_url))
    assert [(ADMIN_TOKEN, "schedule pause", SCHEDULE), (ADMIN_TOKEN, "schedule resume", SCHEDULE)] == (
        audit_entries(database_url)
    )


ADMIN_TOKEN = "token"  # how the audit log names who used the board token


def test_a_slot_that_came_while_paused_is_not_replayed_after_the_resume(
    open_board: Callable[..., Board], database_url: str
) -> None:
    """No scheduler ran during the pause: the first to run after it does not fire that slot."""
    board = open_board(worker=False, **EVERY_MINUTE)
    assert 200 == act(board, SCHEDULE, "pause").status_code
    execute(database_url, "UPDATE cron_schedule_state SET paused_at = paused_at - interval '10 minutes'")
    assert 200 == act(board, SCHEDULE, "resume").status_code
    scheduler_of(board.runtime).tick(datetime.now(UTC))  # the slot is within its tolerance
    assert ["paused"] == [row["status"] for row in ledger_rows(database_url)]
    assert [] == sent_jobs(database_url)


@pytest.mark.parametrize("provider", ["local", "bullmq"])
def test_a_periodiq_firing_of_a_paused_schedule_is_skipped_by_the_worker_guard(
    open_board: Callable[..., Board],
    database_url: str,
    start_worker: Callable[..., dramatiq.Worker],
    provider: str,
) -> None:
    board = open_board(provider=provider, worker=False, **EVERY_MINUTE)
    old_bucket(database_url, "paused")
    assert 200 == act(board, SCHEDULE, "pause").status_code
    sent = send_like_periodiq(board.runtime, datetime.now(UTC))
    start_worker(board.runtime.broker)
    row = wait_for(lambda: next(iter(ledger_rows(database_url)), None))
    assert ("paused", sent.message_id, "periodiq") == (row["status"], row["job_id"], row["fired_by"])
    wait_for(lambda: job_status(database_url, sent.message_id) not in ("PENDING", "PROCESSING"))
    assert bucket_exists(database_url, "paused")  # the job did not run


def test_inngest_cron_runs_of_a_paused_schedule_are_skipped_and_run_again_after_the_resume(
    open_board: Callable[..., Board], database_url: str, request: pytest.FixtureRequest
) -> None:
    board = open_board(provider="inngest", worker=False, **EVERY_MINUTE)
    emulator = request.getfixturevalue("inngest_emulator")
    function = f"{board.runtime.settings.inngest_app_id}-{SCHEDULE}"
    old_bucket(database_url, "inngest")
    assert 200 == act(board, SCHEDULE, "pause").status_code
    run = emulator.fire_cron(function)
    emulator.wait_for_runs(1)
    assert "completed" == run.status
    assert ["paused"] == [row["status"] for row in ledger_rows(database_url)]
    assert bucket_exists(database_url, "inngest")
    assert 200 == act(board, SCHEDULE, "resume").status_code
    # An hour on: the paused slot and the pause are in the past, the next slot runs.
    execute(database_url, "UPDATE cron_run SET slot = slot - interval '1 hour'")
    execute(
        database_url,
        "UPDATE cron_schedule_state SET paused_at = paused_at - interval '1 hour', "
        "resumed_at = resumed_at - interval '1 hour'",
    )
    run = emulator.fire_cron(function)
    emulator.wait_for_runs(2)
    assert "completed" == run.status
    rows = ledger_rows(database_url)
    assert [("paused", "inngest"), ("succeeded", "inngest")] == [
        (row["status"], row["fired_by"]) for row in rows
    ]
    assert not bucket_exists(database_url, "inngest")


# Run now.


def test_run_now_sends_one_job_that_runs_outside_the_slots_and_is_audited(
    open_board: Callable[..., Board], database_url: str
) -> None:
    board = open_board(worker=True, **EVERY_MINUTE)
    schedule = board.runtime.cron[SCHEDULE]
    ledger = board.runtime.ledger
    assert ledger is not None
    firer = Firer(board.runtime.broker, ledger, fired_by="in-process")
    slot = schedule.due_slot(datetime.now(UTC))
    assert slot is not None
    assert firer.fire(schedule, slot)  # the slot's own firing
    assert 200 == act(board, SCHEDULE, "pause").status_code  # a paused schedule runs when asked
    old_bucket(database_url, "run-now")
    answer = act(board, SCHEDULE, "run-now")
    assert 200 == answer.status_code, answer.text
    job = answer.json()["job"]
    wait_for(lambda: job_status(database_url, job) == "COMPLETED")
    assert not bucket_exists(database_url, "run-now")
    run_now = next(row for row in ledger_rows(database_url) if row["job_id"] == job)
    assert ("run-now", "succeeded") == (run_now["fired_by"], run_now["status"])
    assert run_now["slot"] not in (slot, schedule.next_slot(slot))
    # Neither the slot before it nor the next one was taken.
    assert 2 == len(ledger_rows(database_url))
    next_slot = schedule.next_slot(slot)
    assert next_slot is not None
    assert 200 == act(board, SCHEDULE, "resume").status_code
    assert firer.fire(schedule, next_slot)
    assert ("token", "schedule run-now", SCHEDULE) in audit_entries(database_url)
    firings = listed(board, SCHEDULE)["firings"]
    assert [True] == [firing["runNow"] for firing in firings if firing["job"] == job]


def test_run_now_on_inngest_runs_the_job_and_records_it_in_the_ledger(
    open_board: Callable[..., Board], database_url: str, request: pytest.FixtureRequest
) -> None:
    board = open_board(provider="inngest", worker=False, **EVERY_MINUTE)
    emulator = request.getfixturevalue("inngest_emulator")
    old_bucket(database_url, "inngest run-now")
    assert 200 == act(board, SCHEDULE, "pause").status_code
    answer = act(board, SCHEDULE, "run-now")
    assert 200 == answer.status_code, answer.text
    (run,) = emulator.wait_for_runs(1)
    assert "completed" == run.status
    (row,) = ledger_rows(database_url)
    assert (answer.json()["job"], "run-now", "succeeded") == (row["job_id"], row["fired_by"], row["status"])
    assert not bucket_exists(database_url, "inngest run-now")


# Refusals.


def test_unknown_schedules_and_actions_are_refused_and_nothing_is_done(
    open_board: Callable[..., Board], database_url: str
) -> None:
    board = open_board(worker=False)
    assert 404 == act(board, "no.such-job", "pause").status_code
    refused = act(board, SCHEDULE, "explode")
    assert 400 == refused.status_code
    assert "run-now, pause, resume" in refused.json()["error"]
    client = board.signed_in(*ADMIN)
    csrf = csrf_of(client.get(f"{BOARD}/schedules").text)
    assert 404 == client.post(f"{BOARD}/schedules/no.such-job/pause", data={"csrf": csrf}).status_code
    assert 400 == client.post(f"{BOARD}/schedules/{SCHEDULE}/explode", data={"csrf": csrf}).status_code
    assert [] == execute(database_url, "SELECT * FROM cron_schedule_state")
    assert [] == audit_entries(database_url)


def test_posts_without_the_csrf_token_or_signed_out_are_refused(
    open_board: Callable[..., Board], database_url: str
) -> None:
    board = open_board(worker=False)
    client = board.signed_in(*ADMIN)
    csrf = csrf_of(client.get(f"{BOARD}/schedules").text)
    form = f"{BOARD}/schedules/{SCHEDULE}/pause"
    assert 403 == client.post(form, data={}).status_code
    assert 403 == client.post(f"{BOARD}/api/schedules/{SCHEDULE}/pause", json={}).status_code
    signed_out = board.client()
    refused = signed_out.post(form, data={"csrf": csrf})
    assert 303 == refused.status_code and refused.headers["location"].endswith(f"{BOARD}/sign-in")
    assert 401 == signed_out.post(f"{BOARD}/api/schedules/{SCHEDULE}/run-now", json={}).status_code
    assert [] == execute(database_url, "SELECT * FROM cron_schedule_state")
    assert [] == sent_jobs(database_url)
    # With its token, the same form does it.
    done = client.post(form, data={"csrf": csrf})
    assert (303, f"{BOARD}/schedules") == (done.status_code, done.headers["location"])
    assert [(ADMIN[0], "schedule pause", SCHEDULE)] == audit_entries(database_url)
