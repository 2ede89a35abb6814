"""The Inngest serve endpoint against an attacker, in production (signing keys set).

The app is docjobs' own web app on loopback, synced with the Inngest emulator; each
refusal is checked for what it must not do: register anything, run anything, write
a job row or an event, or log a signature or a key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from docjobs_devkit.http import serve
from docjobs_devkit.inngest import InngestServer

from docjobs.defaults import DEFAULT_INNGEST_APP_ID as APP_ID
from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from tests.conftest import (
    INNGEST_SIGNING_KEY,
    app_port,
    events,
    inngest_call_body,
    provider_overrides,
)

RECORD = f"{APP_ID}-test.record"
FAIL_ONCE = f"{APP_ID}-test.fail_once"
CLEANUP = f"{APP_ID}-internal.cleanup-rate-limits"
RUN_ENDED = f"{APP_ID}-docjobs.run-ended"
ATTACKER = "attacker.example"
KEY_TEXT = INNGEST_SIGNING_KEY.removeprefix("signkey-test-")
KEY_HASH = hashlib.sha256(bytes.fromhex(KEY_TEXT)).hexdigest()
#: A signature header that is well formed and fresh but signs nothing.
FORGED_MAC = "ab" * 32
NESTING_LEVELS = 8_000


@pytest.fixture
def inngest_runtime(request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime(**provider_overrides(request, "inngest"))


@pytest.fixture
def app_url(inngest_runtime: Runtime, inngest_emulator: InngestServer) -> Iterator[str]:
    """The app served where its settings say Inngest calls it, synced (signed, out of band)."""
    with serve(create_app(inngest_runtime), port=app_port(inngest_runtime)) as base:
        url = f"{base}/api/jobs"
        assert 200 == inngest_emulator.sync(url).status_code
        yield url


@pytest.fixture
def refusal_lines(caplog: pytest.LogCaptureFixture) -> Callable[[], list[logging.LogRecord]]:
    """The serve endpoint's log records so far."""
    caplog.set_level(logging.DEBUG)
    return lambda: [record for record in caplog.records if record.name == "docjobs.brokers.inngest.serve"]


def _now() -> int:
    return round(time.time())


def _call(url: str, function_id: str, raw: bytes, header: str | list[str] | None) -> httpx.Response:
    headers: list[tuple[str, str]] = [("content-type", "application/json")]
    for value in [header] if isinstance(header, str) else header or []:
        headers.append(("x-inngest-signature", value))
    return httpx.post(f"{url}?fnId={function_id}&stepId=step", content=raw, headers=headers)


def _world(database_url: str, emulator: InngestServer) -> tuple[Any, ...]:
    """Everything a refused request must leave as it was."""
    with psycopg.connect(database_url) as conn:
        jobs = conn.execute("SELECT id, status, attempts FROM background_job ORDER BY id").fetchall()
    return (jobs, events(database_url), len(emulator.events), len(emulator.registrations))


def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# 1. The sync: signed, and always at the configured URL.


@pytest.mark.parametrize("case", ["unsigned", "stale", "forged", "wrong key", "malformed"])
def test_a_sync_without_a_fresh_signature_is_refused_and_registers_nothing(
    inngest_emulator: InngestServer, app_url: str, database_url: str, case: str
) -> None:
    header = {
        "unsigned": None,
        "stale": inngest_emulator.sign(b"", _now() - 301),
        "forged": f"t={_now()}&s={FORGED_MAC}",
        "wrong key": inngest_emulator.sign(b"", _now(), "signkey-test-" + "77" * 32),
        "malformed": "garbage",
    }[case]
    headers = {"host": f"{ATTACKER}:8443", "x-inngest-server-kind": "cloud"}
    if header is not None:
        headers["x-inngest-signature"] = header
    before = _world(database_url, inngest_emulator)
    response = httpx.put(app_url, headers=headers)
    assert 401 == response.status_code, response.text
    assert before == _world(database_url, inngest_emulator)  # no second registration
    assert {app_url} == {function.url.split("?")[0] for function in inngest_emulator.functions.values()}
    # The next job's calls still reach the app.
    inngest_emulator.send([{"name": "test.record", "data": {"key": "after-takeover-attempt"}}])
    (run,) = inngest_emulator.wait_for_runs(1)
    assert "completed" == run.status
    assert ["after-takeover-attempt"] == [event["key"] for event in events(database_url)]


