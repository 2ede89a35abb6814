"""The admin board over HTTP: access, CSRF, escaping, listing and actions, against a real app."""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
import pytest
from docjobs_devkit.http import serve

from docjobs import jobs
from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from docjobs.web.board.access import SESSION_COOKIE
from tests.conftest import events, job_row, wait_for
from tests.support.board import ADMIN, BOARD, TOKEN, USER, Board, csrf_of, job_status, sign_in

# Access.


@pytest.mark.parametrize("development", [True, False], ids=["development", "production"])
@pytest.mark.parametrize("who", ["anonymous", "user", "admin", "token", "wrong token"])
def test_who_may_see_the_board(open_board: Callable[..., Board], development: bool, who: str) -> None:
    board = open_board(development=development, worker=False)
    if who == "user":  # signs in with the right password, and is turned away: no session
        client = board.client()
        refused = sign_in(client, *USER)
        assert 403 == refused.status_code
        assert "the board is for admins" in refused.text
    elif who == "admin":
        client = board.signed_in(*ADMIN)
    else:
        bearer = {"token": TOKEN, "wrong token": "not-the-token"}.get(who)
        client = board.client(headers={"authorization": f"Bearer {bearer}"} if bearer else {})
    page = client.get(f"{BOARD}/")
    api = client.get(f"{BOARD}/api/overview")
    if who == "wrong token":
        expected_api = 401  # a bad token is refused even where the board is open
    elif development or who in ("admin", "token"):
        expected_api = 200
    else:
        expected_api = 401
    assert expected_api == api.status_code, api.text
    if development or who == "admin":
        assert 200 == page.status_code
        assert "Queues" in page.text
    else:  # anonymous, users, and tokens, which are for the JSON API only
        assert 303 == page.status_code
        assert page.headers["location"].endswith(f"{BOARD}/sign-in")
    if expected_api == 200:
        assert {"provider", "queues", "totals", "workers", "schedules"} <= set(api.json())


def test_a_host_app_rule_can_close_the_board(make_runtime: Callable[..., Runtime], database_url: str) -> None:
    current = make_runtime(NODE_ENV="development")
    app = create_app(current, embedded_worker=False, board_authorize=lambda request, viewer: False)
    with serve(app) as url:
        answer = httpx.get(f"{url}{BOARD}/api/overview")
    assert 403 == answer.status_code
    assert "not allowed by this application's board rule" in answer.json()["error"]


