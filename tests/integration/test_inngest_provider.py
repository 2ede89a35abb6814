"""The inngest provider through the inngest_emulator: events out, signed calls in, steps memoised."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from docjobs.inngest.broker import InngestBroker
from docjobs.runtime import Runtime
from docjobs.testing.http import serve
from docjobs.web.app import create_app
from tests.conftest import INNGEST_SIGNING_KEY, events
from tests.support import actors
from tests.support.inngest_server import InngestServer

FALLBACK_KEY = f"signkey-test-{secrets.token_hex(32)}"


@pytest.fixture
def inngest_runtime(make_runtime: Callable[..., Runtime], inngest_emulator: InngestServer) -> Runtime:
    return make_runtime(
        NEXT_PRIVATE_JOBS_PROVIDER="inngest",
        INNGEST_BASE_URL=inngest_emulator.url,
        INNGEST_SIGNING_KEY=INNGEST_SIGNING_KEY,
        INNGEST_SIGNING_KEY_FALLBACK=FALLBACK_KEY,
        INNGEST_EVENT_KEY=inngest_emulator.event_key,
        NEXT_PRIVATE_JOBS_CLEANUP_RATE_LIMITS_CRON="*/5 * * * *",
    )


@pytest.fixture
def app_url(inngest_runtime: Runtime) -> Iterator[str]:
    with serve(create_app(inngest_runtime)) as base:
        yield f"{base}/api/jobs"


@pytest.fixture
def broker(inngest_runtime: Runtime, inngest_emulator: InngestServer, app_url: str) -> InngestBroker:
    assert 200 == inngest_emulator.sync(app_url).status_code
    assert isinstance(inngest_runtime.broker, InngestBroker)
    return inngest_runtime.broker


def test_a_send_becomes_an_event_and_the_job_runs_once_per_message(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    message = actors.record_job.message(key="via-inngest")
    broker.enqueue(message)
    broker.enqueue(message)  # a repeated send: same event id
    (run,) = inngest_emulator.wait_for_runs(1)
    assert "completed" == run.status
    (event,) = inngest_emulator.events
    assert (message.message_id, "test.record") == (event["id"], event["name"])
    assert {"key": "via-inngest", "documentId": 0, "messageId": message.message_id} == event["data"]
    assert [(message.message_id, "via-inngest")] == [(e["job_id"], e["key"]) for e in events(database_url)]


def test_a_task_finished_before_a_failure_is_not_run_again(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    broker.enqueue(actors.tasks_job.message(key="steps", fail_after_first=True))
    (run,) = inngest_emulator.wait_for_runs(1)
    assert "completed" == run.status
    kinds = [event["kind"] for event in events(database_url)]
    assert 1 == kinds.count("first")
    assert [0, 0, 1] == [call.attempt for call in run.calls][:3]


def test_a_bad_payload_fails_without_retry(broker: InngestBroker, inngest_emulator: InngestServer) -> None:
    inngest_emulator.send([{"name": "test.record", "data": {"documentId": "not a number"}}])
    (run,) = inngest_emulator.wait_for_runs(1)
    assert "failed" == run.status
    assert 1 == len(run.calls)
    assert "PayloadError" in run.error["message"]


def _call_body(job: str, data: dict[str, Any]) -> bytes:
    event = {"id": "evt-1", "name": job, "data": data, "ts": int(time.time() * 1000)}
    ctx = {"run_id": "run-1", "attempt": 0, "disable_immediate_execution": False, "use_api": False,
           "max_attempts": 5, "stack": {"stack": [], "current": 0}}  # fmt: skip
    return json.dumps({"event": event, "events": [event], "steps": {}, "ctx": ctx, "use_api": False}).encode()


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("good", 200),
        ("fallback key", 200),
        ("missing", 401),
        ("bad", 401),
        ("stale", 401),
        ("wrong key", 401),
    ],
)
def test_a_call_runs_only_with_a_fresh_signature_of_a_known_key(
    broker: InngestBroker,
    inngest_emulator: InngestServer,
    app_url: str,
    database_url: str,
    case: str,
    status: int,
) -> None:
    raw = _call_body("test.record", {"key": case})
    now = round(time.time())
    headers = {
        "good": {"x-inngest-signature": inngest_emulator.sign(raw, now)},
        "fallback key": {"x-inngest-signature": inngest_emulator.sign(raw, now, FALLBACK_KEY)},
        "missing": {},
        "bad": {"x-inngest-signature": inngest_emulator.sign(raw, now).replace("s=", "s=0")},
        "stale": {"x-inngest-signature": inngest_emulator.sign(raw, now - 301)},
        "wrong key": {
            "x-inngest-signature": inngest_emulator.sign(raw, now, f"signkey-test-{secrets.token_hex(32)}")
        },
    }[case]
    response = httpx.post(
        f"{app_url}?fnId=documenso-app-test.record&stepId=step", content=raw, headers=headers
    )
    assert status == response.status_code, response.text
    assert ([case] if status == 200 else []) == [event["key"] for event in events(database_url)]
    assert INNGEST_SIGNING_KEY not in response.text and FALLBACK_KEY not in response.text


def test_introspection_tells_the_dev_server_little_and_a_signed_cloud_request_more(
    broker: InngestBroker, inngest_emulator: InngestServer, app_url: str
) -> None:
    assert 401 == httpx.get(app_url).status_code
    signed = httpx.get(
        app_url, headers={"x-inngest-signature": inngest_emulator.sign(b"", round(time.time()))}
    )
    assert 200 == signed.status_code
    body = signed.json()
    assert ("documenso-app", True) == (body["app_id"], body["authentication_succeeded"])
    assert body["function_count"] >= 20


def test_scheduled_jobs_get_their_cron_trigger_and_run_when_it_fires(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    function = inngest_emulator.functions["documenso-app-internal.cleanup-rate-limits"]
    assert {"event": "internal.cleanup-rate-limits"} in function.triggers
    assert {"cron": "*/5 * * * *"} in function.triggers  # the override, not the table's default
    assert {"cron": "0 3 * * *"} in inngest_emulator.functions[
        "documenso-app-internal.cleanup-background-jobs"
    ].triggers
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO rate_limit (key, action, bucket, created_at) "
            "VALUES ('old', 'sign-in', now(), now() - interval '2 days')"
        )
    run = inngest_emulator.fire_cron("documenso-app-internal.cleanup-rate-limits")
    inngest_emulator.wait_for_runs(1)
    assert "completed" == run.status
    with psycopg.connect(database_url) as conn:
        assert (0,) == conn.execute("SELECT count(*) FROM rate_limit").fetchone()
