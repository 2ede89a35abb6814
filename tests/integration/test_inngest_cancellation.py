"""Runs Inngest cancelled, timed out or gave up on close their jobs' history (issue 22).

The emulator makes two calls at once here, so the function that closes a run's job
(``docjobs.run-ended``) is called while a cancelled run's own call still runs, as on Inngest.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import inngest
import psycopg
import pytest
from docjobs_devkit.http import serve
from docjobs_devkit.inngest import CallFaults, InngestServer

from docjobs.brokers.inngest.broker import InngestBroker
from docjobs.defaults import DEFAULT_INNGEST_APP_ID as APP_ID
from docjobs.runtime import Runtime
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

RUN_ENDED = f"{APP_ID}-docjobs.run-ended"
CANCELLED = "inngest/function.cancelled"
FAILED = "inngest/function.failed"
#: The job whose function has ``timeouts.finish`` here.
TIMED_JOB = "test.gated"


@pytest.fixture
def inngest_emulator() -> Iterator[InngestServer]:
    server = InngestServer(signing_key=INNGEST_SIGNING_KEY, concurrency=2).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def inngest_runtime(make_runtime: Callable[..., Runtime], inngest_emulator: InngestServer) -> Runtime:
    current = make_runtime(**inngest_overrides(inngest_emulator))
    assert isinstance(current.broker, InngestBroker)
    current.broker.function_timeouts[TIMED_JOB] = inngest.Timeouts(finish=timedelta(seconds=1))
    return current


@pytest.fixture
def app_url(inngest_runtime: Runtime) -> Iterator[str]:
    with serve(create_app(inngest_runtime), port=app_port(inngest_runtime)) as base:
        yield f"{base}/api/jobs"


@pytest.fixture
def broker(inngest_runtime: Runtime, inngest_emulator: InngestServer, app_url: str) -> InngestBroker:
    assert 200 == inngest_emulator.sync(app_url).status_code
    assert isinstance(inngest_runtime.broker, InngestBroker)
    return inngest_runtime.broker


def _status(url: str, job_id: str) -> Callable[[], str | None]:
    def status() -> str | None:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT status FROM background_job WHERE id = %s", (job_id,)).fetchone()
        return None if row is None else str(row[0])

    return status


def _ended(url: str, job_id: str) -> tuple[str, str | None, Any]:
    row = job_row(url, job_id)
    return row["status"], row["last_error"], row["completed_at"]


def _bearer() -> str:
    key = INNGEST_SIGNING_KEY.removeprefix("signkey-test-")
    return f"Bearer {hashlib.sha256(bytes.fromhex(key)).hexdigest()}"


def test_a_run_cancelled_through_inngest_s_api_while_its_job_waits_ends_cancelled(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    message = broker.enqueue(actors.record_job.message(key="queued"), delay=3_600_000)
    wait_for(lambda: "PENDING" == _status(database_url, message.message_id)())
    (run,) = inngest_emulator.runs
    wait_for(lambda: run.calls)  # asleep until the job is due
    with httpx.Client() as client:
        refused = client.delete(f"{inngest_emulator.url}/v1/runs/{run.id}")
        answer = client.delete(
            f"{inngest_emulator.url}/v1/runs/{run.id}", headers={"authorization": _bearer()}
        )
    assert (401, 200) == (refused.status_code, answer.status_code)
    run, ended = inngest_emulator.wait_for_runs(2)
    assert ("cancelled", CANCELLED, "completed") == (run.status, ended.event["name"], ended.status)
    assert (RUN_ENDED, run.id) == (ended.function.id, ended.event["id"])
    status, error, _ = _ended(database_url, message.message_id)
    assert ("CANCELLED", "cancelled in Inngest") == (status, error)
    assert [] == events(database_url, "queued")


def test_a_run_cancelled_before_inngest_first_called_it_ends_cancelled(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    # Both of the emulator's callers are busy: the next run waits in its queue.
    for key in ("busy-1", "busy-2"):
        broker.enqueue(actors.sleep_job.message(key=key, seconds=2.0))
    wait_for(lambda: all(events(database_url, key) for key in ("busy-1", "busy-2")))
    message = broker.enqueue(actors.record_job.message(key="still-queued"))
    wait_for(lambda: "PENDING" == _status(database_url, message.message_id)())
    (queued,) = [run for run in inngest_emulator.runs if run.event["id"] == message.message_id]
    assert [] == queued.calls
    assert inngest_emulator.cancel_run(queued.id)
    wait_for(lambda: "CANCELLED" == _status(database_url, message.message_id)())
    inngest_emulator.wait_idle()
    assert ([], "cancelled") == (queued.calls, queued.status)
    assert ("CANCELLED", "cancelled in Inngest") == _ended(database_url, message.message_id)[:2]
    assert [] == events(database_url, "still-queued")


def test_a_run_cancelled_while_its_job_runs_ends_cancelled_and_the_job_s_later_end_does_not_reopen_it(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    message = broker.enqueue(actors.sleep_job.message(key="running", seconds=1.5))
    wait_for(lambda: [e["kind"] for e in events(database_url, "running")] == ["started"])
    (run,) = inngest_emulator.runs
    assert inngest_emulator.cancel_run(run.id)
    wait_for(lambda: "CANCELLED" == _status(database_url, message.message_id)())
    assert [] != [e for e in events(database_url, "running")]  # the job is still running
    wait_for(lambda: [e["kind"] for e in events(database_url, "running")] == ["started", "finished"])
    inngest_emulator.wait_idle()
    broker.history.flush()  # the job's own end, recorded before its call was answered
    assert "cancelled" == run.status
    assert 200 == run.calls[-1].status  # the job answered; Inngest dropped the answer
    assert ("CANCELLED", "cancelled in Inngest") == _ended(database_url, message.message_id)[:2]


def test_a_run_that_outlives_its_finish_timeout_ends_cancelled_as_timed_out(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    (registration,) = inngest_emulator.registrations
    (config,) = [f for f in registration["functions"] if f["id"] == f"{APP_ID}-{TIMED_JOB}"]
    assert {"finish": "1s"} == {k: v for k, v in config["timeouts"].items() if v}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO test_event (key, kind, pid) VALUES ('slow', 'gate-open', 0)")
    message = broker.enqueue(actors.gated_job.message(key="slow", seconds=3.0))
    wait_for(lambda: "CANCELLED" == _status(database_url, message.message_id)(), timeout=15)
    run = inngest_emulator.runs[0]
    assert "cancelled" == run.status
    status, error, _ = _ended(database_url, message.message_id)
    assert "timed out in Inngest after 1s (its timeouts.finish)" == error
    inngest_emulator.wait_idle()
    broker.history.flush()
    assert "CANCELLED" == job_row(database_url, message.message_id)["status"]


def test_a_run_inngest_gave_up_on_without_the_app_seeing_its_last_attempt_ends_failed_once(
    broker: InngestBroker, inngest_emulator: InngestServer, database_url: str
) -> None:
    inngest_emulator.faults = CallFaults(drop_request=1.0, functions=(f"{APP_ID}-test.fail_when",))
    message = actors.fail_when_job.send(key="unreached", fail=False)
    run, ended = inngest_emulator.wait_for_runs(2)
    assert ("failed", FAILED) == (run.status, ended.event["name"])
    first = _ended(database_url, message.message_id)
    assert ("FAILED", "Inngest gave up on the run: ConnectError: the emulator lost the call before the app got it") \
        == first[:2]  # fmt: skip
    # The same event again (another id: Inngest would drop the same one), then a late cancellation.
    inngest_emulator.send([{**ended.event, "id": "again"}])
    inngest_emulator.wait_for_runs(3)
    assert first == _ended(database_url, message.message_id)
    inngest_emulator.send([{**ended.event, "id": "late", "name": CANCELLED}])
    inngest_emulator.wait_for_runs(4)
    assert first == _ended(database_url, message.message_id)
    assert [RUN_ENDED] * 3 == [run.function.id for run in inngest_emulator.runs[1:]]


def test_repeated_late_and_unknown_cancellations_change_nothing(
    broker: InngestBroker,
    inngest_emulator: InngestServer,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="docjobs.brokers.inngest.endings")
    completed = actors.record_job.send(key="done")
    cancelled = broker.enqueue(actors.record_job.message(key="cancel-me"), delay=3_600_000)
    wait_for(lambda: "PENDING" == _status(database_url, cancelled.message_id)())
    wait_for(lambda: "COMPLETED" == _status(database_url, completed.message_id)())
    done_run, waiting_run = sorted(inngest_emulator.runs, key=lambda run: run.status != "completed")
    assert ("completed", "running") == (done_run.status, waiting_run.status)
    assert inngest_emulator.cancel_run(waiting_run.id)
    inngest_emulator.wait_for_runs(3)
    first = _ended(database_url, cancelled.message_id)
    assert ("CANCELLED", "cancelled in Inngest") == first[:2]
    before_done = _ended(database_url, completed.message_id)

    def system_event(name: str, run_id: str, event: dict[str, Any], event_id: str) -> dict[str, Any]:
        data = {"function_id": f"{APP_ID}-test.record", "run_id": run_id, "event": event,
                "error": {"name": "Error", "message": "function cancelled"}}  # fmt: skip
        return {"id": event_id, "name": name, "data": data}

    inngest_emulator.send(
        [
            system_event(CANCELLED, waiting_run.id, waiting_run.event, "repeated"),
            # Older Inngest: function.failed for a cancelled run too.
            system_event(FAILED, waiting_run.id, waiting_run.event, "legacy-failed"),
            system_event(CANCELLED, done_run.id, done_run.event, "too-late"),
            system_event(
                CANCELLED, "r-unknown", {"name": "test.record", "data": {"messageId": "no-such-job"}}, "u"
            ),
        ]
    )
    inngest_emulator.wait_for_runs(7)
    assert ["completed"] * 5 == [run.status for run in inngest_emulator.runs_of(RUN_ENDED)]
    assert first == _ended(database_url, cancelled.message_id)
    assert ("COMPLETED", None) == before_done[:2]
    assert before_done == _ended(database_url, completed.message_id)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT 1 FROM background_job WHERE id = 'no-such-job'").fetchone() is None
    assert any(
        "no such job" in record.getMessage() for record in caplog.records if record.levelno == logging.DEBUG
    )


def test_a_forged_or_replayed_cancellation_is_refused_and_closes_nothing(
    broker: InngestBroker, inngest_emulator: InngestServer, app_url: str, database_url: str
) -> None:
    message = broker.enqueue(actors.record_job.message(key="forged"), delay=3_600_000)
    wait_for(lambda: "PENDING" == _status(database_url, message.message_id)())
    (run,) = inngest_emulator.runs
    data = {"function_id": f"{APP_ID}-test.record", "run_id": run.id, "event": run.event,
            "error": {"name": "Error", "message": "function cancelled"}}  # fmt: skip
    body = inngest_call_body(CANCELLED, data)
    url = f"{app_url}?fnId={RUN_ENDED}&stepId=step"
    forged_key = "signkey-test-" + "00" * 32
    with httpx.Client() as client:

        def call(signature: str) -> int:
            headers = {"content-type": "application/json", "x-inngest-signature": signature}
            return client.post(url, content=body, headers=headers).status_code

        assert 401 == call(inngest_emulator.sign(body, key=forged_key))
        assert "PENDING" == _status(database_url, message.message_id)()
        signature = inngest_emulator.sign(body)
        assert 200 == call(signature)  # Inngest's own: it closes the job
        assert "CANCELLED" == _status(database_url, message.message_id)()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE background_job SET status = 'PENDING' WHERE id = %s", (message.message_id,))
        assert 401 == call(signature)  # the same call again
    assert "PENDING" == _status(database_url, message.message_id)()
