"""The Inngest inngest_emulator against functions written with the ``inngest`` SDK (not docjobs').

The app is the SDK's own: its functions, its protocol handler (``CommHandler``), its
signing of responses; docjobs contributes only the Starlette routes around it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import inngest
import pytest
from docjobs_devkit.http import serve
from docjobs_devkit.inngest import InngestServer
from docjobs_devkit.services import free_port
from starlette.applications import Starlette

from docjobs.brokers.inngest.serve import serve_routes
from tests.conftest import INNGEST_SIGNING_KEY, wait_for

APP = "emulated"


class Counters:
    """How often each piece of user code ran."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def bump(self, name: str) -> int:
        self.counts[name] = self.counts.get(name, 0) + 1
        return self.counts[name]


@pytest.fixture
def counters() -> Counters:
    return Counters()


def make_functions(client: inngest.Inngest, counters: Counters) -> list[inngest.Function[Any]]:
    @client.create_function(
        fn_id="two-steps", trigger=inngest.TriggerEvent(event="test/two-steps"), retries=3
    )
    def two_steps(ctx: inngest.ContextSync) -> str:
        first = ctx.step.run("first", lambda: f"first-{counters.bump('first')}")

        def second() -> str:
            if counters.bump("second") == 1:
                raise RuntimeError("the second step fails once")
            return "second"

        return f"{first}+{ctx.step.run('second', second)}+{ctx.event.data['who']}"

    @client.create_function(fn_id="refuses", trigger=inngest.TriggerEvent(event="test/refuses"), retries=3)
    def refuses(ctx: inngest.ContextSync) -> None:
        counters.bump("refuses")
        raise inngest.NonRetriableError("bad payload")

    @client.create_function(fn_id="always-fails", trigger=inngest.TriggerEvent(event="test/fails"), retries=2)
    def always_fails(ctx: inngest.ContextSync) -> None:
        counters.bump("always-fails")
        raise RuntimeError("never works")

    @client.create_function(fn_id="naps", trigger=inngest.TriggerEvent(event="test/naps"))
    def naps(ctx: inngest.ContextSync) -> float:
        started = ctx.step.run("started", time.time)
        ctx.step.sleep("nap", timedelta(milliseconds=1000))
        return float(ctx.step.run("woke", time.time)) - float(started)

    @client.create_function(fn_id="ticks", trigger=inngest.TriggerCron(cron="0 3 * * *"))
    def ticks(ctx: inngest.ContextSync) -> str:
        counters.bump("ticks")
        return str(ctx.event.name)

    @client.create_function(
        fn_id="cancellable",
        trigger=inngest.TriggerEvent(event="test/long-nap"),
        cancel=[inngest.Cancel(event="test/stop", if_exp="event.data.job == async.data.job")],
    )
    def cancellable(ctx: inngest.ContextSync) -> str:
        ctx.step.sleep("long-nap", timedelta(seconds=30))
        counters.bump("woke")
        return "woke"

    @client.create_function(fn_id="awaits", trigger=inngest.TriggerEvent(event="test/awaits"))
    def awaits(ctx: inngest.ContextSync) -> str | None:
        event = ctx.step.wait_for_event(
            "go", event="test/go", if_exp="event.data.job == async.data.job", timeout=timedelta(seconds=1)
        )
        return None if event is None else str(event.data["note"])

    return [two_steps, refuses, always_fails, naps, ticks, cancellable, awaits]


