"""The overview's activity chart against a real PostgreSQL: every bucket of the chosen window,
each counting the jobs that finished in it, drawn with axes, a legend and one point per bucket."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from docjobs.db.board import BoardStore
from docjobs.runtime import Runtime
from docjobs.web.board import charts
from tests.support.board import ADMIN, BOARD, Board

#: A fixed "now" for the store-level test: 10:17:42.5 UTC, inside a bucket of every window.
NOW = datetime(2026, 3, 2, 10, 17, 42, 500_000, tzinfo=UTC)


def _finished(database_url: str, rows: list[tuple[str, str, datetime, float]]) -> None:
    """Insert finished jobs: (id, status, completed_at, run seconds)."""
    with psycopg.connect(database_url) as conn:
        for job_id, status, completed_at, seconds in rows:
            conn.execute(
                "INSERT INTO background_job (id, actor, name, status, started_at, completed_at) "
                "VALUES (%s, 'test.record', 'test.record', %s, %s, %s)",
                (job_id, status, completed_at - timedelta(seconds=seconds), completed_at),
            )


@pytest.mark.parametrize("name", ["15m", "1h", "24h"])
def test_each_bucket_counts_the_jobs_that_finished_in_it(pg_runtime: Runtime, name: str) -> None:
    window = charts.WINDOWS[name]
    step = timedelta(seconds=window.step_seconds)
    start, end = charts.span(window, NOW)
    assert end - start == timedelta(seconds=window.seconds)
    assert start <= NOW < end and end - NOW <= step  # the last bucket holds now
    middle = start + (window.buckets // 2) * step
    database_url = pg_runtime.settings.database_url
    assert database_url is not None
    _finished(
        database_url,
        [
            ("first-edge", "COMPLETED", start, 2.0),  # a bucket includes its start
            ("first", "FAILED", start + step / 2, 4.0),
            ("middle-1", "COMPLETED", middle, 1.0),
            ("middle-2", "COMPLETED", middle + step - timedelta(microseconds=1), 3.0),
            ("middle-3", "FAILED", middle + step / 3, 5.0),
            ("last", "COMPLETED", NOW - timedelta(seconds=1), 0.5),
            ("too-old", "COMPLETED", start - timedelta(microseconds=1), 1.0),
            ("too-new", "COMPLETED", end, 1.0),
            ("cancelled", "CANCELLED", middle, 1.0),
        ],
    )
    assert pg_runtime.database is not None
    rows = BoardStore(pg_runtime.database).activity(start, end, window.step_seconds)
    activity = charts.activity(rows, window, start)

    assert window.buckets == len(activity.buckets)
    assert [start + i * step for i in range(window.buckets)] == [b.start for b in activity.buckets]
    counts = {i: (b.completed, b.failed) for i, b in enumerate(activity.buckets) if b.completed or b.failed}
    last = window.buckets - 1
    assert {0: (1, 1), window.buckets // 2: (2, 1), last: (1, 0)} == counts
    assert (4, 2) == (activity.completed, activity.failed)
    assert abs(activity.failure_rate - 2 / 6) < 1e-9
    assert (0.5, 0.5, 0.5) == (
        activity.buckets[last].p50,
        activity.buckets[last].p95,
        activity.buckets[last].p99,
    )
    assert 3.0 == activity.buckets[window.buckets // 2].p50  # of 1, 3 and 5 s
    assert activity.buckets[1].p95 is None  # an empty bucket has no run time


def test_the_overview_api_answers_every_bucket_of_the_chosen_window(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    ago = {"a": 20, "b": 20, "c": 200, "d": 3000, "e": 50_000}  # seconds before now
    with psycopg.connect(board.database_url) as conn:
        for job_id, seconds in ago.items():
            conn.execute(
                "INSERT INTO background_job (id, actor, name, status, started_at, completed_at) "
                "VALUES (%s, 'test.record', 'test.record', %s, now() - %s * interval '1 second', "
                "now() - %s * interval '1 second')",
                (job_id, "FAILED" if job_id == "b" else "COMPLETED", seconds + 1, seconds),
            )
        finished = dict(conn.execute("SELECT id, completed_at FROM background_job").fetchall())
    admin = board.signed_in(*ADMIN)
    for name, buckets, step_seconds in (("15m", 30, 30), ("1h", 60, 60), ("24h", 48, 1800)):
        activity = admin.get(f"{BOARD}/api/overview", params={"window": name}).json()["activity"]
        steps = activity["steps"]
        starts = [datetime.fromisoformat(step["at"]) for step in steps]
        assert (name, buckets) == (activity.get("window"), len(steps))
        assert all(b - a == timedelta(seconds=step_seconds) for a, b in itertools.pairwise(starts))
        inside = {job_id for job_id, at in finished.items() if at >= starts[0]}
        expected = [0] * len(steps)
        for job_id in inside:
            expected[(finished[job_id] - starts[0]) // timedelta(seconds=step_seconds)] += 1
        assert expected == [step["completed"] + step["failed"] for step in steps], name
        assert (len(inside) - ("b" in inside), int("b" in inside)) == (
            activity["completed"],
            activity["failed"],
        )
    # The windows reach as far back as they say.
    assert {"a", "b", "c"} == _jobs_in(admin, "15m", finished)
    assert {"a", "b", "c", "d"} == _jobs_in(admin, "1h", finished)
    assert set(ago) == _jobs_in(admin, "24h", finished)


def _jobs_in(admin: httpx.Client, window: str, finished: dict[str, datetime]) -> set[str]:
    answer = admin.get(f"{BOARD}/api/overview", params={"window": window}).json()["activity"]
    start = datetime.fromisoformat(answer["from"])
    return {job_id for job_id, at in finished.items() if at >= start}


def test_an_unknown_window_is_refused_in_one_line_naming_the_choices(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(worker=False)
    admin = board.signed_in(*ADMIN)
    api = admin.get(f"{BOARD}/api/overview", params={"window": "7d"})
    assert (400, "window must be one of 15m, 1h, 24h, not '7d'") == (api.status_code, api.json()["error"])
    page = admin.get(f"{BOARD}/", params={"window": "7d"})
    assert 400 == page.status_code
    assert "window must be one of 15m, 1h, 24h, not &#39;7d&#39;" in page.text


@pytest.mark.parametrize(
    ("name", "points", "tick_minutes", "per"),
    [("15m", 30, 2, "per 30 s"), ("1h", 60, 10, "per minute"), ("24h", 48, 180, "per 30 min")],
)
def test_the_chart_has_labelled_axes_a_legend_and_a_point_per_bucket(
    open_board: Callable[..., Board], name: str, points: int, tick_minutes: int, per: str
) -> None:
    board = open_board(worker=False)
    with psycopg.connect(board.database_url) as conn:
        for n, status in enumerate(["COMPLETED"] * 7 + ["FAILED"] * 2):
            conn.execute(
                "INSERT INTO background_job (id, actor, name, status, started_at, completed_at) "
                "VALUES (%s, 'test.record', 'test.record', %s, now() - interval '2 s', now() - interval '1 s')",
                (f"job-{n}", status),
            )
    page = board.signed_in(*ADMIN).get(f"{BOARD}/", params={"window": name}).text
    svg = page[page.index('<svg class="chart"') : page.index("</svg>")]

    def polyline(kind: str) -> list[tuple[float, float]]:
        found = re.search(rf'<polyline class="{kind}" points="([^"]+)"', svg)
        assert found is not None, kind
        return [(float(x), float(y)) for x, y in (p.split(",") for p in found[1].split())]

    completed, failed = polyline("completed"), polyline("failed")
    assert points == len(completed) == len(failed)  # zeros included: no slope across empty buckets
    assert [x for x, _ in completed] == sorted(x for x, _ in completed)
    baseline = completed[0][1]
    busy = [i for i in range(points) if (completed[i][1], failed[i][1]) != (baseline, baseline)]
    assert 1 == len(busy) and busy[0] >= points - 2, busy  # the bucket of a second ago (or now's)
    assert completed[busy[0]][1] < failed[busy[0]][1] < baseline  # 7 above 2 above 0
    count_labels = re.findall(r'<text x="[\d.]+" y="[\d.]+" text-anchor="end">([\d,]+)</text>', svg)
    assert ["0", "2", "4", "6", "8"] == count_labels
    time_labels = re.findall(r'text-anchor="middle">([^<]+)</text>', svg)
    assert len(time_labels) >= 4
    for label in time_labels:
        if re.fullmatch(r"\d\d:\d\d", label):
            assert 0 == (int(label[:2]) * 60 + int(label[3:])) % tick_minutes, label
        else:
            assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}", label), label  # midnight names the day
    assert f">jobs {per}</text>" in svg
    assert ">time (UTC)</text>" in svg
    assert ">Completed</text>" in svg and ">Failed</text>" in svg
    assert re.search(
        r"<title>\d\d:\d\d(:\d\d)?–\d\d:\d\d(:\d\d)? UTC: 7 completed, 2 failed; p95 run time 1\.0 s", svg
    )
    assert 'polyline class="p95"' not in svg
    assert re.search(rf'<a href="[^"]*\?window={name}" aria-current="page">', page)
    assert re.search(r'<td class="num state-failed failed-count"><a [^>]+>2</a></td>', page)
    assert re.search(r'<th class="num">completed</th>', page)


def test_the_prometheus_gauges_keep_to_the_last_hour_whatever_the_page_shows(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(worker=False)
    with psycopg.connect(board.database_url) as conn:
        conn.execute(
            "INSERT INTO background_job (id, actor, name, status, started_at, completed_at) VALUES "
            "('recent', 'test.record', 'test.record', 'COMPLETED', now() - interval '3 s', now() - interval '2 s'),"
            "('earlier', 'test.record', 'test.record', 'FAILED', now() - interval '3 h', now() - interval '3 h')"
        )
    admin = board.signed_in(*ADMIN)
    day = admin.get(f"{BOARD}/api/overview", params={"window": "24h"}).json()["activity"]
    assert (1, 1) == (day["completed"], day["failed"])
    text = admin.get(f"{BOARD}/metrics").text
    assert 'docjobs_jobs_finished_last_hour{outcome="completed"} 1.0' in text
    assert 'docjobs_jobs_finished_last_hour{outcome="failed"} 0.0' in text