def test_a_signed_sync_registers_the_configured_url_whatever_host_it_came_to(
    inngest_emulator: InngestServer, app_url: str
) -> None:
    signed = {"x-inngest-signature": inngest_emulator.sign(b"", _now()), "x-inngest-server-kind": "cloud"}
    response = httpx.put(app_url, headers={**signed, "host": f"{ATTACKER}:8443"})
    assert 200 == response.status_code, response.text
    assert 2 == len(inngest_emulator.registrations)
    assert app_url == inngest_emulator.registrations[-1]["url"]
    assert {app_url} == {function.url.split("?")[0] for function in inngest_emulator.functions.values()}


def test_an_in_band_sync_answers_with_the_configured_url_once(
    inngest_emulator: InngestServer, app_url: str
) -> None:
    # The signed body names where Inngest reached the app; the app still answers with its own URL.
    body = json.dumps({"url": f"https://{ATTACKER}/api/jobs"}).encode()
    headers = {
        "content-type": "application/json",
        "x-inngest-server-kind": "cloud",
        "x-inngest-sync-kind": "in_band",
        "x-inngest-signature": inngest_emulator.sign(body, _now()),
    }
    response = httpx.put(app_url, content=body, headers=headers)
    assert 200 == response.status_code, response.text
    answer = response.json()
    assert app_url == answer["url"]
    assert {app_url} == {f["steps"]["step"]["runtime"]["url"].split("?")[0] for f in answer["functions"]}
    # Its answer carries the keys' hashes: a replay gets nothing.
    replayed = httpx.put(app_url, content=body, headers=headers)
    assert 401 == replayed.status_code
    assert KEY_HASH not in replayed.text
    # The emulator's own in-band sync registers from the signed answer.
    assert 200 == inngest_emulator.sync(app_url, in_band=True).status_code
    assert app_url == inngest_emulator.registrations[-1]["url"]


def test_the_dev_server_still_syncs_unsigned_at_the_url_it_reached(
    make_runtime: Callable[..., Runtime],
) -> None:
    dev_server = InngestServer(signing_key=None).start()
    try:
        current = make_runtime(
            NODE_ENV="development",
            NEXT_PRIVATE_JOBS_PROVIDER="inngest",
            INNGEST_BASE_URL=dev_server.url,
            INNGEST_EVENT_KEY=dev_server.event_key,
        )
        with serve(create_app(current)) as base:
            assert 200 == dev_server.sync(f"{base}/api/jobs").status_code
        (registration,) = dev_server.registrations
        assert f"{base}/api/jobs" == registration["url"]
    finally:
        dev_server.stop()


# 2. A captured call: honoured once, and only for the function its event starts.


@pytest.mark.parametrize(
    "spelling",
    [
        "s={s}&t={t}",
        "t={t}&s={s}&x=1",
        "t={t}&s={s}&t=",
        "t=%3{first}{rest}&s={s}",
        "t=0{t}&s={s}",
        "t={t}&s={upper}",
        "twice",
    ],
)
def test_a_captured_call_runs_once_however_its_signature_is_spelt(
    inngest_emulator: InngestServer, app_url: str, database_url: str, spelling: str
) -> None:
    raw = inngest_call_body("test.record", {"key": "captured"})
    genuine = inngest_emulator.sign(raw, _now())
    assert 200 == _call(app_url, RECORD, raw, genuine).status_code
    stamp, mac = genuine.removeprefix("t=").split("&s=")
    before = _world(database_url, inngest_emulator)
    if spelling == "twice":
        header: str | list[str] = [genuine, genuine]
    else:
        header = spelling.format(t=stamp, s=mac, first=stamp[0], rest=stamp[1:], upper=mac.upper())
    response = _call(app_url, RECORD, raw, header)
    assert 401 == response.status_code, response.text
    assert before == _world(database_url, inngest_emulator)
    assert ["captured"] == [event["key"] for event in events(database_url)]