def start_app(
    inngest_emulator: InngestServer, counters: Counters, *, signing_key: str = INNGEST_SIGNING_KEY
) -> tuple[Any, str]:
    client = inngest.Inngest(
        app_id=APP,
        is_production=True,
        signing_key=signing_key,
        event_key=inngest_emulator.event_key,
        api_base_url=inngest_emulator.url,
        event_api_base_url=inngest_emulator.url,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/jobs"
    routes = serve_routes(
        client, make_functions(client, counters), path="/api/jobs", signing_keys=[signing_key], serve_url=url
    )
    context = serve(Starlette(routes=routes), port=port)
    context.__enter__()
    return context, url


@pytest.fixture
def app(inngest_emulator: InngestServer, counters: Counters) -> Iterator[str]:
    context, url = start_app(inngest_emulator, counters)
    try:
        response = inngest_emulator.sync(url)
        assert 200 == response.status_code, response.text
        yield url
    finally:
        context.__exit__(None, None, None)


def test_a_sync_registers_every_function_with_its_triggers_and_retries(
    inngest_emulator: InngestServer, app: str
) -> None:
    names = ("two-steps", "refuses", "always-fails", "naps", "ticks", "cancellable", "awaits")
    assert {f"{APP}-{name}" for name in names} == set(inngest_emulator.functions)
    assert [{"cron": "0 3 * * *"}] == inngest_emulator.functions[f"{APP}-ticks"].triggers
    assert 4 == inngest_emulator.functions[f"{APP}-two-steps"].max_attempts
    assert inngest_emulator.functions[f"{APP}-naps"].url.startswith(app)


def test_a_step_completed_before_a_failure_is_not_run_again(
    inngest_emulator: InngestServer, app: str, counters: Counters
) -> None:
    inngest_emulator.send([{"name": "test/two-steps", "data": {"who": "ada"}}])
    (run,) = inngest_emulator.wait_for_runs(1)
    assert ("completed", "first-1+second+ada") == (run.status, run.output)
    assert {"first": 1, "second": 2} == counters.counts
    assert [200] == [call.status for call in run.calls if call.status == 200]


def test_an_event_id_seen_before_starts_nothing(
    inngest_emulator: InngestServer, app: str, counters: Counters
) -> None:
    event = {"id": "same-id", "name": "test/two-steps", "data": {"who": "grace"}}
    assert ["same-id", "same-id"] == inngest_emulator.send([event, event])
    assert ["same-id"] == inngest_emulator.send([event])
    # Runs start while the event is accepted: a duplicate would show here already.
    assert 1 == len(inngest_emulator.runs)
    (run,) = inngest_emulator.wait_for_runs(1)
    assert "completed" == run.status


def test_a_non_retriable_error_fails_the_run_at_once(
    inngest_emulator: InngestServer, app: str, counters: Counters
) -> None:
    inngest_emulator.send([{"name": "test/refuses", "data": {}}])
    (run,) = inngest_emulator.wait_for_runs(1)
    assert "failed" == run.status
    assert 1 == counters.counts["refuses"]
    assert "true" == run.calls[-1].headers["x-inngest-no-retry"]
    assert "bad payload" == run.error["message"]


def test_a_failing_function_gets_its_retries_with_growing_backoff(
    inngest_emulator: InngestServer, app: str, counters: Counters
) -> None:
    inngest_emulator.send([{"name": "test/fails", "data": {}}])
    (run,) = inngest_emulator.wait_for_runs(1)
    assert ("failed", 3) == (run.status, counters.counts["always-fails"])
    assert [0, 1, 2] == [call.attempt for call in run.calls]
    assert "never works" == run.error["message"]


def test_a_sleep_is_waited_out_by_the_server(inngest_emulator: InngestServer, app: str) -> None:
    inngest_emulator.send([{"name": "test/naps", "data": {}}])
    (run,) = inngest_emulator.wait_for_runs(1)
    assert "completed" == run.status
    assert run.output >= 0.9  # the SDK's end time is rounded to milliseconds


def test_a_cancel_event_ends_only_the_runs_its_expression_matches(
    inngest_emulator: InngestServer, app: str, counters: Counters
) -> None:
    inngest_emulator.send([{"name": "test/long-nap", "data": {"job": job}} for job in ("a", "b")])
    runs = {run.event["data"]["job"]: run for run in inngest_emulator.runs}
    wait_for(lambda: all(run.calls for run in runs.values()))  # both asleep in their first step
    inngest_emulator.send([{"name": "test/stop", "data": {"job": "a"}}])
    assert runs["a"].done.wait(5)
    assert ("cancelled", "running") == (runs["a"].status, runs["b"].status)
    assert "woke" not in counters.counts


def test_a_wait_ends_on_its_matching_event_or_at_its_timeout(
    inngest_emulator: InngestServer, app: str
) -> None:
    inngest_emulator.send([{"name": "test/awaits", "data": {"job": job}} for job in ("a", "b")])
    runs = {run.event["data"]["job"]: run for run in inngest_emulator.runs}
    wait_for(lambda: all(run.waiting is not None for run in runs.values()))
    started = time.monotonic()
    inngest_emulator.send([{"name": "test/go", "data": {"job": "a", "note": "go, a"}}])
    assert runs["a"].done.wait(5)
    assert ("completed", "go, a") == (runs["a"].status, runs["a"].output)
    assert time.monotonic() - started < 0.9  # the event, not the timeout
    assert runs["b"].done.wait(5)
    assert ("completed", None) == (runs["b"].status, runs["b"].output)


def test_a_cron_trigger_fires_its_function(
    inngest_emulator: InngestServer, app: str, counters: Counters
) -> None:
    inngest_emulator.fire_cron(f"{APP}-ticks")
    (run,) = inngest_emulator.wait_for_runs(1)
    assert ("completed", "inngest/scheduled.timer") == (run.status, run.output)


def test_calls_signed_with_another_key_run_nothing(
    inngest_emulator: InngestServer, counters: Counters
) -> None:
    context, url = start_app(inngest_emulator, counters, signing_key=f"signkey-test-{secrets.token_hex(32)}")
    try:
        # The app's bearer does not match the inngest_emulator's key: the sync is refused...
        inngest_emulator.sync(url)
        assert {} == inngest_emulator.functions and [] == inngest_emulator.registrations
        # ...and a call signed with the inngest_emulator's key is refused by the app.
        inngest_emulator.functions[f"{APP}-two-steps"] = _function_at(url, "two-steps")
        inngest_emulator.send([{"name": "test/two-steps", "data": {"who": "eve"}}])
        (run,) = inngest_emulator.wait_for_runs(1)
    finally:
        context.__exit__(None, None, None)
    assert "failed" == run.status
    assert {401} == {call.status for call in run.calls}
    assert {} == counters.counts


def test_a_wrong_event_key_is_refused(inngest_emulator: InngestServer) -> None:
    import httpx

    response = httpx.post(f"{inngest_emulator.url}/e/not-the-key", json=[{"name": "test/two-steps"}])
    assert 401 == response.status_code
    assert [] == inngest_emulator.events


def _function_at(url: str, name: str) -> Any:
    from docjobs_devkit.inngest import Function

    return Function(
        id=f"{APP}-{name}",
        name=name,
        triggers=[{"event": f"test/{name}"}],
        url=f"{url}?fnId={APP}-{name}",
        retries=1,
    )
