"""Job log lines and progress (docjobs.log_line, docjobs.set_progress) on every provider.

They land in PostgreSQL with the job's history, show in the board's JSON API and page,
stay within their bounds, go with the job at retention, and never fail a job when the
database is down.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import psycopg
import pytest
from docjobs_devkit import FAST_SETTINGS, PostgresServer

from docjobs import joblogs, jobs
from docjobs.brokers.joblogs import writer_of
from docjobs.db.migrate import migrate
from docjobs.runtime import Runtime
from docjobs.settings import Settings
from tests.conftest import events, job_row, wait_for
from tests.support import joblog_actors
from tests.support.board import ADMIN, BOARD, TOKEN, Board, job_status


def _settled(board: Board, job_id: str, status: str) -> bool:
    if board.runtime.history is not None:
        board.runtime.history.flush()
    return job_status(board.database_url, job_id) == status


def _log_rows(url: str, job_id: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        lines = conn.execute(
            "SELECT seq, attempt, line FROM background_job_log WHERE job_id = %s ORDER BY seq", (job_id,)
        ).fetchall()
        heads = conn.execute(
            "SELECT progress, lines FROM background_job_progress WHERE job_id = %s", (job_id,)
        ).fetchall()
    return lines, heads


@pytest.mark.parametrize("provider", ["local", "bullmq", "inngest"])
def test_an_actors_lines_and_progress_land_on_its_job_and_show_in_the_json_api_and_page(
    open_board: Callable[..., Board], provider: str
) -> None:
    board = open_board(provider=provider)
    job = jobs.trigger("test.log_steps", {"key": provider})
    retried = jobs.trigger("test.log_fail_once", {"key": "twice"})
    wait_for(lambda: _settled(board, job.message_id, "COMPLETED"), 20)
    wait_for(lambda: _settled(board, retried.message_id, "COMPLETED"), 20)
    # Each attempt's lines are kept, and say which attempt wrote them.
    assert [(1, 1, "twice: attempt 1"), (2, 2, "twice: attempt 2")] == _log_rows(
        board.database_url, retried.message_id
    )[0]
    # Both steps ran once; on inngest the calls that replayed them wrote no line twice.
    assert ["first", "second"] == [event["kind"] for event in events(board.database_url, provider)]
    client = board.client(headers={"authorization": f"Bearer {TOKEN}"})
    answer = client.get(f"{BOARD}/api/jobs/{job.message_id}")
    assert 200 == answer.status_code, answer.text
    log = answer.json()["log"]
    assert 100 == log["progress"]
    assert 3 == log["written"]
    assert [
        (1, 1, f"{provider}: starting"),
        (2, 1, "<script>alert('x')</script>"),
        (3, 1, f"{provider}: done"),
    ] == [(entry["seq"], entry["attempt"], entry["line"]) for entry in log["lines"]]
    page = board.signed_in(*ADMIN).get(f"{BOARD}/jobs/{job.message_id}").text
    assert '<progress max="100" value="100">' in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page  # shown as text
    assert "<script>alert(" not in page


def test_progress_may_be_a_small_object_shown_as_json(pg_runtime: Runtime, database_url: str) -> None:
    store = pg_runtime.store
    assert store is not None
    store.logs.set_progress("objects", joblogs.progress_text({"page": 3, "pages": 50}), timeout_seconds=1)
    assert {"page": 3, "pages": 50} == store.logs.read("objects", limit=10)["progress"]


def test_a_line_is_masked_as_error_text_is(pg_runtime: Runtime) -> None:
    store = pg_runtime.store
    assert store is not None
    store.logs.append(
        "masked", 1, "fetched postgresql://app:hunter22@db/docs", max_lines=10, timeout_seconds=1
    )
    assert ["fetched postgresql://app:***@db/docs"] == [
        entry["line"] for entry in store.logs.read("masked", limit=10)["lines"]
    ]


def test_a_job_keeps_its_newest_lines_each_cut_to_the_line_cap(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    writer = writer_of(pg_runtime.broker)
    assert writer is not None
    writer.max_lines = 5  # the cap of joblogs.MAX_LINES_PER_JOB, smaller so the test is quick
    start_worker(pg_runtime.broker, threads=1)
    job = jobs.trigger("test.log_many", {"key": "chatty", "count": 8, "chars": joblogs.MAX_LINE_CHARS})
    pg_runtime.join()
    assert "COMPLETED" == job_row(database_url, job.message_id)["status"]
    lines, heads = _log_rows(database_url, job.message_id)
    assert [4, 5, 6, 7, 8] == [seq for seq, _, _ in lines]  # the oldest three dropped
    assert [(100, 8)] == heads  # the last progress, and every line counted
    for seq, _, line in lines:
        assert line.startswith(f"chatty line {seq} x")
        cut = len(f"chatty line {seq} ")  # the line had this many characters more than the cap
        assert line.endswith(f"… ({cut} more characters cut)")
        assert joblogs.MAX_LINE_CHARS + len(f"… ({cut} more characters cut)") == len(line)


@pytest.mark.parametrize(
    ("progress", "error"),
    [
        (150, "progress must be a number from 0 to 100, not 150"),
        ("half", "progress must be a number from 0 to 100 or a JSON object, not str"),
        ({"blob": "x" * 1100}, "progress is 1111 bytes as JSON, over the limit of 1024"),
    ],
)
def test_a_bad_progress_fails_the_job_at_once_naming_what_is_wrong(
    pg_runtime: Runtime,
    start_worker: Callable[..., dramatiq.Worker],
    database_url: str,
    progress: Any,
    error: str,
) -> None:
    start_worker(pg_runtime.broker, threads=1)
    job = jobs.trigger("test.log_bad", {"key": "bad", "progress": progress})
    pg_runtime.join()
    row = job_row(database_url, job.message_id)
    assert "FAILED" == row["status"]
    assert f"JobLogError: {error}" == row["last_error"]
    assert ["ran"] == [event["kind"] for event in events(database_url, "bad")]  # not retried
    assert ([], []) == _log_rows(database_url, job.message_id)


def test_retention_deletes_a_jobs_lines_and_progress_with_it_and_logs_no_job_claims(
    pg_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    start_worker(pg_runtime.broker, threads=1)
    job = jobs.trigger("test.log_many", {"key": "kept", "count": 3})
    pg_runtime.join()
    store = pg_runtime.store
    assert store is not None
    # Lines of jobs whose history never came (bullmq events dropped), one old and one new.
    store.logs.append("ghost-old", 1, "lost", max_lines=10, timeout_seconds=1)
    store.logs.append("ghost-new", 1, "history on its way", max_lines=10, timeout_seconds=1)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE background_job_progress SET updated_at = now() - interval '3 days'"
            " WHERE job_id IN (%s, 'ghost-old')",
            (job.message_id,),
        )
    assert 0 == store.jobs.delete_finished(2)  # the job finished just now: kept, its lines too
    assert 3 == len(_log_rows(database_url, job.message_id)[0])
    assert ([], []) == _log_rows(database_url, "ghost-old")
    assert 1 == len(_log_rows(database_url, "ghost-new")[0])  # its history may still come
    assert 1 == store.jobs.delete_finished(2, now=datetime.now(UTC) + timedelta(days=3))
    assert ([], []) == _log_rows(database_url, job.message_id)
    assert ([], []) == _log_rows(database_url, "ghost-new")


@pytest.fixture
def own_postgres() -> Any:
    """A PostgreSQL server of this test's own, which it stops half-way."""
    server = PostgresServer(settings=FAST_SETTINGS).start()
    try:
        url = server.create_database("joblogs")
        migrate(url)
        yield server, url
    finally:
        server.stop()