def test_a_captured_call_cannot_run_another_function(
    inngest_emulator: InngestServer, app_url: str, database_url: str
) -> None:
    raw = inngest_call_body("test.record", {"key": "redirected"})
    genuine = inngest_emulator.sign(raw, _now())
    before = _world(database_url, inngest_emulator)
    response = _call(app_url, FAIL_ONCE, raw, genuine)
    assert 401 == response.status_code, response.text
    assert "does not start function" in response.json()["message"]
    assert before == _world(database_url, inngest_emulator)
    # The refusal did not spend the signature: the call runs the function it was made for.
    assert 200 == _call(app_url, RECORD, raw, genuine).status_code
    assert [("redirected", "ran")] == [(event["key"], event["kind"]) for event in events(database_url)]


def test_an_empty_probe_does_not_let_a_call_past_its_checks(
    inngest_emulator: InngestServer, app_url: str, database_url: str
) -> None:
    raw = inngest_call_body("test.record", {"key": "probed"})
    genuine = {"x-inngest-signature": inngest_emulator.sign(raw, _now())}
    assert 200 == _call(app_url, RECORD, raw, genuine["x-inngest-signature"]).status_code
    before = _world(database_url, inngest_emulator)
    for function_id in (RECORD, FAIL_ONCE):
        response = httpx.post(
            f"{app_url}?probe=&fnId={function_id}&stepId=step", content=raw, headers=genuine
        )
        assert 401 == response.status_code, response.text
    assert before == _world(database_url, inngest_emulator)
    # A real trust probe is answered, and runs nothing.
    probe = {"x-inngest-signature": inngest_emulator.sign(b"", _now() + 1)}
    assert 200 == httpx.post(f"{app_url}?probe=trust", headers=probe).status_code
    assert before == _world(database_url, inngest_emulator)


def test_a_signature_is_not_honoured_again_by_another_method(
    inngest_emulator: InngestServer, app_url: str
) -> None:
    """It covers the body, not the method: an empty-bodied sync's would open the introspection."""
    header = {"x-inngest-signature": inngest_emulator.sign(b"", _now() - 5), "x-inngest-server-kind": "cloud"}
    assert 200 == httpx.put(app_url, headers=header).status_code
    assert 200 == httpx.put(app_url, headers=header).status_code  # a sync may come twice
    for method in ("GET", "POST"):
        replayed = httpx.request(method, f"{app_url}?fnId={RECORD}&stepId=step", headers=header)
        assert 401 == replayed.status_code, replayed.text
        assert KEY_HASH not in replayed.text


def test_an_introspection_is_answered_once_and_only_while_fresh(
    inngest_emulator: InngestServer, app_url: str
) -> None:
    fresh = {"x-inngest-signature": inngest_emulator.sign(b"", _now() - 10)}
    answer = httpx.get(app_url, headers=fresh)
    assert (200, True) == (answer.status_code, answer.json()["authentication_succeeded"])
    for header in (fresh, {"x-inngest-signature": inngest_emulator.sign(b"", _now() - 3600)}):
        refused = httpx.get(app_url, headers=header)
        assert 401 == refused.status_code, refused.text
        assert KEY_HASH not in refused.text


