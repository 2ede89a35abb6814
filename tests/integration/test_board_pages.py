"""The board's jobs list and job page as an admin reads them (issue 20): display names, durations,
times in UTC, short ids, actions that apply, page counts, muted past errors, the options a user
set, and workers named alike everywhere."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable

import psycopg
import pytest

from docjobs import jobs
from tests.conftest import job_row, wait_for
from tests.support.board import BOARD, TOKEN, Board, set_job


def _buttons(page: str) -> list[str]:
    """The labels of the job page's action buttons, in order."""
    actions = page[page.index("<h2>Actions</h2>") :]
    return re.findall(r'<button type="submit"(?: class="\w+")?>([^<]+)</button>', actions)


def _row(listing: str, job_id: str) -> str:
    """The jobs list's table row of ``job_id``."""
    match = re.search(r'<tr class="status-\w+">(?:(?!</tr>).)*value="' + re.escape(job_id) + r'".*?</tr>',
                      listing, re.DOTALL)  # fmt: skip
    assert match is not None, f"no row for {job_id}"
    return match[0]


def test_a_job_is_listed_by_its_display_name_linked_with_the_last_digits_of_its_id(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True, worker=False)
    sent = [jobs.trigger("test.record", {"key": f"twin {n}"}, delay=3600).message_id for n in range(2)]
    client = board.client()
    listing = client.get(f"{BOARD}/jobs").text
    for job_id in sent:
        row = _row(listing, job_id)
        # The name is the link; the id is short, its random end, and whole in the tooltip.
        assert f'<a class="job-name" href="{BOARD}/jobs/{job_id}">Record</a>' in row
        assert f'<code class="job-id" title="{job_id}">…{job_id[-12:]}</code>' in row
        assert f">{job_id}<" not in row
    assert sent[0][-12:] != sent[1][-12:]  # sent in one go, their ends still tell them apart
    page = client.get(f"{BOARD}/jobs/{sent[0]}").text
    assert re.search(r"<h1>Record <span class=\"status", page)
    assert f'<code class="job-id-full">{sent[0]}</code>' in page


def test_the_list_shows_how_long_each_job_ran_waited_or_has_been_running(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True, worker=False)
    url = board.database_url
    ran, waiting, running, later = (
        jobs.trigger("test.record", {"key": key}, delay=3600).message_id
        for key in ("ran", "waiting", "running", "later")
    )
    set_job(url, ran, "status = 'COMPLETED', started_at = now() - interval '95 seconds', "
                   "completed_at = now() - interval '93.5 seconds'")  # fmt: skip
    set_job(url, waiting, "run_at = now() - interval '3 minutes 10 seconds'")
    set_job(url, running, "status = 'PROCESSING', attempts = 1, started_at = now() - interval '12 seconds'")
    listing = board.client().get(f"{BOARD}/jobs").text
    assert '<th class="num">Duration</th>' in listing
    durations = {job_id: re.findall(r'<td class="num">([^<]*)</td>', _row(listing, job_id))[-1]
                 for job_id in (ran, waiting, running, later)}  # fmt: skip
    assert {ran: "1.5 s", waiting: "waiting 3 min 10 s", running: "running 12 s", later: "due in 1 h"} == (
        durations
    )


def test_lists_say_how_long_ago_with_the_utc_time_in_the_tooltip_and_a_job_page_says_utc_to_the_second(
    open_board: Callable[..., Board], database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:  # whatever zone the database speaks
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET timezone TO 'America/New_York'")
    board = open_board(development=True, worker=False)
    url = board.database_url
    job_id = jobs.trigger("test.record", {"key": "old"}, delay=3600).message_id
    set_job(url, job_id, "status = 'FAILED', submitted_at = '2026-12-06 16:02:11.654321+00', "
                      "run_at = '2026-12-06 16:02:11.654321+00', started_at = '2026-12-06 16:02:12.1+00', "
                      "completed_at = '2026-12-06 17:02:12.5+01', last_error = 'boom'")  # fmt: skip
    client = board.client()
    row = _row(client.get(f"{BOARD}/jobs").text, job_id)
    assert re.search(
        r'<time datetime="[^"]+" title="2026-12-06 16:02:11 UTC">\d+ (min|h|d)( \d+ (min|h))? ago</time>', row
    )
    assert 'title="2026-12-06 16:02:12 UTC"' in row  # finished at 17:02:12 +01:00
    page = client.get(f"{BOARD}/jobs/{job_id}").text
    facts = page[page.index('<dl class="facts">') : page.index("</dl>")]
    assert ">2026-12-06 16:02:11 UTC</time>" in facts
    assert ">2026-12-06 16:02:12 UTC</time>" in facts
    assert "ran 400 ms" in facts
    assert "654321" not in page
    shown = re.sub(r"<[^>]+>", "", facts)
    assert not re.search(r"\d\d:\d\d:\d\d(?! UTC)", shown), shown  # no time without its zone


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("completed", ["Run again", "Delete"]),
        ("delayed", ["Run now", "Cancel", "Delete"]),
        ("waiting", ["Cancel", "Delete"]),
        ("failed", ["Retry", "Delete", "Retry with edited payload"]),
        ("cancelled", ["Retry", "Delete", "Retry with edited payload"]),
        ("running", []),
    ],
)
def test_a_job_page_offers_only_the_actions_that_apply_to_its_state(
    open_board: Callable[..., Board], state: str, expected: list[str]
) -> None:
    board = open_board(development=True, worker=False)
    job_id = jobs.trigger("test.record", {"key": state}, delay=3600).message_id
    set_job(board.database_url, job_id, {
        "completed": "status = 'COMPLETED', started_at = now(), completed_at = now()",
        "delayed": "run_at = now() + interval '1 hour'",
        "waiting": "run_at = now() - interval '1 second'",
        "failed": "status = 'FAILED', completed_at = now(), last_error = 'boom'",
        "cancelled": "status = 'CANCELLED', completed_at = now()",
        "running": "status = 'PROCESSING', attempts = 1, started_at = now()",
    }[state])  # fmt: skip
    page = board.client().get(f"{BOARD}/jobs/{job_id}").text
    assert expected == _buttons(page)
    assert "Promote" not in page
    if state == "running":
        assert "A running job cannot be stopped from the board" in page


def test_the_server_refuses_an_action_that_does_not_apply_and_changes_nothing(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True, worker=False)
    url = board.database_url
    done = jobs.trigger("test.record", {"key": "done"}, delay=3600).message_id
    set_job(url, done, "status = 'COMPLETED', started_at = now(), completed_at = now()")
    due = jobs.trigger("test.record", {"key": "due"}).message_id
    api = board.client(headers={"authorization": f"Bearer {TOKEN}"})
    refused = {
        (job_id, action): api.post(f"{BOARD}/api/jobs/{job_id}/{action}")
        for job_id, action in [(done, "retry"), (done, "cancel"), (done, "run-now"), (due, "run-now"),
                               (due, "promote"), (due, "retry"), (due, "run-again")]
    }  # fmt: skip
    assert {409} == {answer.status_code for answer in refused.values()}
    assert (f"cannot retry job {done}: it is COMPLETED; retry works on a failed or cancelled job"
            == refused[done, "retry"].json()["error"])  # fmt: skip
    assert (f"cannot run job {due} now: it is PENDING and due already; run now works on a delayed job"
            == refused[due, "promote"].json()["error"])  # fmt: skip
    assert ("COMPLETED", "PENDING") == (job_row(url, done)["status"], job_row(url, due)["status"])
    unknown = api.post(f"{BOARD}/api/jobs/{done}/bogus")
    assert (404, "no action 'bogus'") == (unknown.status_code, unknown.json()["error"].split(";")[0])
    # The page's form is refused the same way, in one line.
    client = board.client()
    form = client.post(f"{BOARD}/jobs/{done}/retry", data={"csrf": board.csrf(client)})
    assert 409 == form.status_code
    assert f"cannot retry job {done}: it is COMPLETED" in form.text
    assert [] == client.get(f"{BOARD}/api/audit").json()["entries"]