def test_a_job_that_logs_while_the_database_is_down_completes_without_waiting_on_each_line(
    own_postgres: Any,
    environ: dict[str, str],
    bullmq_environ: dict[str, str],
    start_worker: Callable[..., dramatiq.Worker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from docjobs import runtime

    server, url = own_postgres
    current = runtime.configure(Settings.from_environ({**bullmq_environ, "NEXT_PRIVATE_DATABASE_URL": url}))
    start_worker(current.broker, threads=1)
    warm = jobs.trigger("test.log_many", {"key": "warm", "count": 1})
    wait_for(lambda: joblog_actors.finished.get("warm"))
    current.join()
    assert 1 == len(_log_rows(url, warm.message_id)[0])
    server.process.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown: sessions cut at once
    server.process.wait(30)
    caplog.set_level(logging.WARNING, "docjobs.brokers.joblogs")
    started = time.monotonic()
    outage = jobs.trigger("test.log_many", {"key": "outage", "count": 200})
    wait_for(lambda: joblog_actors.finished.get("outage"), 20)
    elapsed = time.monotonic() - started
    # One wait for the database at most, then the lines are dropped at once.
    assert elapsed < 5, elapsed
    warnings = [r.getMessage() for r in caplog.records if r.name == "docjobs.brokers.joblogs"]
    assert 1 == len(warnings), warnings
    assert warnings[0].startswith("Job log lines are dropped for 5 s (1 so far): the database failed:")
    assert not [w for w in warnings if url in w or os.environ.get("PGPASSWORD", "\0") in w]
    server.restart()
    history = current.history
    assert history is not None

    def recorded() -> bool:
        try:
            history.flush()
        except psycopg.Error:
            return False  # a pooled connection from before the restart: the pool drops it
        return job_status(url, outage.message_id) == "COMPLETED"

    # The job's history, kept in Redis meanwhile, says it completed; none of its lines was kept.
    wait_for(recorded, 20)
    assert ([], []) == _log_rows(url, outage.message_id)
    runtime.reset()