def test_sign_in_refuses_wrong_passwords_and_slows_down_guessing(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    client = board.client()
    csrf = board.csrf(client, f"{BOARD}/sign-in")
    statuses = []
    for attempt in range(7):
        answer = client.post(
            f"{BOARD}/sign-in", data={"csrf": csrf, "email": ADMIN[0], "password": f"guess {attempt}"}
        )
        statuses.append(answer.status_code)
        assert ADMIN[1] not in answer.text
    assert [401] * 5 + [429] * 2 == statuses
    # The right password is refused too while the window lasts.
    answer = client.post(f"{BOARD}/sign-in", data={"csrf": csrf, "email": ADMIN[0], "password": ADMIN[1]})
    assert 429 == answer.status_code
    assert "too many sign-in attempts" in answer.text


def test_an_admin_who_signs_in_often_is_not_locked_out(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    for _ in range(8):  # more than the 5 attempts a window allows per email
        assert 200 == board.signed_in(*ADMIN).get(f"{BOARD}/").status_code


def test_signing_in_starts_a_new_session_with_strict_cookie_flags(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    client = board.client()
    form = client.get(f"{BOARD}/sign-in")
    planted = client.cookies[SESSION_COOKIE]
    answer = client.post(
        f"{BOARD}/sign-in", data={"csrf": csrf_of(form.text), "email": ADMIN[0], "password": ADMIN[1]}
    )
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert f"Path={BOARD}" in cookie
    assert client.cookies[SESSION_COOKIE] != planted
    # The session from before sign-in is still anonymous: fixation gains nothing.
    stale = board.client(cookies={SESSION_COOKIE: planted})
    assert 303 == stale.get(f"{BOARD}/").status_code
    assert 200 == client.get(f"{BOARD}/").status_code
    assert csrf_of(client.get(f"{BOARD}/").text) != csrf_of(form.text)


# CSRF.


def test_posts_need_the_pages_csrf_token(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    message = jobs.trigger("test.record", {"key": "waiting"}, delay=3600)
    client = board.signed_in(*ADMIN)
    cancel = f"{BOARD}/jobs/{message.message_id}/cancel"
    assert 403 == client.post(cancel, data={"confirm": "yes"}).status_code
    assert 403 == client.post(cancel, data={"confirm": "yes", "csrf": "forged"}).status_code
    csrf = board.csrf(client)
    cross_site = client.post(
        cancel, data={"confirm": "yes", "csrf": csrf}, headers={"sec-fetch-site": "cross-site"}
    )
    assert 403 == cross_site.status_code
    assert 403 == client.post(f"{BOARD}/api/jobs/{message.message_id}/cancel").status_code
    assert "PENDING" == job_row(board.database_url, message.message_id)["status"]
    # The same request with the token goes through; a token carries no cookie to forge.
    done = board.client(headers={"authorization": f"Bearer {TOKEN}"}).post(
        f"{BOARD}/api/jobs/{message.message_id}/cancel", json={"confirm": True}
    )
    assert 200 == done.status_code, done.text
    assert "CANCELLED" == job_row(board.database_url, message.message_id)["status"]


# Escaping.


def test_hostile_job_data_is_shown_escaped(open_board: Callable[..., Board]) -> None:
    board = open_board(development=True, worker=False)
    hostile = "<script>alert('x')</script>\"'><img src=x onerror=alert(1)>"
    message = jobs.trigger("test.record", {"key": hostile}, id=f"<b>{hostile}</b>/../x?y#z", delay=3600)
    client = board.client()
    listing = client.get(f"{BOARD}/jobs")
    detail = client.get(f"{BOARD}/jobs/{urllib.parse.quote(message.message_id, safe='')}")
    for page in (listing, detail):
        assert 200 == page.status_code, page.text[:300]
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
        assert "&lt;script&gt;" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
    api = client.get(f"{BOARD}/api/jobs").json()
    assert hostile == api["jobs"][0]["id"][3 : 3 + len(hostile)]
    # An action on it comes back to the same job, however its id is spelled.
    csrf = board.csrf(client)
    quoted = urllib.parse.quote(message.message_id, safe="")
    promoted = client.post(f"{BOARD}/jobs/{quoted}/promote", data={"csrf": csrf})
    assert 303 == promoted.status_code
    assert promoted.headers["location"] == f"{BOARD}/jobs/{quoted}"
    assert 200 == client.get(promoted.headers["location"]).status_code


# Listing.


def test_jobs_are_listed_newest_first_a_page_at_a_time_with_filters(open_board: Callable[..., Board]) -> None:
    board = open_board(development=True, worker=False)
    sent = [jobs.trigger("test.record", {"key": f"job {n}"}, delay=3600) for n in range(120)]
    jobs.trigger("test.sleep", {"key": "needle in payload", "seconds": 0}, delay=3600)
    client = board.client()
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        answer = client.get(
            f"{BOARD}/api/jobs", params={"job": "test.record", **({"before": cursor} if cursor else {})}
        )
        body = answer.json()
        seen += [job["id"] for job in body["jobs"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert 3 == pages
    # Every job once, newest first (ids are time-ordered to the millisecond).
    assert sorted((m.message_id for m in sent), reverse=True) == seen
    found = client.get(f"{BOARD}/api/jobs", params={"q": "NEEDLE"}).json()["jobs"]
    assert ["test.sleep"] == [job["actor"] for job in found]
    assert 121 == len(client.get(f"{BOARD}/api/jobs", params={"state": "scheduled"}).json()["jobs"]) + 71
    assert [] == client.get(f"{BOARD}/api/jobs", params={"state": "failed"}).json()["jobs"]
    bad = client.get(f"{BOARD}/api/jobs", params={"state": "exploded"})
    assert 400 == bad.status_code
    assert "state must be one of" in bad.json()["error"]
    page = client.get(f"{BOARD}/jobs", params={"job": "test.record"})
    assert 'rel="next"' in page.text
    assert 50 == page.text.count('class="status-pending"')


# Actions.


def test_actions_on_the_local_provider_change_the_job_and_are_audited(
    open_board: Callable[..., Board],
) -> None:
    board = open_board()
    client = board.signed_in(*ADMIN)
    csrf = board.csrf(client)
    url = board.database_url
    failed = jobs.trigger("test.fail_when", {"key": "edited", "fail": True})
    wait_for(lambda: job_row(url, failed.message_id)["status"] == "FAILED")
    # A bad edit is refused and changes nothing.
    refused = client.post(
        f"{BOARD}/jobs/{failed.message_id}/retry", data={"csrf": csrf, "payload": '{"key": 7}'}
    )
    assert 422 == refused.status_code
    assert "FAILED" == job_row(url, failed.message_id)["status"]
    fixed = client.post(
        f"{BOARD}/jobs/{failed.message_id}/retry",
        data={"csrf": csrf, "payload": '{"key": "edited", "fail": false}'},
    )
    assert 303 == fixed.status_code
    wait_for(lambda: job_row(url, failed.message_id)["status"] == "COMPLETED")

    delayed = jobs.trigger("test.record", {"key": "promoted"}, delay=3600)
    assert 303 == client.post(f"{BOARD}/jobs/{delayed.message_id}/promote", data={"csrf": csrf}).status_code
    wait_for(lambda: job_row(url, delayed.message_id)["status"] == "COMPLETED")

    doomed = jobs.trigger("test.record", {"key": "cancelled"}, delay=3600)
    unconfirmed = client.post(f"{BOARD}/jobs/{doomed.message_id}/cancel", data={"csrf": csrf})
    assert 400 == unconfirmed.status_code
    assert "PENDING" == job_row(url, doomed.message_id)["status"]
    cancel = client.post(f"{BOARD}/jobs/{doomed.message_id}/cancel", data={"csrf": csrf, "confirm": "yes"})
    assert 303 == cancel.status_code
    assert "CANCELLED" == job_row(url, doomed.message_id)["status"]
    again = client.post(f"{BOARD}/jobs/{doomed.message_id}/cancel", data={"csrf": csrf, "confirm": "yes"})
    assert 409 == again.status_code
    delete = client.post(f"{BOARD}/jobs/{doomed.message_id}/delete", data={"csrf": csrf, "confirm": "yes"})
    assert 303 == delete.status_code
    assert 404 == client.get(f"{BOARD}/jobs/{doomed.message_id}").status_code

    entries = client.get(f"{BOARD}/api/audit").json()["entries"]
    assert [("retry", failed.message_id), ("run-now", delayed.message_id), ("cancel", doomed.message_id),
            ("delete", doomed.message_id)] == [(e["action"], e["target"]) for e in reversed(entries)]  # fmt: skip
    assert {ADMIN[0]} == {entry["actor"] for entry in entries}
    assert "edited" in client.get(f"{BOARD}/audit").text


@pytest.mark.parametrize("provider", ["bullmq", "inngest"])
def test_a_retry_elsewhere_sends_the_job_again_and_deleting_history_works(
    open_board: Callable[..., Board], provider: str
) -> None:
    board = open_board(provider=provider)  # bullmq: the web app's embedded worker
    url = board.database_url
    history = board.runtime.history
    assert history is not None
    failed = jobs.trigger("test.fail_when", {"key": "elsewhere", "fail": True})
    wait_for(lambda: (history.flush() or True) and job_status(url, failed.message_id) == "FAILED", 20)
    client = board.client(headers={"authorization": f"Bearer {TOKEN}"})
    answer = client.post(
        f"{BOARD}/api/jobs/{failed.message_id}/retry", json={"payload": {"key": "elsewhere", "fail": False}}
    )
    assert 200 == answer.status_code, answer.text
    new_id = answer.json()["retried_as"]
    wait_for(lambda: (history.flush() or True) and job_status(url, new_id) == "COMPLETED", 20)
    refused = client.post(f"{BOARD}/api/jobs/{new_id}/cancel")
    assert 409 == refused.status_code
    assert "it is COMPLETED; cancel works on a job that has not started" in refused.json()["error"]
    assert 409 == client.post(f"{BOARD}/api/jobs/{new_id}/promote").status_code
    # A finished job is only history there: deleting it deletes the row.
    assert (
        200 == client.post(f"{BOARD}/api/jobs/{failed.message_id}/delete", json={"confirm": True}).status_code
    )
    assert job_status(url, failed.message_id) is None


@pytest.mark.parametrize("provider", ["bullmq", "inngest"])
def test_trigger_bulk_retry_and_clean_elsewhere(open_board: Callable[..., Board], provider: str) -> None:
    board = open_board(provider=provider)
    url = board.database_url
    history = board.runtime.history
    assert history is not None
    client = board.client(headers={"authorization": f"Bearer {TOKEN}"})
    made = client.post(
        f"{BOARD}/api/trigger",
        json={"job": "test.fail_when", "payload": {"key": "t", "fail": True}, "confirm": True},
    )
    assert 200 == made.status_code, made.text
    first = made.json()["job"]
    second = jobs.trigger("test.fail_when", {"key": "u", "fail": True}).message_id
    wait_for(
        lambda: (history.flush() or True) and {job_status(url, first), job_status(url, second)} == {"FAILED"},
        20,
    )
    answer = client.post(f"{BOARD}/api/bulk", json={"action": "retry", "ids": [first, second]}).json()
    assert (2, {}) == (answer["count"], answer["refused"])
    for new_id in answer["retried_as"]:  # sent again as new jobs: they fail again, as told to
        wait_for(lambda n=new_id: (history.flush() or True) and job_status(url, n) == "FAILED", 20)
    with psycopg.connect(url) as conn:  # the first two finished long ago, for the clean-up
        conn.execute("UPDATE background_job SET completed_at = now() - interval '3 days' WHERE id = ANY(%s)",
                     ([first, second],))  # fmt: skip
    cleaned = client.post(
        f"{BOARD}/api/clean", json={"state": "failed", "olderThanDays": 2, "confirm": True}
    ).json()
    assert 2 == cleaned["count"]
    assert (None, None) == (job_status(url, first), job_status(url, second))
    assert {"FAILED"} == {job_status(url, new_id) for new_id in answer["retried_as"]}


def test_a_waiting_bullmq_job_is_taken_out_of_redis(
    open_board: Callable[..., Board], start_worker: Callable[..., Any]
) -> None:
    board = open_board(provider="bullmq", worker=False)  # nobody fetches: the jobs wait in Redis
    url = board.database_url
    history = board.runtime.history
    assert history is not None
    cancelled = jobs.trigger("test.record", {"key": "cancelled"})
    deleted = jobs.trigger("test.record", {"key": "deleted"})
    kept = jobs.trigger("test.record", {"key": "kept"})
    history.flush()
    client = board.client(headers={"authorization": f"Bearer {TOKEN}"})
    yes = {"confirm": True}
    assert 200 == client.post(f"{BOARD}/api/jobs/{cancelled.message_id}/cancel", json=yes).status_code
    assert 200 == client.post(f"{BOARD}/api/jobs/{deleted.message_id}/delete", json=yes).status_code
    assert ("CANCELLED", None) == (job_status(url, cancelled.message_id), job_status(url, deleted.message_id))
    start_worker(board.runtime.broker, threads=2)
    wait_for(lambda: (history.flush() or True) and job_status(url, kept.message_id) == "COMPLETED")
    board.runtime.join(timeout_seconds=10)
    assert ["kept"] == [event["key"] for event in events(url)]  # the others never ran
    assert "CANCELLED" == job_status(url, cancelled.message_id)
    # Once a worker holds a job, it is out of reach: the board says so.
    holding = jobs.trigger("test.sleep", {"key": "held", "seconds": 1.0})
    wait_for(lambda: (history.flush() or True) and job_status(url, holding.message_id) == "PROCESSING")
    refused = client.post(f"{BOARD}/api/jobs/{holding.message_id}/cancel", json=yes)
    assert 409 == refused.status_code


def test_a_scheduled_bullmq_job_is_run_now_or_taken_out_while_workers_run(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(provider="bullmq")  # the web app's embedded worker is up throughout
    url = board.database_url
    history = board.runtime.history
    assert history is not None
    broker = board.runtime.broker
    promoted = jobs.trigger("test.record", {"key": "promoted"}, delay=3600)
    cancelled = jobs.trigger("test.record", {"key": "cancelled"}, delay=3600)
    soon = jobs.trigger("test.record", {"key": "on time"}, delay=0.3)
    history.flush()
    schedule = f"{broker.namespace}:default.delayed"  # type: ignore[attr-defined]
    redis_client = broker.client  # type: ignore[attr-defined]
    wait_for(lambda: (history.flush() or True) and job_status(url, soon.message_id) == "COMPLETED", 10)
    assert 2 == redis_client.zcard(schedule)  # the others wait in Redis, not in the worker
    client = board.client(headers={"authorization": f"Bearer {TOKEN}"})
    assert 200 == client.post(f"{BOARD}/api/jobs/{promoted.message_id}/promote").status_code
    assert (
        200
        == client.post(f"{BOARD}/api/jobs/{cancelled.message_id}/cancel", json={"confirm": True}).status_code
    )
    wait_for(lambda: (history.flush() or True) and job_status(url, promoted.message_id) == "COMPLETED", 10)
    board.runtime.join(timeout_seconds=10)
    assert ["on time", "promoted"] == [event["key"] for event in events(url)]
    assert "CANCELLED" == job_status(url, cancelled.message_id)
    assert 0 == redis_client.zcard(schedule)
    again = client.post(f"{BOARD}/api/jobs/{promoted.message_id}/promote")
    assert 409 == again.status_code


def test_bulk_actions_by_selection_and_by_filter(open_board: Callable[..., Board]) -> None:
    board = open_board(development=True, worker=False)
    client = board.client()
    csrf = board.csrf(client)
    url = board.database_url
    waiting = [jobs.trigger("test.record", {"key": f"bulk {n}"}, delay=3600).message_id for n in range(6)]
    other = jobs.trigger("test.sleep", {"key": "kept", "seconds": 0}, delay=3600).message_id
    # Delete two selected jobs; without the confirmation nothing happens.
    selected = {"csrf": csrf, "bulk": "delete selected", "id": waiting[:2]}
    assert 400 == client.post(f"{BOARD}/bulk", data=selected).status_code
    assert 303 == client.post(f"{BOARD}/bulk", data={**selected, "confirm": "yes"}).status_code
    assert None is job_status(url, waiting[0]) is job_status(url, waiting[1])
    # Delete everything the filter matches (test.record), sparing the rest.
    by_filter = {"csrf": csrf, "bulk": "delete filter", "job": "test.record", "confirm": "yes"}
    assert 303 == client.post(f"{BOARD}/bulk", data=by_filter).status_code
    assert [None] * 4 == [job_status(url, job_id) for job_id in waiting[2:]]
    assert "PENDING" == job_status(url, other)
    # Retry by filter through the API: every failed job of one kind runs again.
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE background_job SET status = 'FAILED', completed_at = now() WHERE id = %s", (other,)
        )
    answer = client.post(
        f"{BOARD}/api/bulk",
        json={"action": "retry", "filter": {"state": "failed", "job": "test.sleep"}},
        headers={"x-csrf-token": csrf},
    )
    assert {"action": "retry", "count": 1} == {k: answer.json()[k] for k in ("action", "count")}
    assert "PENDING" == job_status(url, other)
    entries = [
        (e["action"], e["detail"].get("count")) for e in client.get(f"{BOARD}/api/audit").json()["entries"]
    ]
    assert [("bulk retry", 1), ("bulk delete", 4), ("bulk delete", 2)] == entries


def test_clean_pause_resume_and_trigger(open_board: Callable[..., Board]) -> None:
    board = open_board(development=True)
    client = board.client()
    csrf = board.csrf(client)
    url = board.database_url
    done = jobs.trigger("test.record", {"key": "old"})
    wait_for(lambda: job_status(url, done.message_id) == "COMPLETED")
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE background_job SET completed_at = now() - interval '10 days' WHERE id = %s",
                     (done.message_id,))  # fmt: skip
    recent = jobs.trigger("test.record", {"key": "recent"})
    wait_for(lambda: job_status(url, recent.message_id) == "COMPLETED")
    cleaned = client.post(
        f"{BOARD}/api/clean",
        json={"state": "completed", "olderThanDays": 7, "confirm": True},
        headers={"x-csrf-token": csrf},
    )
    assert 1 == cleaned.json()["count"]
    assert (None, "COMPLETED") == (job_status(url, done.message_id), job_status(url, recent.message_id))
    bad = client.post(
        f"{BOARD}/api/clean",
        json={"state": "pending", "olderThanDays": 1, "confirm": True},
        headers={"x-csrf-token": csrf},
    )
    assert 400 == bad.status_code

    # A paused queue keeps its jobs until it is resumed.
    assert 303 == client.post(f"{BOARD}/queues/default/pause", data={"csrf": csrf}).status_code
    held = jobs.trigger("test.record", {"key": "held"})
    overview = client.get(f"{BOARD}/api/overview").json()
    assert [True] == [q["paused"] for q in overview["queues"] if q["queue"] == "default"]
    # Nothing shows that a claim did not happen: give a wrong one time to (consumers poll and listen).
    time.sleep(0.5)
    assert "PENDING" == job_status(url, held.message_id)
    assert 303 == client.post(f"{BOARD}/queues/default/resume", data={"csrf": csrf}).status_code
    wait_for(lambda: job_status(url, held.message_id) == "COMPLETED")

    # Trigger from the board: the payload is checked as any send's.
    refused = client.post(
        f"{BOARD}/trigger", data={"csrf": csrf, "job": "test.record", "payload": '{"key": 1}'}
    )
    assert 422 == refused.status_code
    assert re.search(r"role=\"alert\">[^<]*key", refused.text), refused.text[-800:]
    made = client.post(
        f"{BOARD}/trigger", data={"csrf": csrf, "job": "test.record", "payload": '{"key": "board"}'}
    )
    assert 303 == made.status_code
    job_id = urllib.parse.unquote(made.headers["location"].rsplit("/", 1)[1])
    wait_for(lambda: job_status(url, job_id) == "COMPLETED")
    actions = [e["action"] for e in client.get(f"{BOARD}/api/audit").json()["entries"]]
    assert ["trigger", "resume", "pause", "clean"] == actions


def test_the_overview_charts_the_last_hour_and_metrics_expose_it(open_board: Callable[..., Board]) -> None:
    board = open_board()
    url = board.database_url
    sent = [
        jobs.trigger("test.fail_when", {"key": "a", "fail": False}),
        jobs.trigger("test.fail_when", {"key": "b", "fail": False}),
        jobs.trigger("test.fail_when", {"key": "c", "fail": True}),
    ]
    for message in sent:
        wait_for(lambda m=message: job_status(url, m.message_id) in ("COMPLETED", "FAILED"))
    admin = board.signed_in(*ADMIN)
    activity = admin.get(f"{BOARD}/api/overview").json()["activity"]
    assert (2, 1) == (activity["completed"], activity["failed"])
    assert abs(activity["failureRate"] - 1 / 3) < 1e-9
    assert 0 <= activity["seconds"]["p50"] <= activity["seconds"]["p95"] <= activity["seconds"]["p99"] < 5
    assert 3 == sum(step["completed"] + step["failed"] for step in activity["steps"])
    page = admin.get(f"{BOARD}/").text
    assert '<svg class="chart"' in page
    assert re.search(r"<title>\d\d:\d\d–\d\d:\d\d UTC: [0-2] completed, [0-1] failed", page)
    assert "33.3 % failure rate" in page

    assert 401 == board.client().get(f"{BOARD}/metrics").status_code
    scraped = board.client(headers={"authorization": f"Bearer {TOKEN}"}).get(f"{BOARD}/metrics")
    assert 200 == scraped.status_code
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert 'docjobs_jobs{queue="default",state="completed"} 2.0' in text
    assert 'docjobs_jobs{queue="default",state="failed"} 1.0' in text
    assert 'docjobs_jobs_finished_last_hour{outcome="failed"} 1.0' in text
    assert 'docjobs_job_run_seconds_last_hour{quantile="0.95"}' in text
    assert re.search(r'docjobs_worker_heartbeat_age_seconds\{worker="[^"]+"\} \d', text)


@pytest.mark.parametrize("provider", ["local", "bullmq", "inngest"])
def test_a_jobs_page_shows_every_failed_attempt_with_its_error(
    open_board: Callable[..., Board], provider: str, request: pytest.FixtureRequest
) -> None:
    board = open_board(provider=provider)
    url = board.database_url
    flaky = jobs.trigger("test.fail_once", {"key": "attempts"})
    doomed = jobs.trigger("test.fail_when", {"key": "doomed", "fail": True})

    def settled() -> bool:
        if board.runtime.history is not None:
            board.runtime.history.flush()
        return (
            job_status(url, flaky.message_id) == "COMPLETED"
            and job_status(url, doomed.message_id) == "FAILED"
        )

    wait_for(settled, 20)
    client = board.client(headers={"authorization": f"Bearer {TOKEN}"})
    retried = client.get(f"{BOARD}/api/jobs/{flaky.message_id}").json()
    assert [(1, "retried")] == [(a["attempt"], a["outcome"]) for a in retried["attempts"]]
    assert "first attempt fails" in retried["attempts"][0]["error"]
    failed = client.get(f"{BOARD}/api/jobs/{doomed.message_id}").json()
    assert [(1, "failed")] == [(a["attempt"], a["outcome"]) for a in failed["attempts"]]
    assert "doomed was told to fail" in failed["attempts"][0]["error"]
    if provider == "inngest":  # the run, to find it in Inngest's own dashboard
        run_id = retried["job"]["options"]["inngest_run_id"]
        assert run_id == next(run.id for run in request.getfixturevalue("inngest_emulator").runs
                              if run.event["id"] == flaky.message_id)  # fmt: skip
    page = board.signed_in(*ADMIN).get(f"{BOARD}/jobs/{flaky.message_id}").text
    assert "Attempt 1: <strong>retried</strong>" in page
    assert "Attempt 2: <strong>completed</strong>" in page


def test_bulk_by_filter_on_bullmq_goes_job_by_job(open_board: Callable[..., Board]) -> None:
    board = open_board(provider="bullmq", worker=False)
    url = board.database_url
    history = board.runtime.history
    assert history is not None
    doomed = [jobs.trigger("test.record", {"key": f"doomed {n}"}).message_id for n in range(3)]
    kept = jobs.trigger("test.sleep", {"key": "kept", "seconds": 0}).message_id
    history.flush()
    client = board.client(headers={"authorization": f"Bearer {TOKEN}"})
    answer = client.post(
        f"{BOARD}/api/bulk", json={"action": "delete", "filter": {"job": "test.record"}, "confirm": True}
    )
    assert {"count": 3, "refused": {}} == {k: answer.json()[k] for k in ("count", "refused")}
    assert [None] * 3 == [job_status(url, job_id) for job_id in doomed]
    assert "PENDING" == job_status(url, kept)
    redis_client = board.runtime.broker.client  # type: ignore[attr-defined]
    assert 1 == redis_client.llen(f"{board.runtime.broker.namespace}:default")  # type: ignore[attr-defined]
    refused = client.post(f"{BOARD}/api/bulk", json={"action": "retry", "ids": [kept]}).json()
    assert 0 == refused["count"]
    assert "it is PENDING" in refused["refused"][kept]
