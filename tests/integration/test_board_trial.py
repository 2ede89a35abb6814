"""What an outside attacker/admin trial of the board found (issue 20, round 2), each as a test: JSON
bodies read strictly, confirmations the API asks for too, true totals past the end, refusals that
name the cause, a retried job shown as it is, an edited payload kept, and smaller things."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest

from docjobs import jobs
from tests.conftest import job_row
from tests.support.board import ADMIN, BOARD, TOKEN, Board, job_status, set_job


def _counts(url: str) -> tuple[int, int]:
    """Jobs, and board audit entries: what a refused request must leave as it was."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM background_job), (SELECT count(*) FROM board_audit)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _api(board: Board) -> httpx.Client:
    return board.client(headers={"authorization": f"Bearer {TOKEN}"})


def _insert_jobs(url: str, count: int, actor: str = "test.record", status: str = "PENDING") -> None:
    """``count`` jobs in one statement, newest with the highest id (as UUIDv7s sort)."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO background_job (id, actor, name, status, payload, run_at)"
            " SELECT 'bulk-' || lpad(n::text, 6, '0'), %s, 'Record', %s, jsonb_build_object('key', 'k' || n),"
            "        now() + interval '1 hour'"
            " FROM generate_series(1, %s) AS n",
            (actor, status, count),
        )


# 1. Every JSON body is read strictly.


def test_a_misspelt_filter_key_is_refused_and_deletes_nothing(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    url = board.database_url
    for n in range(3):
        jobs.trigger("test.record", {"key": f"kept {n}"}, delay=3600)
    before = _counts(url)
    api = _api(board)
    answer = api.post(
        f"{BOARD}/api/bulk", json={"action": "delete", "filter": {"jobb": "x"}, "confirm": True}
    )
    assert (400, "unknown key 'filter.jobb': the JSON field 'filter' takes state, queue, job, q, since, "
                 "until, all; nothing was done") == (answer.status_code, answer.json()["error"])  # fmt: skip
    assert before == _counts(url)


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/api/jobs/{failed}/retry", {"payloadd": {"key": "x"}}, "'payloadd'"),
        ("/api/jobs/{failed}/delete", {"confirm": True, "force": True}, "'force'"),
        ("/api/trigger", {"job": "test.record", "payload": {"key": "a"}, "delay": 60, "id": "mine"},
         "'delay', 'id'"),
        ("/api/bulk", {"action": "retry", "ids": ["{failed}"], "filtre": {}}, "'filtre'"),
        ("/api/clean", {"state": "failed", "olderThanDays": 0, "confirm": True, "dryRun": True}, "'dryRun'"),
        ("/api/queues/default/pause", {"paused": True}, "'paused'"),
    ],
    ids=["retry", "delete", "trigger", "bulk", "clean", "pause"],
)  # fmt: skip
def test_every_api_body_refuses_a_key_it_does_not_take_and_does_nothing(
    open_board: Callable[..., Board], path: str, body: dict[str, Any], named: str
) -> None:
    board = open_board(worker=False)
    url = board.database_url
    failed = jobs.trigger("test.record", {"key": "failed"}, delay=3600).message_id
    set_job(url, failed, "status = 'FAILED', completed_at = now() - interval '1 day', last_error = 'boom'")
    filled = path.format(failed=failed)
    sent = {k: [failed] if v == ["{failed}"] else v for k, v in body.items()}
    before, row = _counts(url), job_row(url, failed)
    answer = _api(board).post(f"{BOARD}{filled}", json=sent)
    assert 400 == answer.status_code, answer.text
    assert answer.json()["error"].startswith(f"unknown key {named}: the body takes "), answer.text
    assert (before, row) == (_counts(url), job_row(url, failed))
    with psycopg.connect(url) as conn:  # no queue was paused either
        assert (0,) == conn.execute("SELECT count(*) FROM queue_state WHERE paused").fetchone()


def test_a_bulk_action_over_every_job_must_say_so(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    url = board.database_url
    for n in range(4):
        jobs.trigger("test.record", {"key": f"every {n}"}, delay=3600)
    api = _api(board)
    empty = api.post(f"{BOARD}/api/bulk", json={"action": "delete", "filter": {}, "confirm": True})
    assert 400 == empty.status_code
    assert '"all": true' in empty.json()["error"]
    mixed = {"action": "delete", "filter": {"all": True, "job": "test.record"}, "confirm": True}
    assert 400 == api.post(f"{BOARD}/api/bulk", json=mixed).status_code
    assert (4, 0) == _counts(url)
    everything = api.post(
        f"{BOARD}/api/bulk", json={"action": "delete", "filter": {"all": True}, "confirm": True}
    )
    assert (200, 4) == (everything.status_code, everything.json()["count"])
    assert 0 == _counts(url)[0]


def test_the_unfiltered_lists_bulk_buttons_say_every_job(open_board: Callable[..., Board]) -> None:
    board = open_board(development=True, worker=False)
    job_id = jobs.trigger("test.record", {"key": "one"}, delay=3600).message_id
    client = board.client()
    listing = client.get(f"{BOARD}/jobs").text
    assert "Delete every job</button>" in listing and 'name="all" value="yes"' in listing
    assert 'name="all"' not in client.get(f"{BOARD}/jobs", params={"job": "test.record"}).text
    form = {"csrf": board.csrf(client), "bulk": "delete filter", "confirm": "yes"}
    assert 400 == client.post(f"{BOARD}/bulk", data=form).status_code  # no all=yes: refused
    assert 303 == client.post(f"{BOARD}/bulk", data={**form, "all": "yes"}).status_code
    assert 0 == _counts(board.database_url)[0], job_id


# 2. The API asks for the confirmations the pages ask for.


def test_api_actions_that_lose_something_need_confirm_true(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    url = board.database_url
    waiting = jobs.trigger("test.record", {"key": "waiting"}, delay=3600).message_id
    done = jobs.trigger("test.record", {"key": "done"}, delay=3600).message_id
    set_job(url, done, "status = 'COMPLETED', started_at = now(), completed_at = now() - interval '3 days'")
    api = _api(board)
    before = _counts(url)
    refusals = {
        "delete": api.post(f"{BOARD}/api/jobs/{waiting}/delete"),
        "cancel": api.post(f"{BOARD}/api/jobs/{waiting}/cancel", json={"confirm": False}),
        "run-again": api.post(f"{BOARD}/api/jobs/{done}/run-again", json={}),
        "bulk delete": api.post(f"{BOARD}/api/bulk", json={"action": "delete", "ids": [waiting]}),
        "clean": api.post(f"{BOARD}/api/clean", json={"state": "completed", "olderThanDays": 1}),
    }
    assert {name: 400 for name in refusals} == {name: answer.status_code for name, answer in refusals.items()}
    assert (f'delete job {waiting} must be confirmed ("confirm": true in the API, confirm=yes in a form): '
            "nothing was done") == refusals["delete"].json()["error"]  # fmt: skip
    assert "the bulk delete must be confirmed" in refusals["bulk delete"].json()["error"]
    assert (before, "PENDING", "COMPLETED") == (_counts(url), job_status(url, waiting), job_status(url, done))
    # Confirmed, each is done; run now and retry are done at once, as on the page.
    assert 200 == api.post(f"{BOARD}/api/jobs/{done}/run-again", json={"confirm": True}).status_code
    assert 200 == api.post(f"{BOARD}/api/jobs/{waiting}/run-now").status_code
    assert 200 == api.post(f"{BOARD}/api/clean", json={"state": "completed", "olderThanDays": 1,
                                                       "confirm": True}).status_code  # fmt: skip
    assert None is job_status(url, done)


# 3. A page past the end tells the real total.


def test_a_page_past_the_end_says_the_real_total_and_that_it_is_empty(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True, worker=False)
    _insert_jobs(board.database_url, 43)
    client = board.client()
    api = client.get(f"{BOARD}/api/jobs", params={"page": "200"}).json()
    assert ([], 43, True, 1) == (api["jobs"], api["total"], api["totalExact"], api["lastPage"])
    page = client.get(f"{BOARD}/jobs", params={"page": "200"}).text
    assert '<span class="range">No jobs on page 200: 43 jobs match, on page 1</span>' in page
    assert "No jobs on this page." in page
    assert "(43)" in page and "9,950" not in page


def test_past_ten_thousand_jobs_the_deep_pages_say_more_than_ten_thousand(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True, worker=False)
    _insert_jobs(board.database_url, 10_020)
    client = board.client()
    page = client.get(f"{BOARD}/jobs", params={"q": "k", "page": "200"}).text  # a search: not counted
    assert '<span class="range">9,951–10,000 of more than 10,000</span>' in page
    assert "(more than 10,000)" in page
    api = client.get(f"{BOARD}/api/jobs", params={"q": "k", "page": "200"}).json()
    assert (10_000, False, None) == (api["total"], api["totalExact"], api["lastPage"])


# 4. A retry that would fail at once is refused; a retried job is shown as it now is.


def test_a_retry_of_a_job_no_actor_is_declared_as_is_refused_naming_it(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(worker=False)
    url = board.database_url
    _insert_jobs(url, 1, actor="gone.job", status="FAILED")
    answer = _api(board).post(f"{BOARD}/api/jobs/bulk-000001/retry")
    assert 422 == answer.status_code
    assert ("cannot retry job bulk-000001: no job actor is declared as 'gone.job' in this app "
            "(it would fail at once); declare it, or delete the job") == answer.json()["error"]  # fmt: skip
    assert ("FAILED", 0) == (job_status(url, "bulk-000001"), _counts(url)[1])


def test_a_cancelled_then_retried_job_shows_its_old_error_muted_and_no_made_up_delay(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True, worker=False)
    url = board.database_url
    job_id = jobs.trigger("test.record", {"key": "again"}).message_id
    set_job(url, job_id, "submitted_at = now() - interval '2 hours', run_at = now() - interval '2 hours'")
    client = board.client()
    csrf = board.csrf(client)
    assert (
        303 == client.post(f"{BOARD}/jobs/{job_id}/cancel", data={"csrf": csrf, "confirm": "yes"}).status_code
    )
    assert 303 == client.post(f"{BOARD}/jobs/{job_id}/retry", data={"csrf": csrf}).status_code
    assert "PENDING" == job_status(url, job_id)
    page = client.get(f"{BOARD}/jobs/{job_id}").text
    assert '<pre class="past-error">earlier: cancelled on the board</pre>' in page
    assert not re.search(r'class="error"[^>]*>[^<]*cancelled on the board', page)
    options = page[page.index("<h2>Options</h2>") : page.index("<h2>Attempts</h2>")]
    assert "delay" not in options
    listing = client.get(f"{BOARD}/jobs").text
    assert '<td class="last-error past-error">earlier: cancelled on the board</td>' in listing


def test_a_delayed_job_still_shows_the_delay_its_sender_chose(open_board: Callable[..., Board]) -> None:
    board = open_board(development=True, worker=False)
    job_id = jobs.trigger("test.record", {"key": "later"}, delay=86_160).message_id  # 23 h 56 min
    page = board.client().get(f"{BOARD}/jobs/{job_id}").text
    assert "<code>delay</code>" in page
    assert "(in 23 h 56 min)" in page  # not "in 23 h"
    assert '<p class="muted no-attempt">No attempt yet: it runs in 23 h 56 min.</p>' in page
    assert "Not started yet" not in page


# 5. A retry with an edited payload keeps the payload the failed attempts ran with.


def test_a_retry_with_an_edited_payload_keeps_the_original_in_the_audit_and_on_the_job_page(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(worker=False)
    url = board.database_url
    job_id = jobs.trigger("test.record", {"key": "original", "documentId": 7}, delay=3600).message_id
    set_job(url, job_id, "status = 'FAILED', attempts = 1, completed_at = now(), last_error = 'boom'")
    client = board.signed_in(*ADMIN)
    answer = client.post(
        f"{BOARD}/jobs/{job_id}/retry",
        data={"csrf": board.csrf(client), "payload": '{"key": "edited", "documentId": 8}'},
    )
    assert 303 == answer.status_code, answer.text
    assert {"key": "edited", "documentId": 8} == job_row(url, job_id)["payload"]
    entry = client.get(f"{BOARD}/api/audit").json()["entries"][0]
    assert ("retry", True, {"key": "original", "documentId": 7}) == (
        entry["action"], entry["detail"]["edited"], entry["detail"]["payload_before"],
    )  # fmt: skip
    page = client.get(f"{BOARD}/jobs/{job_id}").text
    assert f"Edited on the board by {ADMIN[0]}" in page
    before = page[page.index('<details class="payload-before">') :]
    assert "&#34;original&#34;" in before[: before.index("</details>")]
    assert (
        client.get(f"{BOARD}/api/jobs/{job_id}").json()["payloadEdit"]["payload_before"]["key"] == "original"
    )


# 6. Triggering in production asks first.


def test_the_trigger_page_asks_first_in_production_and_the_server_checks(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(worker=False)
    url = board.database_url
    client = board.signed_in(*ADMIN)
    form = client.get(f"{BOARD}/trigger", params={"job": "test.record"}).text
    assert re.search(r'<form method="post" action="[^"]+/trigger" class="edit"\s+data-confirm="Trigger Record '
                     r"\(test.record\) now\? This is production", form)  # fmt: skip
    csrf = board.csrf(client)
    unconfirmed = client.post(
        f"{BOARD}/trigger", data={"csrf": csrf, "job": "test.record", "payload": '{"key": "p"}'}
    )
    assert 422 == unconfirmed.status_code
    assert "triggering test.record in production must be confirmed" in unconfirmed.text
    refused = _api(board).post(f"{BOARD}/api/trigger", json={"job": "test.record", "payload": {"key": "p"}})
    assert 400 == refused.status_code
    assert (0, 0) == _counts(url)
    made = client.post(
        f"{BOARD}/trigger",
        data={"csrf": csrf, "job": "test.record", "payload": '{"key": "p"}', "confirm": "yes"},
    )
    assert 303 == made.status_code
    job_id = urllib.parse.unquote(made.headers["location"].rsplit("/", 1)[1])
    # The audit names the job it sent.
    entry = client.get(f"{BOARD}/api/audit").json()["entries"][0]
    assert ("trigger", job_id) == (entry["action"], entry["target"])
    link = f'<a href="{BOARD}/jobs/{job_id}"><code class="job-id" title="{job_id}">…{job_id[-12:]}</code></a>'
    assert link in client.get(f"{BOARD}/audit").text


def test_in_development_the_trigger_page_sends_at_once(open_board: Callable[..., Board]) -> None:
    board = open_board(development=True, worker=False)
    client = board.client()
    assert "data-confirm" not in client.get(f"{BOARD}/trigger", params={"job": "test.record"}).text
    made = client.post(
        f"{BOARD}/trigger", data={"csrf": board.csrf(client), "job": "test.record", "payload": '{"key": "d"}'}
    )
    assert 303 == made.status_code


# 7. Smaller things.


def test_filters_take_status_names_and_refuse_what_they_cannot_read_under_bad_filter(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True, worker=False)
    url = board.database_url
    failed = jobs.trigger("test.record", {"key": "failed"}, delay=3600).message_id
    set_job(url, failed, "status = 'FAILED', completed_at = now(), last_error = 'x'")
    jobs.trigger("test.record", {"key": "waiting"}, delay=3600)
    client = board.client()
    for given, expected in [("FAILED", "failed"), ("Failed", "failed"), ("PROCESSING", "active"),
                            ("pending", "pending")]:  # fmt: skip
        answer = client.get(f"{BOARD}/api/jobs", params={"state": given})
        assert (200, expected) == (answer.status_code, answer.json()["filter"]["state"]), answer.text
    assert [failed] == [
        job["id"] for job in client.get(f"{BOARD}/api/jobs", params={"state": "FAILED"}).json()["jobs"]
    ]
    assert 1 == client.get(f"{BOARD}/api/jobs", params={"state": "PENDING"}).json()["total"]
    refused = {
        "state": client.get(f"{BOARD}/jobs", params={"state": "bogus"}),
        "before": client.get(f"{BOARD}/jobs", params={"before": "xyz"}),
        "range": client.get(
            f"{BOARD}/jobs", params={"since": "2026-12-02T00:00", "until": "2026-12-01T00:00"}
        ),
    }
    for name, answer in refused.items():
        assert 400 == answer.status_code, name
        assert "<h1>Bad filter</h1>" in answer.text and "Not done" not in answer.text, name
    assert "before must be the id of a job on the list" in refused["before"].text
    assert "since (2026-12-02 00:00 UTC) must be before until (2026-12-01 00:00 UTC)" in refused["range"].text
    api = client.get(f"{BOARD}/api/jobs", params={"before": "xyz"})
    assert (400, True) == (api.status_code, "not 'xyz': no such job" in api.json()["error"])


def test_refusals_say_the_action_in_plain_words(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    due = jobs.trigger("test.record", {"key": "due"}).message_id
    api = _api(board)
    assert (f"cannot run job {due} now: it is PENDING and due already; run now works on a delayed job"
            == api.post(f"{BOARD}/api/jobs/{due}/run-now").json()["error"])  # fmt: skip
    again = api.post(f"{BOARD}/api/jobs/{due}/run-again", json={"confirm": True}).json()["error"]
    assert again.startswith(f"cannot run job {due} again: it is PENDING")


def test_an_unknown_job_on_the_trigger_page_keeps_the_picker_and_says_the_closest(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True, worker=False)
    page = board.client().get(f"{BOARD}/trigger", params={"job": "test.recrod"})
    assert 404 == page.status_code
    assert '<select name="job" data-submit-on-change>' in page.text
    assert "no job &#39;test.recrod&#39; is declared; did you mean &#39;test.record&#39;?" in page.text
    assert (
        "<h1>Trigger a job</h1>" in page.text
        and 'action="/api/jobs/board/trigger" class="edit"' not in page.text
    )


def test_the_job_page_words_retries_when_none_are_allowed(open_board: Callable[..., Board]) -> None:
    board = open_board(development=True, worker=False)
    job_id = jobs.trigger("test.record", {"key": "stopped"}, delay=3600).message_id
    set_job(board.database_url, job_id, "status = 'FAILED', attempts = 2, retried = 1, max_retries = 0, "
                                     "completed_at = now(), last_error = 'x'")  # fmt: skip
    page = board.client().get(f"{BOARD}/jobs/{job_id}").text
    assert "(no retries: max_retries is 0)" in page
    assert "retries used 1 of 0" not in page


def test_the_app_root_leads_to_the_board_in_one_redirect_and_pages_ask_for_no_favicon(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(development=True, worker=False)
    client = board.client()
    root = client.get("/")
    assert (307, f"{BOARD}/") == (root.status_code, root.headers["location"])
    page = client.get(root.headers["location"])
    assert 200 == page.status_code
    assert '<link rel="icon" href="data:,">' in page.text  # the CSP's img-src allows data:
