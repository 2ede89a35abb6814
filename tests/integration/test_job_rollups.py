"""Job history rollups against a real PostgreSQL: each finished job counted exactly once (run
twice, killed mid-way, retention deleting rows), known wait and run times, every provider,
the board's history page and its JSON at 24 h and 7 days, and the rollups' own retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from docjobs import jobs
from docjobs.db import rollups
from docjobs.db.rollups import HISTOGRAM_BOUNDS_MS, RollupStore
from docjobs.db.store import JobStore
from docjobs.runtime import Runtime
from docjobs.web.board import history
from tests.conftest import wait_for
from tests.support.board import ADMIN, BOARD, TOKEN, Board

#: A fixed "now": 10:17:42 UTC. Buckets ending by 10:15 are closed (2 min grace: 10:15:42).
NOW = datetime(2026, 3, 2, 10, 17, 42, tzinfo=UTC)
CLOSED_UNTIL = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
BINS = len(HISTOGRAM_BOUNDS_MS) + 1


@pytest.fixture
def store(pg_runtime: Runtime) -> JobStore:
    assert pg_runtime.store is not None
    return pg_runtime.store


def _finished(
    database_url: str,
    rows: list[tuple[str, str, str, datetime, float | None, float | None]],
    *,
    queue: str = "default",
    retried: int = 0,
) -> None:
    """Insert finished jobs: (id, actor, status, completed_at, wait s, run s); no times: never started."""
    with psycopg.connect(database_url) as conn:
        for job_id, actor, status, completed_at, wait, run in rows:
            started = None if run is None else completed_at - timedelta(seconds=run)
            due = started - timedelta(seconds=wait or 0) if started else completed_at
            conn.execute(
                "INSERT INTO background_job (id, queue, actor, name, status, retried, run_at, submitted_at,"
                " started_at, completed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (job_id, queue, actor, actor, status, retried, due, due, started, completed_at),
            )


def _many(database_url: str, actor: str, status: str, count: int, at: datetime, prefix: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO background_job (id, actor, name, status, run_at, started_at, completed_at) "
            "SELECT %s || n, %s, %s, %s, %s, %s, %s FROM generate_series(1, %s) AS n",
            (prefix, actor, actor, status, at, at, at, count),
        )


def _rollup(database_url: str) -> dict[tuple[datetime, str, str], dict[str, Any]]:
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM background_job_rollup ORDER BY bucket, actor, queue").fetchall()
    return {(row.pop("bucket"), row.pop("actor"), row.pop("queue")): row for row in rows}


def _counts(database_url: str) -> dict[str, tuple[int, int, int]]:
    """(completed, failed, cancelled) per job type, over every bucket."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT actor, sum(completed), sum(failed), sum(cancelled) FROM background_job_rollup GROUP BY actor"
        ).fetchall()
    return {actor: (int(done), int(failed), int(cancelled)) for actor, done, failed, cancelled in rows}


def _rolled_until(database_url: str) -> datetime | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT rolled_until FROM background_job_rollup_state").fetchone()
    assert row is not None
    value: datetime | None = row[0]
    return value


# Exactly once.


def test_rolling_up_twice_counts_each_finished_job_once(store: JobStore, database_url: str) -> None:
    _finished(
        database_url,
        [
            ("a1", "test.a", "COMPLETED", datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC), 1.0, 2.0),
            ("a2", "test.a", "COMPLETED", datetime(2026, 3, 2, 9, 4, 59, tzinfo=UTC), 1.0, 2.0),
            ("a3", "test.a", "FAILED", datetime(2026, 3, 2, 9, 5, 0, tzinfo=UTC), 1.0, 2.0),
            ("b1", "test.b", "CANCELLED", datetime(2026, 3, 1, 23, 59, tzinfo=UTC), None, None),
            ("open", "test.a", "COMPLETED", datetime(2026, 3, 2, 10, 16, tzinfo=UTC), 1.0, 2.0),
        ],
    )
    first = store.rollups.roll_up(now=NOW)
    second = store.rollups.roll_up(now=NOW)

    assert CLOSED_UNTIL == first.rolled_until == second.rolled_until == _rolled_until(database_url)
    assert 0 == second.folded
    counted = {
        key: (row["completed"], row["failed"], row["cancelled"]) for key, row in _rollup(database_url).items()
    }
    assert {
        (datetime(2026, 3, 1, 23, 55, tzinfo=UTC), "test.b", "default"): (0, 0, 1),
        (datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "test.a", "default"): (2, 0, 0),
        (datetime(2026, 3, 2, 9, 5, tzinfo=UTC), "test.a", "default"): (0, 1, 0),
    } == counted  # the job of the open 10:15 bucket waits for it to close

    later = NOW + timedelta(minutes=5)  # the 10:15 bucket has closed
    store.rollups.roll_up(now=later)
    store.rollups.roll_up(now=later)
    assert {"test.a": (3, 1, 0), "test.b": (0, 0, 1)} == _counts(database_url)


