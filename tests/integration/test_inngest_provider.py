"""docjobs' actors as Inngest functions, run through the emulator (the runtime wiring is to come)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import inngest
import pytest
from starlette.applications import Starlette

from docjobs import registry
from docjobs.inngest.broker import InngestBroker
from docjobs.inngest.functions import build_functions
from docjobs.inngest.serve import serve_routes
from docjobs.runtime import Runtime
from docjobs.testing.http import serve
from tests.conftest import events
from tests.support import actors
from tests.support.inngest_server import InngestServer

SIGNING_KEY = f"signkey-test-{secrets.token_hex(32)}"


@pytest.fixture
def emulator() -> Iterator[InngestServer]:
    server = InngestServer(signing_key=SIGNING_KEY).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker(make_runtime: Callable[..., Runtime], emulator: InngestServer) -> Iterator[InngestBroker]:
    current = make_runtime()  # the database the test actors record into
    client = inngest.Inngest(
        app_id="documenso-app",
        is_production=True,
        signing_key=SIGNING_KEY,
        event_key=emulator.event_key,
        api_base_url=emulator.url,
        event_api_base_url=emulator.url,
    )
    jobs = [job for name, job in registry.declared().items() if name.startswith("test.")]
    functions = build_functions(client, jobs, cron=current.cron, default_retries=4)
    routes = serve_routes(client, functions, path="/api/jobs", signing_keys=[SIGNING_KEY])
    with serve(Starlette(routes=routes)) as base:
        assert 200 == emulator.sync(f"{base}/api/jobs").status_code
        yield InngestBroker(client, middleware=[])


def test_a_send_becomes_an_event_and_the_job_runs_once_per_message(
    broker: InngestBroker, emulator: InngestServer, database_url: str
) -> None:
    message = actors.record_job.message(key="via-inngest")
    broker.enqueue(message)
    broker.enqueue(message)  # a repeated send: same event id
    (run,) = emulator.wait_for_runs(1)
    assert "completed" == run.status
    (event,) = emulator.events
    assert (message.message_id, "test.record") == (event["id"], event["name"])
    assert {"key": "via-inngest", "documentId": 0, "messageId": message.message_id} == event["data"]
    assert [(message.message_id, "via-inngest")] == [(e["job_id"], e["key"]) for e in events(database_url)]


def test_a_task_finished_before_a_failure_is_not_run_again(
    broker: InngestBroker, emulator: InngestServer, database_url: str
) -> None:
    broker.enqueue(actors.tasks_job.message(key="steps", fail_after_first=True))
    (run,) = emulator.wait_for_runs(1)
    assert "completed" == run.status
    kinds = [event["kind"] for event in events(database_url)]
    assert 1 == kinds.count("first")
    assert [0, 0, 1] == [call.attempt for call in run.calls][:3]


def test_a_bad_payload_fails_without_retry(broker: InngestBroker, emulator: InngestServer) -> None:
    emulator.send([{"name": "test.record", "data": {"documentId": "not a number"}}])
    (run,) = emulator.wait_for_runs(1)
    assert "failed" == run.status
    assert 1 == len(run.calls)
    assert "PayloadError" in run.error["message"]
