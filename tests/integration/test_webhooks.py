"""Webhook delivery against real HTTP receivers on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import psycopg
import pytest

from docjobs import jobs, signatures
from docjobs.domain import Flows
from docjobs.runtime import Runtime
from docjobs.testing.http import Received, Receiver
from docjobs.testing.pdfs import sample_pdf
from docjobs.webhooks import delivery
from docjobs.webhooks.events import WebhookEvent

SECRET = "whsec-0123456789"
DATA = {"id": 7, "title": "Lease", "status": "PENDING"}


def settle(service: Runtime) -> None:
    service.join()


def rows(url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query.encode(), params).fetchall()


@pytest.fixture
def owner(service: Runtime) -> dict[str, Any]:
    return Flows().create_user("olivia@example.com", "Olivia")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(
        status=200, body=b'{"ok": true}', headers={"Content-Type": "application/json"}
    ).running() as running:
        yield running


def deliver(webhook: dict[str, Any], event: WebhookEvent = WebhookEvent.DOCUMENT_SIGNED) -> str:
    message = jobs.trigger(
        "internal.execute-webhook", {"event": event.value, "webhookId": webhook["id"], "data": DATA}
    )
    return str(message.message_id)


def test_a_delivery_posts_the_event_signed_and_records_the_call(
    service: Runtime, owner: dict[str, Any], receiver: Receiver, database_url: str
) -> None:
    webhook = Flows().add_webhook(owner["id"], receiver.url, [WebhookEvent.DOCUMENT_SIGNED], secret=SECRET)
    job_id = deliver(webhook)
    settle(service)
    (request,) = receiver.requests
    body = json.loads(request.body)
    assert {"event", "payload", "createdAt", "webhookEndpoint"} == set(body)
    assert "DOCUMENT_SIGNED" == body["event"]
    assert DATA == body["payload"]
    assert receiver.url == body["webhookEndpoint"]
    assert body["createdAt"].endswith("Z")
    assert "application/json" == request.headers["Content-Type"]
    assert SECRET == request.headers[delivery.SECRET_HEADER]
    verifier = signatures.SignatureVerifier(SECRET.encode())
    timestamp, signature = (
        request.headers[delivery.TIMESTAMP_HEADER],
        request.headers[delivery.SIGNATURE_HEADER],
    )
    assert verifier.verify(timestamp, signature, request.body) is None
    assert "bad signature" == verifier.verify(timestamp, signature, request.body.replace(b"Lease", b"Lies"))
    (call,) = rows(database_url, "SELECT * FROM webhook_call")
    assert ("SUCCESS", 200, job_id) == (call["status"], call["response_code"], call["job_id"])
    assert {"ok": True} == call["response_body"]
    assert body == call["request_body"]
    assert "application/json" == call["response_headers"]["content-type"]


def test_a_webhook_without_secret_sends_an_empty_secret_and_no_signature(
    service: Runtime, owner: dict[str, Any], receiver: Receiver
) -> None:
    deliver(Flows().add_webhook(owner["id"], receiver.url, [WebhookEvent.DOCUMENT_SIGNED]))
    settle(service)
    (request,) = receiver.requests
    assert "" == request.headers[delivery.SECRET_HEADER]
    assert delivery.SIGNATURE_HEADER not in request.headers


def test_a_slow_endpoint_times_out_each_attempt_is_recorded_and_retries_back_off(
    service: Runtime, owner: dict[str, Any], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.3)  # the reference's 10 s, shortened for the test
    with Receiver(status=200, delay_seconds=1.0).running() as slow:
        deliver(Flows().add_webhook(owner["id"], slow.url, [WebhookEvent.DOCUMENT_SIGNED]))
        settle(service)
    calls = rows(database_url, "SELECT * FROM webhook_call ORDER BY id")
    assert service.settings.retries + 1 == len(calls)  # local 4 attempts, bullmq 3
    assert all(("FAILED", 0) == (call["status"], call["response_code"]) for call in calls)
    assert all("ReadTimeout" in call["response_body"] for call in calls)
    gaps = [
        (b["created_at"] - a["created_at"]).total_seconds() for a, b in zip(calls, calls[1:], strict=False)
    ]
    # Each retry starts after the attempt before it timed out (the backoff's growth is
    # tested per provider with delays long enough to measure; here it is milliseconds).
    assert all(gap >= delivery.TIMEOUT_SECONDS for gap in gaps)
    (job,) = rows(database_url, "SELECT * FROM background_job WHERE actor = 'internal.execute-webhook'")
    assert "FAILED" == job["status"]
    assert "Webhook execution failed with status 0" in job["last_error"]


def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    service: Runtime, owner: dict[str, Any], receiver: Receiver, database_url: str
) -> None:
    with Receiver(status=302, headers={"Location": receiver.url}).running() as redirecting:
        deliver(Flows().add_webhook(owner["id"], redirecting.url, [WebhookEvent.DOCUMENT_SIGNED]))
        settle(service)
    assert [] == receiver.requests
    calls = rows(database_url, "SELECT status, response_code FROM webhook_call")
    assert service.settings.retries + 1 == len(calls) and all(
        ("FAILED", 302) == (c["status"], c["response_code"]) for c in calls
    )


def test_a_private_address_is_refused_once_and_never_contacted(
    make_runtime: Callable[..., Runtime],
    start_worker: Callable[..., dramatiq.Worker],
    receiver: Receiver,
    database_url: str,
) -> None:
    service = make_runtime()  # no NEXT_PRIVATE_WEBHOOK_SSRF_BYPASS_HOSTS
    start_worker(service.broker)
    owner = Flows().create_user("olivia@example.com", "Olivia")
    deliver(Flows().add_webhook(owner["id"], receiver.url, [WebhookEvent.DOCUMENT_SIGNED]))
    settle(service)
    assert [] == receiver.requests
    (call,) = rows(database_url, "SELECT * FROM webhook_call")
    assert ("FAILED", 0) == (call["status"], call["response_code"])
    assert "resolves to the private address 127.0.0.1" in call["response_body"]
    (job,) = rows(database_url, "SELECT * FROM background_job WHERE actor = 'internal.execute-webhook'")
    assert ("FAILED", 1) == (job["status"], job["attempts"])


@pytest.mark.parametrize("change", ["disable", "delete"])
def test_disabling_or_deleting_a_webhook_stops_its_retries(
    service: Runtime, owner: dict[str, Any], database_url: str, change: str
) -> None:
    flows = Flows()

    def change_webhook(request: Received) -> None:
        with service.require_database().connection() as conn:
            if change == "disable":
                flows.store.set_webhook_enabled(conn, webhook["id"], False)
            else:
                flows.store.delete_webhook(conn, webhook["id"])

    with Receiver(status=500, on_request=change_webhook).running() as failing:
        webhook = flows.add_webhook(owner["id"], failing.url, [WebhookEvent.DOCUMENT_SIGNED])
        deliver(webhook)
        settle(service)
        assert 1 == len(failing.requests)
    (job,) = rows(database_url, "SELECT * FROM background_job WHERE actor = 'internal.execute-webhook'")
    assert ("COMPLETED", 2) == (job["status"], job["attempts"])  # the retry found it gone and stopped
    calls = rows(database_url, "SELECT * FROM webhook_call")
    assert (1 if change == "disable" else 0) == len(calls)


def test_an_event_fans_out_to_enabled_subscribed_webhooks_only(
    service: Runtime, owner: dict[str, Any], receiver: Receiver, database_url: str
) -> None:
    flows = Flows()
    subscribed = flows.add_webhook(owner["id"], receiver.url, [WebhookEvent.DOCUMENT_OPENED])
    also = flows.add_webhook(owner["id"], receiver.url + "/also", list(WebhookEvent))
    flows.add_webhook(owner["id"], receiver.url + "/other-event", [WebhookEvent.DOCUMENT_SENT])
    disabled = flows.add_webhook(owner["id"], receiver.url + "/disabled", [WebhookEvent.DOCUMENT_OPENED])
    someone_else = flows.create_user("mallory@example.com", "Mallory")
    flows.add_webhook(someone_else["id"], receiver.url + "/mallory", [WebhookEvent.DOCUMENT_OPENED])
    with service.require_database().connection() as conn:
        flows.store.set_webhook_enabled(conn, disabled["id"], False)
    document = flows.create_document(owner["id"], "Lease", sample_pdf(), [])
    receiver.requests.clear()
    with service.require_database().transaction() as conn:
        from docjobs.actors import _support

        assert 2 == _support.fire_webhook(conn, WebhookEvent.DOCUMENT_OPENED, document["id"])
    settle(service)
    paths = sorted(
        request.path
        for request in receiver.requests
        if json.loads(request.body)["event"] == "DOCUMENT_OPENED"
    )
    assert ["/", "/also"] == paths
    assert {subscribed["id"], also["id"]} == {
        c["webhook_id"]
        for c in rows(database_url, "SELECT webhook_id FROM webhook_call WHERE event = 'DOCUMENT_OPENED'")
    }