def test_two_rollups_at_once_count_each_job_once(store: JobStore, database_url: str) -> None:
    for hour in range(8):
        _many(database_url, "test.a", "COMPLETED", 50, datetime(2026, 3, 2, hour, 1, tzinfo=UTC), f"h{hour}-")
    other = RollupStore(store.database)
    with psycopg.connect(database_url, autocommit=True) as holder:
        # A round in progress elsewhere: this one skips rather than waits or counts twice.
        holder.execute("BEGIN")
        holder.execute("SELECT * FROM background_job_rollup_state FOR UPDATE")
        skipped = other.roll_up(now=NOW)
        holder.execute("ROLLBACK")
    assert skipped.rolled_until is None and 0 == skipped.folded
    assert {} == _counts(database_url)
    store.rollups.roll_up(now=NOW)
    other.roll_up(now=NOW)
    assert {"test.a": (400, 0, 0)} == _counts(database_url)


def test_a_rollup_killed_mid_way_is_done_again_by_the_next_round(
    store: JobStore, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 hours of jobs: one round folds at most 6 hours, so this takes four transactions.
    for hour in range(20):
        at = datetime(2026, 3, 1, 14, 0, tzinfo=UTC) + timedelta(hours=hour)
        _many(database_url, "test.a", "COMPLETED", 10, at, f"h{hour}-")
    advance = RollupStore._advance
    calls = 0

    def killed_on_the_second_round(self: RollupStore, conn: psycopg.Connection[Any], *args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # the second round's fold is written: its connection dies before it commits
            with psycopg.connect(database_url, autocommit=True) as killer:
                killer.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        advance(self, conn, *args)

    monkeypatch.setattr(RollupStore, "_advance", killed_on_the_second_round)
    with pytest.raises(psycopg.OperationalError):
        store.rollups.roll_up(now=NOW)
    # The first round stands, the second left nothing behind.
    assert datetime(2026, 3, 1, 20, 0, tzinfo=UTC) == _rolled_until(database_url)
    assert {"test.a": (60, 0, 0)} == _counts(database_url)

    monkeypatch.setattr(RollupStore, "_advance", advance)
    done = store.rollups.roll_up(now=NOW)
    assert CLOSED_UNTIL == done.rolled_until
    assert {"test.a": (200, 0, 0)} == _counts(database_url)


def test_retention_deletes_only_counted_jobs_and_the_counts_survive_it(
    store: JobStore, database_url: str
) -> None:
    _many(database_url, "test.a", "COMPLETED", 7000, NOW - timedelta(days=40), "old-")
    _many(database_url, "test.a", "FAILED", 3, NOW - timedelta(days=35), "old-failed-")
    # Older than the retention asked for below, but in a bucket that has not closed yet.
    _many(database_url, "test.a", "COMPLETED", 4, NOW - timedelta(seconds=30), "fresh-")

    deleted = store.jobs.delete_finished(0.0001, now=NOW)  # retention rolls up first

    assert 7003 == deleted
    with psycopg.connect(database_url) as conn:
        left = conn.execute("SELECT id FROM background_job ORDER BY id").fetchall()
    assert [(f"fresh-{n}",) for n in range(1, 5)] == left
    assert {"test.a": (7000, 3, 0)} == _counts(database_url)
    # Retention runs again: no job is counted twice, none lost.
    store.jobs.delete_finished(0.0001, now=NOW + timedelta(minutes=10))
    assert {"test.a": (7004, 3, 0)} == _counts(database_url)
    with psycopg.connect(database_url) as conn:
        assert (0,) == conn.execute("SELECT count(*) FROM background_job").fetchone()


def test_retention_keeps_old_jobs_the_rollups_have_not_reached(store: JobStore, database_url: str) -> None:
    _finished(
        database_url,
        [
            ("counted", "test.a", "COMPLETED", NOW - timedelta(days=35), 1.0, 1.0),
            ("not-yet", "test.a", "FAILED", NOW - timedelta(days=31), 1.0, 1.0),
        ],
    )
    store.rollups.roll_up(now=NOW - timedelta(days=33))  # the rollups end between the two
    with psycopg.connect(database_url, autocommit=True) as holder:
        # A rollup round in progress elsewhere (this retention's own round skips): the
        # retention deletes what the rollups counted, and keeps the rest for them.
        holder.execute("BEGIN")
        holder.execute("SELECT * FROM background_job_rollup_state FOR UPDATE")
        assert 1 == store.jobs.delete_finished(30, now=NOW)
        holder.execute("ROLLBACK")
    with psycopg.connect(database_url) as conn:
        assert [("not-yet",)] == conn.execute("SELECT id FROM background_job").fetchall()
    assert {"test.a": (1, 0, 0)} == _counts(database_url)
    assert 1 == store.jobs.delete_finished(30, now=NOW)
    assert {"test.a": (1, 1, 0)} == _counts(database_url)


def test_day_old_buckets_are_merged_into_hours_and_every_count_is_kept(
    store: JobStore, database_url: str
) -> None:
    for minutes in range(0, 120, 5):  # 09:00 to 10:55 the day before: 24 five-minute buckets
        at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=minutes, seconds=30)
        _many(database_url, "test.a", "COMPLETED", 2, at, f"m{minutes}-")
    _finished(
        database_url, [("slow", "test.a", "FAILED", datetime(2026, 3, 1, 10, 31, tzinfo=UTC), 50.0, 400.0)]
    )
    _finished(database_url, [("recent", "test.a", "COMPLETED", NOW - timedelta(hours=3), 0.2, 0.2)])
    store.rollups.roll_up(now=NOW)
    before = _rollup(database_url)
    assert 25 == len(before)  # 24 buckets (the slow job shares 10:30), and the recent one

    merged = store.rollups.compact(now=NOW)  # hours that ended 25 h before 10:17: up to 09:00
    assert 0 == merged
    merged = store.rollups.compact(now=NOW + timedelta(hours=2))  # up to 11:00 the day before
    assert 2 == merged
    assert 0 == store.rollups.compact(now=NOW + timedelta(hours=2))  # nothing left to merge
    after = _rollup(database_url)
    hour_9 = (datetime(2026, 3, 1, 9, 0, tzinfo=UTC), "test.a", "default")
    hour_10 = (datetime(2026, 3, 1, 10, 0, tzinfo=UTC), "test.a", "default")
    assert {hour_9, hour_10, (datetime(2026, 3, 2, 7, 15, tzinfo=UTC), "test.a", "default")} == set(after)
    assert (24, 0) == (after[hour_9]["completed"], after[hour_9]["failed"])
    assert (24, 1) == (after[hour_10]["completed"], after[hour_10]["failed"])
    assert (25, 400_000) == (after[hour_10]["run_count"], after[hour_10]["run_ms_max"])
    for column in ("completed", "failed", "wait_count", "wait_ms_sum", "run_count", "run_ms_sum"):
        assert sum(row[column] for row in before.values()) == sum(row[column] for row in after.values())
    for column in ("wait_histogram", "run_histogram"):
        assert [sum(bins) for bins in zip(*(row[column] for row in before.values()), strict=True)] == [
            sum(bins) for bins in zip(*(row[column] for row in after.values()), strict=True)
        ]


# Known figures.


def test_wait_and_run_times_are_summed_kept_at_their_maximum_and_binned(
    store: JobStore, database_url: str
) -> None:
    at = datetime(2026, 3, 2, 9, 1, tzinfo=UTC)
    _finished(
        database_url,
        [  # (wait s, run s)
            ("j1", "test.a", "COMPLETED", at, 0.05, 0.2),  # wait bin 0 (< 100 ms), run bin 1
            ("j2", "test.a", "COMPLETED", at, 2.0, 0.2),  # wait bin 4 (1-2.5 s)
            ("j3", "test.a", "FAILED", at, 2.0, 40.0),  # run bin 8 (30-60 s)
            ("j4", "test.a", "COMPLETED", at, 1000.0, 3.0),  # wait bin 11 (>= 900 s), run bin 5
            ("never", "test.a", "CANCELLED", at, None, None),  # cancelled before it started
        ],
        retried=2,
    )
    store.rollups.roll_up(now=NOW)
    ((key, row),) = _rollup(database_url).items()
    assert (datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "test.a", "default") == key
    assert (3, 1, 1, 10) == (row["completed"], row["failed"], row["cancelled"], row["retried"])
    assert (4, 50 + 2000 + 2000 + 1_000_000, 1_000_000) == (
        row["wait_count"],
        row["wait_ms_sum"],
        row["wait_ms_max"],
    )
    assert (4, 200 + 200 + 40_000 + 3000, 40_000) == (row["run_count"], row["run_ms_sum"], row["run_ms_max"])
    wait, run = [0] * BINS, [0] * BINS
    wait[0], wait[4], wait[11] = 1, 2, 1
    run[1], run[5], run[8] = 2, 1, 1
    assert (wait, run) == (row["wait_histogram"], row["run_histogram"])

    # The history adds buckets up bin by bin: p95 is the upper edge of its bin, never above the max.
    _finished(database_url, [("j5", "test.a", "COMPLETED", at + timedelta(hours=2), 0.3, 0.3)])
    store.rollups.roll_up(now=NOW + timedelta(hours=2))
    view = history.History(store.rollups).compute(history.WINDOWS["24h"], NOW + timedelta(hours=2))
    (row_json,) = view["history"]["jobTypes"]
    assert {
        "job": "test.a",
        "completed": 4,
        "failed": 1,
        "cancelled": 1,
        "retried": 10,
        "failureRate": 0.2,
        "perHour": 5 / 24,
        "waitSeconds": {"avg": (1_004_050 + 300) / 5 / 1000, "p95": 1000.0, "max": 1000.0},
        "runSeconds": {"avg": 43_700 / 5 / 1000, "p95": 40.0, "max": 40.0},
    } == row_json


def test_the_percentile_of_a_histogram_is_its_bins_upper_edge() -> None:
    histogram = [0] * BINS
    histogram[3] = 19  # 500 ms to 1 s
    histogram[6] = 1  # 5 to 10 s
    assert 1.0 == rollups.percentile_seconds(histogram, 7_000, 0.95)  # the 19th of 20
    assert 7.0 == rollups.percentile_seconds(histogram, 7_000, 0.99)  # capped at the max
    assert rollups.percentile_seconds([0] * BINS, 0, 0.95) is None


# Every provider.


@pytest.mark.usefixtures("mailbox")
def test_jobs_finished_on_every_provider_are_counted(service: Runtime, database_url: str) -> None:
    sent = [jobs.trigger("test.record", {"key": f"r{n}"}).message_id for n in range(3)]
    service.join()

    def finished() -> bool:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM background_job WHERE id = ANY(%s) AND status = 'COMPLETED'", (sent,)
            ).fetchone()
        return row is not None and row[0] == len(sent)

    wait_for(finished, timeout=20)
    assert service.store is not None
    # Ten minutes on, every bucket these jobs finished in has closed.
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT now() + interval '10 minutes'").fetchone()
    assert row is not None
    service.store.rollups.roll_up(now=row[0])
    assert (3, 0, 0) == _counts(database_url)["test.record"]
    with psycopg.connect(database_url) as conn:
        runs = conn.execute(
            "SELECT sum(run_count), sum(wait_count) FROM background_job_rollup WHERE actor = 'test.record'"
        ).fetchone()
    assert (3, 3) == runs


