"""The overview's queue table and its JSON twin: each queue's depth and wait times (issue 22)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import dramatiq
import httpx
import psycopg
import pytest

from docjobs import jobs
from tests.conftest import wait_for
from tests.support.board import ADMIN, BOARD, Board, job_status


def queue_row(admin: httpx.Client, queue: str) -> dict[str, Any] | None:
    rows = admin.get(f"{BOARD}/api/overview").json()["queues"]
    return next((row for row in rows if row["queue"] == queue), None)


@pytest.mark.parametrize("provider", ["local", "bullmq"])
def test_the_overview_shows_how_many_jobs_wait_in_each_queue(
    open_board: Callable[..., Board], provider: str
) -> None:
    board = open_board(provider=provider, worker=False)
    for number in range(3):
        jobs.trigger("test.slow-seal", {"key": f"waiting-{number}", "seconds": 0})
    jobs.trigger("test.record", {"key": "other-queue"})
    admin = board.signed_in(*ADMIN)

    sealing = wait_for(lambda: (row := queue_row(admin, "sealing")) is not None and row["depth"] == 3 and row)

    assert 3 == sealing["depth"]
    assert 0 == sealing["started_last_hour"]
    assert sealing["wait_p50_seconds"] is None
    page = admin.get(f"{BOARD}/").text
    assert re.search(r'<td>sealing</td>.*?<td class="num queue-depth">3</td>', page, re.S)
    assert "Wait p50 / p95 (1 h)" in page


def test_the_overview_shows_how_long_a_queue_s_jobs_waited_once_due(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    sent = [jobs.trigger("test.record", {"key": f"late-{number}"}) for number in range(3)]
    with psycopg.connect(board.database_url, autocommit=True) as conn:  # due a minute ago, nobody ran them
        conn.execute(
            "UPDATE background_job SET run_at = now() - interval '60 seconds' WHERE queue = 'default'"
        )
    board.runtime.broker.emit_after("process_boot")
    worker = dramatiq.Worker(board.runtime.broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        for message in sent:
            wait_for(lambda m=message: job_status(board.database_url, m.message_id) == "COMPLETED")
    finally:
        worker.stop(timeout=10_000)
    admin = board.signed_in(*ADMIN)

    default = queue_row(admin, "default")

    assert default is not None
    assert 3 == default["started_last_hour"]
    assert 60 <= default["wait_p50_seconds"] <= default["wait_p95_seconds"] < 120
    page = admin.get(f"{BOARD}/").text
    assert re.search(r'<td class="num queue-wait">(6\d|1[01]\d)\.\d s / (6\d|1[01]\d)\.\d s</td>', page)


@pytest.mark.parametrize("provider", ["bullmq", "inngest"])
def test_the_wait_times_come_from_the_history_elsewhere(
    open_board: Callable[..., Board], provider: str
) -> None:
    board = open_board(provider=provider)
    sent = [jobs.trigger("test.record", {"key": f"ran-{number}"}) for number in range(3)]
    for message in sent:
        wait_for(lambda m=message: job_status(board.database_url, m.message_id) == "COMPLETED")
    admin = board.signed_in(*ADMIN)

    default = queue_row(admin, "default")

    assert default is not None
    assert 3 == default["started_last_hour"]
    assert 0 <= default["wait_p50_seconds"] <= default["wait_p95_seconds"] < 10