def test_run_now_is_the_delayed_jobs_action_and_the_old_name_still_works(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True)
    url = board.database_url
    client = board.client()
    csrf = board.csrf(client)
    first, second = (jobs.trigger("test.record", {"key": k}, delay=3600).message_id for k in ("a", "b"))
    assert 303 == client.post(f"{BOARD}/jobs/{first}/run-now", data={"csrf": csrf}).status_code
    assert (
        200 == client.post(f"{BOARD}/api/jobs/{second}/promote", headers={"x-csrf-token": csrf}).status_code
    )
    wait_for(lambda: {job_row(url, first)["status"], job_row(url, second)["status"]} == {"COMPLETED"})
    entries = client.get(f"{BOARD}/api/audit").json()["entries"]
    assert [("run-now", second), ("run-now", first)] == [(e["action"], e["target"]) for e in entries]


def test_run_again_sends_a_completed_job_again_as_a_new_job_once_confirmed(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True)
    url = board.database_url
    client = board.client()
    csrf = board.csrf(client)
    done = jobs.trigger("test.record", {"key": "again"}).message_id
    wait_for(lambda: job_row(url, done)["status"] == "COMPLETED")
    unconfirmed = client.post(f"{BOARD}/jobs/{done}/run-again", data={"csrf": csrf})
    assert 400 == unconfirmed.status_code
    assert f"run job {done} again must be confirmed" in unconfirmed.text
    answer = client.post(f"{BOARD}/jobs/{done}/run-again", data={"csrf": csrf, "confirm": "yes"})
    assert 303 == answer.status_code
    copy = urllib.parse.unquote(answer.headers["location"].rsplit("/", 1)[1])
    assert copy != done
    wait_for(lambda: job_row(url, copy)["status"] == "COMPLETED")
    assert (job_row(url, done)["payload"], "COMPLETED") == (
        job_row(url, copy)["payload"],
        job_row(url, done)["status"],
    )
    entry = client.get(f"{BOARD}/api/audit").json()["entries"][0]
    assert ("run-again", done, copy) == (entry["action"], entry["target"], entry["detail"]["ran_again_as"])


def test_lists_tell_the_total_and_number_their_pages(open_board: Callable[..., Board]) -> None:
    board = open_board(development=True, worker=False)
    for n in range(120):
        jobs.trigger("test.record", {"key": f"job {n}"}, delay=3600)
    jobs.trigger("test.sleep", {"key": "other", "seconds": 0}, delay=3600)
    client = board.client()
    first = client.get(f"{BOARD}/jobs").text
    assert '<span class="range">1–50 of 121</span>' in first
    assert re.search(r'<span class="current" aria-current="page">1</span>\s*<a href="[^"]*page=2">2</a>\s*'
                     r'<a href="[^"]*page=3">3</a>', first)  # fmt: skip
    last = client.get(f"{BOARD}/jobs", params={"job": "test.record", "page": "3"}).text  # a counted filter
    assert '<span class="range">101–120 of 120</span>' in last
    assert 20 == last.count('class="status-pending"')
    assert 'rel="next"' not in last
    middle = client.get(f"{BOARD}/jobs", params={"job": "test.record", "page": "2"}).text
    assert '<span class="range">51–100 of 120</span>' in middle
    api = client.get(f"{BOARD}/api/jobs", params={"state": "scheduled"}).json()
    assert (121, True, 1) == (api["total"], api["totalExact"], api["page"])
    for bad in ("0", "201", "two"):
        refused = client.get(f"{BOARD}/jobs", params={"page": bad})
        assert 400 == refused.status_code
        assert "page must be a whole number from 1 to 200" in refused.text


def test_numbers_sit_under_right_aligned_headers_and_failed_counts_stand_out(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True, worker=False)
    failed = jobs.trigger("test.record", {"key": "failed"}, delay=3600).message_id
    set_job(
        board.database_url, failed, "status = 'FAILED', attempts = 4, completed_at = now(), last_error = 'x'"
    )
    listing = board.client().get(f"{BOARD}/jobs").text
    headers = re.findall(r"<th( class=\"num\")?>([^<]+)</th>", listing)
    assert {name for aligned, name in headers if aligned} == {"Attempts", "Submitted", "Finished", "Duration"}
    assert '<td class="num failed-count">4</td>' in _row(listing, failed)


