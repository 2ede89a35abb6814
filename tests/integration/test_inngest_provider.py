"""The inngest provider through the inngest_emulator: events out, signed calls in, steps memoised."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from docjobs_devkit.http import serve
from docjobs_devkit.inngest import CallFaults, InngestServer

from docjobs.brokers.inngest.broker import InngestBroker
from docjobs.defaults import DEFAULT_INNGEST_APP_ID as APP_ID
from docjobs.runtime import Runtime
from docjobs.settings_rules import PROVIDER_MAX_RETRIES
from docjobs.web.app import create_app
from tests.conftest import (
    INNGEST_SIGNING_KEY,
    app_port,
    events,
    inngest_call_body,
    inngest_overrides,
    job_row,
    wait_for,
)
from tests.support import actors

FALLBACK_KEY = f"signkey-test-{secrets.token_hex(32)}"


@pytest.fixture
def inngest_runtime(make_runtime: Callable[..., Runtime], inngest_emulator: InngestServer) -> Runtime:
    return make_runtime(
        **inngest_overrides(
            inngest_emulator,
            INNGEST_SIGNING_KEY_FALLBACK=FALLBACK_KEY,
            NEXT_PRIVATE_JOBS_CLEANUP_RATE_LIMITS_CRON="*/5 * * * *",
        )
    )


@pytest.fixture
def app_url(inngest_runtime: Runtime) -> Iterator[str]:
    with serve(create_app(inngest_runtime), port=app_port(inngest_runtime)) as base:
        yield f"{base}/api/jobs"


@pytest.fixture
def broker(inngest_runtime: Runtime, inngest_emulator: InngestServer, app_url: str) -> InngestBroker:
    assert 200 == inngest_emulator.sync(app_url).status_code
    assert isinstance(inngest_runtime.broker, InngestBroker)
    return inngest_runtime.broker


def test_a_send_becomes_one_event_named_after_the_job_and_a_repeated_send_runs_once(
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
    broker: InngestBroker,
    inngest_emulator: InngestServer,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="docjobs.brokers.inngest.functions")
    message = broker.enqueue(actors.tasks_job.message(key="steps", fail_after_first=True))
    (run,) = inngest_emulator.wait_for_runs(1)
    assert "completed" == run.status
    kinds = [event["kind"] for event in events(database_url)]
    assert 1 == kinds.count("first")
    assert [0, 0, 1] == [call.attempt for call in run.calls][:3]
    # The worker's log lines: one per failed call, then one for the completion.
    outcomes = [(r.action, r.message_id) for r in caplog.records if hasattr(r, "action")]
    assert ("job_completed", message.message_id) == outcomes[-1]
    assert {("job_raised", message.message_id)} == set(outcomes[:-1])


def test_a_task_out_of_retries_ends_the_job_only_if_the_job_lets_it(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    message = broker.enqueue(actors.step_given_up_job.message(key="caught"))
    wait_for(lambda: [e["kind"] for e in events(database_url, "caught")] == ["caught", "waiting"])
    # The task's last attempt failed, the job caught it and goes on: it has not ended.
    assert "FAILED" != job_row(database_url, message.message_id)["status"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO test_event (key, kind, pid) VALUES ('caught', 'gate-open', 0)")
    (run,) = inngest_emulator.wait_for_runs(1)
    assert "completed" == run.status
    assert "COMPLETED" == job_row(database_url, message.message_id)["status"]
    kinds = [e["kind"] for e in events(database_url, "caught")]
    assert (1, 1) == (kinds.count("waiting"), kinds.count("ran"))  # the code outside tasks runs per call


def test_a_task_out_of_retries_that_the_job_lets_through_fails_it_under_the_task_s_error(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    message = broker.enqueue(actors.step_given_up_job.message(key="uncaught", catch=False))
    runs = inngest_emulator.wait_for_runs(2)  # the run and the failure function's
    assert ["failed", "completed"] == [run.status for run in runs]
    row = job_row(database_url, message.message_id)
    assert ("FAILED", "RuntimeError: the task fails") == (row["status"], row["last_error"])
    assert [] == events(database_url, "uncaught")


def test_a_bad_payload_fails_without_retry(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    message_id = "bad-payload"
    inngest_emulator.send(
        [{"name": "test.record", "data": {"documentId": "not a number", "messageId": message_id}}]
    )
    run, failure = inngest_emulator.wait_for_runs(2)
    assert "failed" == run.status
    assert 1 == len(run.calls)
    assert "PayloadError" in run.error["message"]
    # Inngest's failure event reaches the failure function, which leaves the job's own end alone.
    assert ("inngest/function.failed", "completed") == (failure.event["name"], failure.status)
    row = job_row(database_url, message_id)
    assert ("FAILED", 1) == (row["status"], row["attempts"])
    assert row["last_error"].startswith("PayloadError: test.record")


def test_a_run_whose_calls_never_reach_the_app_ends_failed_not_pending(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    inngest_emulator.faults = CallFaults(drop_request=1.0, functions=(f"{APP_ID}-test.fail_when",))
    message = actors.fail_when_job.send(key="unreached", fail=False)  # recorded PENDING by this sender
    run, failure = inngest_emulator.wait_for_runs(2)
    assert ["dropped-request"] == [call.fault for call in run.calls]  # max_retries=0: one attempt
    assert ("inngest/function.failed", "completed") == (failure.event["name"], failure.status)
    row = job_row(database_url, message.message_id)
    assert ("FAILED", []) == (row["status"], events(database_url))  # never ran
    assert row["last_error"] == (
        "Inngest gave up on the run: ConnectError: the emulator lost the call before the app got it"
    )


def test_a_job_that_completed_stays_completed_when_inngest_lost_every_answer(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    inngest_emulator.faults = CallFaults(drop_answer=1.0, functions=(f"{APP_ID}-test.record",))
    message = actors.record_job.send(key="answer-lost")
    run, failure = inngest_emulator.wait_for_runs(2)
    retries = PROVIDER_MAX_RETRIES["inngest"]  # the actor's own is unset
    assert ["dropped-answer"] * (retries + 1) == [call.fault for call in run.calls]
    assert ("inngest/function.failed", "completed") == (failure.event["name"], failure.status)
    # The job ran on every attempt (at least once, as Inngest promises) and its end is its own.
    assert retries + 1 == len(events(database_url))
    assert "COMPLETED" == job_row(database_url, message.message_id)["status"]


def test_the_failure_function_leaves_other_apps_failures_alone(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    message = actors.record_job.send(key="not-theirs")
    inngest_emulator.wait_for_runs(1)
    data = {"error": {"name": "Error", "message": "theirs"}, "run_id": "r1"}
    inngest_emulator.send(
        [
            {"name": "inngest/function.failed", "data": {**data, "function_id": "other-app-test.record",
                                                         "event": {"name": "test.record", "data": {
                                                             "messageId": message.message_id}}}},
            {"name": "inngest/function.failed", "data": {**data, "function_id": f"{APP_ID}-unknown",
                                                         "event": {"data": {"messageId": message.message_id}}}},
            {"name": "inngest/function.failed", "data": {**data, "function_id": f"{APP_ID}-test.record",
                                                         "event": "not an event"}},
        ]
    )  # fmt: skip
    runs = inngest_emulator.wait_for_runs(4)
    assert ["completed"] * 4 == [run.status for run in runs]
    row = job_row(database_url, message.message_id)
    assert ("COMPLETED", None) == (row["status"], row["last_error"])


def _outbox(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT id FROM job_outbox").fetchall()


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
    raw = inngest_call_body("test.record", {"key": case})
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


def test_a_replayed_call_is_refused_while_its_signature_is_fresh(
    broker: InngestBroker, inngest_emulator: InngestServer, app_url: str, database_url: str
) -> None:
    raw = inngest_call_body("test.record", {"key": "replayed"})
    headers = {"x-inngest-signature": inngest_emulator.sign(raw, round(time.time()))}
    url = f"{app_url}?fnId=documenso-app-test.record&stepId=step"
    assert 200 == httpx.post(url, content=raw, headers=headers).status_code
    replayed = httpx.post(url, content=raw, headers=headers)
    assert (401, "Unauthorized: replayed X-Inngest-Signature") == (
        replayed.status_code,
        replayed.json()["message"],
    )
    assert ["replayed"] == [event["key"] for event in events(database_url)]
    # Inngest signs a retry anew: the same call signed a second later runs again.
    again = {"x-inngest-signature": inngest_emulator.sign(raw, round(time.time()) + 1)}
    assert 200 == httpx.post(url, content=raw, headers=again).status_code
    assert ["replayed"] * 2 == [event["key"] for event in events(database_url)]


def test_introspection_tells_the_dev_server_little_and_a_signed_cloud_request_more(
    broker: InngestBroker, inngest_emulator: InngestServer, app_url: str
) -> None:
    assert 401 == httpx.get(app_url).status_code
    # A second on from the sync's signature, which (over the same empty body) it would repeat.
    signed = httpx.get(
        app_url, headers={"x-inngest-signature": inngest_emulator.sign(b"", round(time.time()) + 1)}
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