@pytest.mark.parametrize(
    ("query", "status"),
    [
        (f"fnId={APP_ID}-no.such-job&stepId=step", 404),
        ("fnId=test.record&stepId=step", 404),  # the SDK's old unprefixed form
        ("stepId=step", 400),
        (f"fnId={RECORD}&fnId={FAIL_ONCE}&stepId=step", 400),
    ],
)
def test_a_call_must_name_one_known_function(
    inngest_emulator: InngestServer, app_url: str, database_url: str, query: str, status: int
) -> None:
    raw = inngest_call_body("test.record", {"key": "unknown"})
    before = _world(database_url, inngest_emulator)
    headers = {"x-inngest-signature": inngest_emulator.sign(raw, _now())}
    response = httpx.post(f"{app_url}?{query}", content=raw, headers=headers)
    assert status == response.status_code, response.text
    assert before == _world(database_url, inngest_emulator)


def _body(*events: dict[str, Any]) -> bytes:
    document = json.loads(inngest_call_body("test.record", {"key": "batch"}))
    document["event"], document["events"] = events[0], list(events)
    return json.dumps(document).encode()


def _event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"evt-{name}", "name": name, "data": data, "ts": int(time.time() * 1000)}


SCHEDULED = _event("inngest/scheduled.timer", {"cron": "*/15 * * * *"})
FAILED = _event("inngest/function.failed", {"function_id": "other-app-x", "run_id": "r", "error": {}})
CANCELLED = _event("inngest/function.cancelled", {"function_id": "other-app-x", "run_id": "r", "error": {}})
RECORDED = _event("test.record", {"key": "batch"})


@pytest.mark.parametrize(
    ("function_id", "body", "status"),
    [
        (CLEANUP, _body(SCHEDULED), 200),  # its cron trigger
        (CLEANUP, _body(_event("internal.cleanup-rate-limits", {})), 200),  # its event
        (RUN_ENDED, _body(FAILED), 200),  # the failure function's system event
        (RUN_ENDED, _body(CANCELLED), 200),  # and its other one
        (RECORD, _body(RECORDED, RECORDED), 200),  # a batch of its own events
        (RECORD, _body(SCHEDULED), 401),  # no cron trigger
        (RECORD, _body(FAILED), 401),
        (RECORD, _body(CANCELLED), 401),
        (RECORD, _body(_event("inngest/function.invoked", {"key": "batch"})), 401),
        (RECORD, _body(RECORDED, _event("test.fail_once", {"key": "batch"})), 401),  # one foreign event
        (RUN_ENDED, _body(RECORDED), 401),
        (RECORD, b'{"steps": {}}', 401),  # no event at all
    ],
    ids=[
        "cron-to-cron-function",
        "own-event",
        "failure-event-to-failure-function",
        "cancelled-event-to-failure-function",
        "batch-of-own-events",
        "cron-to-event-function",
        "failure-event-to-job",
        "cancelled-event-to-job",
        "invoked-event",
        "batch-with-a-foreign-event",
        "job-event-to-failure-function",
        "no-event",
    ],
)
def test_a_call_runs_only_the_function_its_signed_events_start(
    inngest_emulator: InngestServer,
    app_url: str,
    database_url: str,
    function_id: str,
    body: bytes,
    status: int,
) -> None:
    before = _world(database_url, inngest_emulator)
    response = _call(app_url, function_id, body, inngest_emulator.sign(body, _now()))
    assert status == response.status_code, response.text
    if status != 200:
        assert before == _world(database_url, inngest_emulator)


# 3. Hostile JSON: a 4xx, never a 500.


