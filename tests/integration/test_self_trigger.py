"""The signed self-request: the client (coalesced, never blocking) and the endpoint."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import psycopg
import pytest
from docjobs_devkit.http import Receiver, serve

from docjobs import runtime
from docjobs import signatures as signature
from docjobs.brokers.local import selftrigger
from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from tests.conftest import TEST_SECONDARY_KEY, job_row, wait_for
from tests.support import actors
from tests.support.waits import settle_local_consumer

KEY = TEST_SECONDARY_KEY.encode()
#: Consumers of these tests only wake on the self-request (no LISTEN, a 30 s poll).
ONLY_SELF_REQUESTS = {"NEXT_PRIVATE_JOBS_LISTEN": "false", "NEXT_PRIVATE_JOBS_POLL_INTERVAL_SECONDS": "30"}


def signed(
    actor: str, job_id: str, *, timestamp: int | None = None, key: bytes = KEY
) -> tuple[bytes, dict[str, str]]:
    body = selftrigger.request_body(actor, job_id)
    stamp = int(time.time()) if timestamp is None else timestamp
    return body, {
        "Content-Type": "application/json",
        signature.TIMESTAMP_HEADER: str(stamp),
        signature.SIGNATURE_HEADER: signature.sign(key, stamp, body),
    }


def store_job(sender: Runtime, key: str, actor: object = actors.record_job, **payload: object) -> str:
    """Write a job row without waking anyone (as if every wake-up were lost)."""
    message = actor.message(key=key, **payload)  # type: ignore[attr-defined]
    assert sender.store is not None
    sender.store.jobs.insert(sender.broker._new_job(message, None))
    return str(message.message_id)


@pytest.fixture
def web(make_runtime: Callable[..., Runtime], database_url: str) -> tuple[Runtime, str]:
    current = make_runtime(**ONLY_SELF_REQUESTS)
    with serve(create_app(current, embedded_worker=True)) as base_url:
        # From now on the embedded consumer sleeps until a wake-up or its 30 s poll.
        settle_local_consumer(current, database_url)
        yield current, base_url


def test_a_send_from_another_process_wakes_the_web_app_consumer(
    web: tuple[Runtime, str], database_url: str
) -> None:
    current, base_url = web
    sender = runtime.build(current.settings.replace(internal_webapp_url=base_url))
    try:
        sender.broker.declare_actor(actors.record_job)
        message = actors.record_job.message(key="woken")
        sender.broker.enqueue(message)
        wait_for(lambda: job_row(database_url, message.message_id)["status"] == "COMPLETED", timeout=5)
    finally:
        sender.close()


def test_a_genuine_request_is_answered_at_once_and_the_job_runs_after(
    web: tuple[Runtime, str], database_url: str
) -> None:
    current, base_url = web
    job_id = store_job(current, "slow", actors.sleep_job, seconds=1.5)
    body, headers = signed("test.sleep", job_id)
    started = time.monotonic()
    response = httpx.post(f"{base_url}/api/jobs/test.sleep/{job_id}", content=body, headers=headers)
    assert 202 == response.status_code
    assert time.monotonic() - started < 1.0  # the job does not run inside the request
    wait_for(lambda: job_row(database_url, job_id)["status"] == "COMPLETED", timeout=10)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda job_id: {signature.SIGNATURE_HEADER: "v1=" + "0" * 64}, id="bad"),
        pytest.param(lambda job_id: {signature.SIGNATURE_HEADER: ""}, id="missing"),
        pytest.param(lambda job_id: signed("test.record", job_id, key=b"wrong key")[1], id="wrong-key"),
        # hmac.compare_digest raised TypeError on a non-ASCII str: a 500 and a traceback.
        pytest.param(lambda job_id: {signature.SIGNATURE_HEADER: b"v1=\xff\xfe"}, id="non-ascii"),
    ],
)
def test_a_bad_or_missing_signature_gets_401_and_changes_nothing(
    web: tuple[Runtime, str], database_url: str, tamper: Callable[[str], dict[str, str | bytes]]
) -> None:
    current, base_url = web
    job_id = store_job(current, "unsigned")
    body, signed_headers = signed("test.record", job_id)
    headers: dict[str, str | bytes] = {**signed_headers, **tamper(job_id)}
    response = httpx.post(f"{base_url}/api/jobs/test.record/{job_id}", content=body, headers=headers)
    assert 401 == response.status_code
    assert "Unauthorized" == response.text
    before = job_row(database_url, job_id)
    # Nothing shows that a wake-up did not happen: give a wrong one the time it would need.
    time.sleep(0.5)
    assert before == job_row(database_url, job_id)
    assert "PENDING" == before["status"]


def test_a_stale_request_gets_401(web: tuple[Runtime, str], database_url: str) -> None:
    current, base_url = web
    job_id = store_job(current, "stale")
    body, headers = signed("test.record", job_id, timestamp=int(time.time()) - 301)
    response = httpx.post(f"{base_url}/api/jobs/test.record/{job_id}", content=body, headers=headers)
    assert 401 == response.status_code
    assert "PENDING" == job_row(database_url, job_id)["status"]


def test_a_replayed_request_gets_401(web: tuple[Runtime, str], database_url: str) -> None:
    current, base_url = web
    job_id = store_job(current, "replayed")
    body, headers = signed("test.record", job_id)
    url = f"{base_url}/api/jobs/test.record/{job_id}"
    assert 202 == httpx.post(url, content=body, headers=headers).status_code
    assert 401 == httpx.post(url, content=body, headers=headers).status_code


def test_an_unknown_job_gets_404(web: tuple[Runtime, str], database_url: str) -> None:
    _, base_url = web
    for actor, job_id in [("test.record", "no-such-row"), ("test.nope", "no-such-row")]:
        body, headers = signed(actor, job_id)
        response = httpx.post(f"{base_url}/api/jobs/{actor}/{job_id}", content=body, headers=headers)
        assert 404 == response.status_code
        assert "Job not found" == response.text
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM background_job").fetchone() == (0,)


def test_a_job_named_under_another_actor_gets_404(web: tuple[Runtime, str], database_url: str) -> None:
    current, base_url = web
    job_id = store_job(current, "other-actor")
    body, headers = signed("test.sleep", job_id)
    response = httpx.post(f"{base_url}/api/jobs/test.sleep/{job_id}", content=body, headers=headers)
    assert 404 == response.status_code


def test_an_oversized_body_gets_413_before_anything_else(web: tuple[Runtime, str]) -> None:
    _, base_url = web
    body = b"{" + b" " * (64 * 1024) + b"}"
    stamp = int(time.time())
    headers = {
        signature.TIMESTAMP_HEADER: str(stamp),
        signature.SIGNATURE_HEADER: signature.sign(KEY, stamp, body),
    }
    response = httpx.post(f"{base_url}/api/jobs/test.record/x", content=body, headers=headers)
    assert 413 == response.status_code


def test_a_body_that_names_another_job_gets_400(web: tuple[Runtime, str]) -> None:
    current, base_url = web
    job_id = store_job(current, "mismatch")
    body, headers = signed("test.record", "some-other-job")
    response = httpx.post(f"{base_url}/api/jobs/test.record/{job_id}", content=body, headers=headers)
    assert 400 == response.status_code


def test_other_methods_get_405(web: tuple[Runtime, str]) -> None:
    _, base_url = web
    assert 405 == httpx.get(f"{base_url}/api/jobs/test.record/x").status_code


def test_health_reports_the_database(web: tuple[Runtime, str]) -> None:
    _, base_url = web
    response = httpx.get(f"{base_url}/healthz")
    assert 200 == response.status_code
    assert {"status": "ok", "provider": "local", "worker": True, "scheduler": False} == response.json()


def test_a_burst_of_sends_makes_a_handful_of_signed_requests(pg_runtime: Runtime, database_url: str) -> None:
    with Receiver().running() as receiver:
        sender = runtime.build(pg_runtime.settings.replace(internal_webapp_url=receiver.url, listen=False))
        try:
            sender.broker.declare_actor(actors.record_job)
            messages = [actors.record_job.message(key=f"burst-{i}") for i in range(1000)]
            started = time.monotonic()
            for message in messages:
                sender.broker.enqueue(message)
            elapsed = time.monotonic() - started
        finally:
            sender.close()  # sends what is pending
        requests = list(receiver.requests)
    # At most one request per 100 ms, plus the first and the last, however slow the machine.
    allowed = elapsed / selftrigger.DEFAULT_MIN_INTERVAL_SECONDS + 2
    assert 1 <= len(requests) <= allowed, f"{len(requests)} requests for 1000 sends in {elapsed:.2f} s"
    assert len(requests) < 100
    verifier = signature.SignatureVerifier(KEY)
    for request in requests:
        assert request.path.startswith("/api/jobs/test.record/")
        assert (
            verifier.verify(
                request.headers[signature.TIMESTAMP_HEADER],
                request.headers[signature.SIGNATURE_HEADER],
                request.body,
            )
            is None
        )
    assert requests[-1].path == f"/api/jobs/test.record/{messages[-1].message_id}"


def test_a_slow_endpoint_never_slows_the_sender(pg_runtime: Runtime) -> None:
    with Receiver(delay_seconds=3.0).running() as receiver:
        sender = runtime.build(pg_runtime.settings.replace(internal_webapp_url=receiver.url, listen=False))
        try:
            sender.broker.declare_actor(actors.record_job)
            started = time.monotonic()
            for i in range(50):
                sender.broker.enqueue(actors.record_job.message(key=f"slow-endpoint-{i}"))
            elapsed = time.monotonic() - started
        finally:
            sender.close()
    assert elapsed < 2.0, f"50 sends took {elapsed:.2f} s behind a 3 s endpoint"