def test_a_completed_job_that_once_failed_shows_its_old_error_muted(open_board: Callable[..., Board]) -> None:
    board = open_board(development=True)
    url = board.database_url
    flaky = jobs.trigger("test.fail_once", {"key": "muted"}).message_id
    wait_for(lambda: job_row(url, flaky)["status"] == "COMPLETED")
    client = board.client()
    row = _row(client.get(f"{BOARD}/jobs").text, flaky)
    assert re.search(
        r'<td class="last-error past-error">failed once, then succeeded: [^<]*first attempt fails', row
    )
    assert 'last-error error"' not in row  # not in red
    page = client.get(f"{BOARD}/jobs/{flaky}").text
    assert re.search(r'<pre class="past-error">[^<]*first attempt fails', page)
    assert not re.search(r'<pre class="error">[^<]*first attempt fails', page)


def test_the_job_page_shows_the_options_a_user_set_and_hides_internal_ones(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True, worker=False)
    job_id = jobs.trigger("test.record", {"key": "options"}, delay=7200).message_id
    internal = '{"requeue_timestamp": 1765036931000, "retries": 2, "traceback": "Traceback ...", ' \
               '"redis_message_id": "abc", "eta": 1765036931000, "time_limit": 60000}'  # fmt: skip
    set_job(board.database_url, job_id, "options = %s::jsonb, priority = 5", internal)
    page = board.client().get(f"{BOARD}/jobs/{job_id}").text
    options = page[page.index("<h2>Options</h2>") : page.index("<h2>Attempts</h2>")]
    shown = re.findall(r"<dt><code>([^<]+)</code></dt>", options)
    assert ["priority", "max_retries", "delay", "time_limit"] == shown
    assert "<code>5</code>" in options
    assert re.search(r"<code>2 h \(until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)</code>", options)
    for name in ("requeue_timestamp", "retries", "traceback", "redis_message_id", "eta"):
        assert f"<code>{name}</code>" not in options


def test_attempts_name_the_worker_as_the_workers_table_does(open_board: Callable[..., Board]) -> None:
    board = open_board(development=True)  # the app's embedded worker runs the job
    url = board.database_url
    flaky = jobs.trigger("test.fail_once", {"key": "worker"}).message_id
    wait_for(lambda: job_row(url, flaky)["status"] == "COMPLETED")
    with psycopg.connect(url) as conn:
        worker_id, hostname, pid = conn.execute(
            "SELECT worker.id, hostname, pid FROM background_job_attempt JOIN worker ON worker.id = "
            "background_job_attempt.worker WHERE job_id = %s", (flaky,)).fetchone()  # fmt: skip
    named = f'{hostname}:{pid} <code class="worker-id" title="worker {worker_id}">{worker_id[:8]}</code>'
    client = board.client()
    assert f"on {named}</p>" in client.get(f"{BOARD}/jobs/{flaky}").text
    overview = client.get(f"{BOARD}/").text
    workers = overview[overview.index("<h2>Workers</h2>") :]
    assert f"<td>{named}</td>" in workers


def test_past_a_thousand_jobs_the_total_comes_from_the_shared_counts_or_says_more_than(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True, worker=False)
    jobs.trigger_many("test.record", [{"key": f"many {n}"} for n in range(1001)], delay=3600)
    client = board.client()
    by_job = client.get(f"{BOARD}/jobs", params={"job": "test.record"}).text
    assert '<span class="range">1–50 of more than 1,000</span>' in by_job
    by_state = client.get(f"{BOARD}/api/jobs", params={"state": "scheduled"}).json()
    assert (1001, True) == (by_state["total"], by_state["totalExact"])


def test_the_overview_says_every_time_in_utc(open_board: Callable[..., Board]) -> None:
    board = open_board(development=True)
    client = board.client()
    wait_for(lambda: "<h2>Workers</h2>" in (page := client.get(f"{BOARD}/").text) and "Up since" in page)
    page = client.get(f"{BOARD}/").text
    workers = page[page.index("<h2>Workers</h2>") : page.index("<h2>Schedules</h2>")]
    schedules = page[page.index("<h2>Schedules</h2>") :]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    assert re.search(r"<td>" + stamp + r"</td>", workers), "a worker's start has no time zone"
    next_runs = re.findall(r"<td>(\d{4}-\d\d-\d\d [^<]*)</td>", schedules)
    assert next_runs, "no schedule's next run is shown"
    assert all(re.fullmatch(stamp, run) for run in next_runs), next_runs