@pytest.mark.parametrize("method", ["POST", "PUT", "GET"])
@pytest.mark.parametrize(
    ("body", "signed"),
    [
        (_deep(NESTING_LEVELS), False),
        (b'{"event": ', False),
        (b'{"n": NaN}', False),
        (_deep(200), True),
        (b'"\\u0000"', True),
    ],
    ids=["8000 levels", "truncated", "NaN", "200 levels, signed", "NUL, signed"],
)
def test_deep_or_malformed_json_is_refused_with_a_400(
    inngest_emulator: InngestServer, app_url: str, database_url: str, method: str, body: bytes, signed: bool
) -> None:
    """Not JSON at all: 400 before the signature; JSON docjobs does not take: 400 once it is signed."""
    before = _world(database_url, inngest_emulator)
    signature = inngest_emulator.sign(body, _now()) if signed else f"t={_now()}&s={FORGED_MAC}"
    response = httpx.request(
        method,
        f"{app_url}?fnId={RECORD}&stepId=step",
        content=body,
        headers={"content-type": "application/json", "x-inngest-signature": signature},
    )
    assert 400 == response.status_code, response.text
    assert response.json()["message"].startswith("the body is not acceptable JSON")
    assert before == _world(database_url, inngest_emulator)


@pytest.mark.parametrize("body", [_deep(200), b'"\\u0000"'], ids=["200 levels", "NUL"])
def test_json_docjobs_does_not_take_under_a_forged_signature_is_a_forgery_first(
    inngest_emulator: InngestServer, app_url: str, database_url: str, body: bytes
) -> None:
    before = _world(database_url, inngest_emulator)
    response = httpx.post(
        f"{app_url}?fnId={RECORD}",
        content=body,
        headers={"content-type": "application/json", "x-inngest-signature": f"t={_now()}&s={FORGED_MAC}"},
    )
    assert 401 == response.status_code, response.text
    assert "Unauthorized: invalid X-Inngest-Signature" == response.json()["message"]
    assert before == _world(database_url, inngest_emulator)


# 4. Refusals: nothing written, one log line, no secret.


def test_every_refusal_writes_nothing_and_logs_one_line_without_a_secret(
    inngest_emulator: InngestServer,
    app_url: str,
    database_url: str,
    refusal_lines: Callable[[], list[logging.LogRecord]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = inngest_call_body("test.record", {"key": "refused"})
    genuine = inngest_emulator.sign(raw, _now())
    stamp, mac = genuine.removeprefix("t=").split("&s=")
    assert 200 == _call(app_url, RECORD, raw, genuine).status_code
    attempts: list[Callable[[], httpx.Response]] = [
        lambda: httpx.put(app_url, headers={"host": ATTACKER}),
        lambda: httpx.put(app_url, headers={"x-inngest-signature": inngest_emulator.sign(b"", _now() - 400)}),
        lambda: _call(app_url, RECORD, raw, genuine),  # replayed
        lambda: _call(app_url, RECORD, raw, f"s={mac}&t={stamp}"),
        lambda: _call(app_url, FAIL_ONCE, raw, inngest_emulator.sign(raw, _now() + 1)),
        lambda: _call(app_url, f"{APP_ID}-nothing", raw, inngest_emulator.sign(raw, _now() + 2)),
        lambda: _call(app_url, RECORD, _deep(NESTING_LEVELS), f"t={_now()}&s={FORGED_MAC}"),
        lambda: httpx.get(app_url, headers={"x-inngest-signature": f"t={_now()}&s={FORGED_MAC}"}),
    ]
    before = _world(database_url, inngest_emulator)
    for attempt in attempts:
        lines_before = len(refusal_lines())
        response = attempt()
        assert 400 <= response.status_code < 500, response.text
        assert before == _world(database_url, inngest_emulator), response.text
        lines = refusal_lines()[lines_before:]
        assert 1 == len(lines), [line.getMessage() for line in lines]
        assert str(response.status_code) in lines[0].getMessage()
    text = "\n".join(f"{record.getMessage()} {vars(record)}" for record in caplog.records)
    for secret in (mac, FORGED_MAC, KEY_TEXT, KEY_HASH):
        assert secret not in text
    # The app still runs a genuine call.
    again = inngest_emulator.sign(raw, _now() + 3)
    assert 200 == _call(app_url, RECORD, raw, again).status_code