# The job and the rollups' retention.


def test_the_rollup_job_counts_jobs_and_drops_buckets_older_than_it_keeps(
    service: Runtime, database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        for days in (9, 7.9):
            conn.execute(
                "INSERT INTO background_job_rollup (bucket, actor, queue, completed, wait_histogram, run_histogram)"
                " VALUES (date_bin('5 minutes', now() - %s * interval '1 day', 'epoch'), 'test.old', 'default',"
                " 1, %s, %s)",
                (days, [0] * BINS, [0] * BINS),
            )
    _many(database_url, "test.a", "COMPLETED", 5, datetime.now(UTC) - timedelta(hours=1), "hour-ago-")
    jobs.trigger("internal.rollup-job-history", {})
    service.join()
    wait_for(lambda: _counts(database_url).get("test.a"), timeout=20)
    assert {"test.a": (5, 0, 0), "test.old": (1, 0, 0)} == _counts(database_url)  # the 9-day bucket went
    (kept,) = [bucket for bucket, actor, _ in _rollup(database_url) if actor == "test.old"]
    assert 0 == kept.minute  # merged into its hour
    assert service.store is not None
    assert 0 == service.store.rollups.delete_old(rollups.KEEP_DAYS)


# The board.


def test_the_history_api_answers_24_hours_and_7_days(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    now = datetime.now(UTC)
    _finished(
        board.database_url,
        [
            ("today-1", "test.a", "COMPLETED", now - timedelta(hours=2), 3.0, 1.0),
            ("today-2", "test.a", "FAILED", now - timedelta(hours=2), 1.0, 3.0),
            ("today-3", "test.b", "COMPLETED", now - timedelta(hours=5), 0.0, 0.5),
            ("days-ago", "test.b", "COMPLETED", now - timedelta(days=3), 0.0, 0.5),
            ("too-old", "test.b", "COMPLETED", now - timedelta(days=7, hours=4), 0.0, 0.5),
        ],
    )
    assert board.runtime.store is not None
    board.runtime.store.rollups.roll_up()
    admin = board.signed_in(*ADMIN)

    day = admin.get(f"{BOARD}/api/history", params={"window": "24h"}).json()
    assert ("24h", 48, 1800) == (day["window"], len(day["steps"]), day["stepSeconds"])
    assert (2, 1) == (day["completed"], day["failed"])
    assert (2, 1) == (sum(s["completed"] for s in day["steps"]), sum(s["failed"] for s in day["steps"]))
    by_job = {row["job"]: row for row in day["jobTypes"]}
    assert (1, 1, 0.5) == (
        by_job["test.a"]["completed"],
        by_job["test.a"]["failed"],
        by_job["test.a"]["failureRate"],
    )
    assert {"avg": 2.0, "p95": 3.0, "max": 3.0} == by_job["test.a"]["waitSeconds"]
    assert (1, 0) == (by_job["test.b"]["completed"], by_job["test.b"]["failed"])
    assert datetime.fromisoformat(day["rolledUntil"]) > now - timedelta(minutes=10)

    week = admin.get(f"{BOARD}/api/history", params={"window": "7d"}).json()
    assert ("7d", 56, 3 * 3600) == (week["window"], len(week["steps"]), week["stepSeconds"])
    # The last 3-hour step runs past now: the page says it shows jobs up to now, not past it.
    assert datetime.fromisoformat(week["until"]) <= datetime.now(UTC)
    assert (3, 1) == (week["completed"], week["failed"])
    assert {"test.a": 1, "test.b": 2} == {row["job"]: row["completed"] for row in week["jobTypes"]}

    page = admin.get(f"{BOARD}/history", params={"window": "7d"})
    assert 200 == page.status_code
    assert "Jobs finished in the last 7 days" in page.text
    assert '<svg class="chart"' in page.text and '<polyline class="completed"' in page.text
    assert ">test.a</a>" in page.text and ">test.b</a>" in page.text
    assert f'href="{BOARD}/history"' in admin.get(f"{BOARD}/").text  # linked from the overview


def test_an_unknown_history_window_is_refused_in_one_line(open_board: Callable[..., Board]) -> None:
    admin = open_board(worker=False).signed_in(*ADMIN)
    answer = admin.get(f"{BOARD}/api/history", params={"window": "30d"})
    assert 400 == answer.status_code
    assert {"error": "window must be one of 24h, 7d, not '30d'"} == answer.json()
    page = admin.get(f"{BOARD}/history", params={"window": "1y"})
    assert 400 == page.status_code and "window must be one of 24h, 7d" in page.text


def test_jobs_an_admin_cleans_up_on_the_board_stay_in_the_history(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    _many(board.database_url, "test.a", "COMPLETED", 3, datetime.now(UTC) - timedelta(days=10), "old-")
    cleaned = board.client(headers={"authorization": f"Bearer {TOKEN}"}).post(
        f"{BOARD}/api/clean", json={"state": "completed", "olderThanDays": 7, "confirm": True}
    )
    assert 3 == cleaned.json()["count"]
    assert {"test.a": (3, 0, 0)} == _counts(board.database_url)


def test_the_history_is_closed_to_strangers(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    stranger = board.client()
    assert 401 == stranger.get(f"{BOARD}/api/history").status_code
    assert 303 == stranger.get(f"{BOARD}/history").status_code
