"""Webhook delivery against real HTTP receivers on loopback."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dramatiq
import psycopg
import pytest
from docjobs_devkit.http import Received, Receiver
from docjobs_devkit.pdfs import sample_pdf

from docjobs import jobs, signatures
from docjobs.domain import Flows
from docjobs.runtime import Runtime
from docjobs.webhooks import delivery, ssrf
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
    assert "resolves to 127.0.0.1, which is not a public address" in call["response_body"]
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


# Receivers that misbehave, and names that resolve as an attacker would like, against
# delivery.attempt directly. Every receiver listens on loopback; a made-up host name
# reaches it through a resolver stub and NEXT_PRIVATE_WEBHOOK_SSRF_BYPASS_HOSTS.

Answer = Callable[[socket.socket, threading.Event], None]


@dataclass
class RawReceiver:
    """A TCP server on loopback that reads one request per connection, then runs ``answer``."""

    answer: Answer
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[bytes] = field(default_factory=list)
    finished: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def running(self) -> Iterator[RawReceiver]:
        stop = threading.Event()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.create_server((self.host, self.port), family=family) as server:
            self.port = server.getsockname()[1]

            def serve() -> None:
                while not stop.is_set():
                    try:
                        conn, _ = server.accept()
                    except OSError:  # shut down: the test is over
                        return
                    with conn:
                        conn.settimeout(30)
                        try:
                            self.requests.append(read_request(conn))
                            self.answer(conn, stop)
                        except OSError:
                            pass  # the client hung up, as it should
                    self.finished.set()

            thread = threading.Thread(target=serve, daemon=True)
            thread.start()
            try:
                yield self
            finally:
                stop.set()
                server.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
                thread.join(30)

    def url(self, host: str) -> str:
        return f"http://{host}:{self.port}/hook"


def read_request(conn: socket.socket) -> bytes:
    """The request's head and its Content-Length bytes of body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += received(conn)
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
    while len(body) < (int(length.group(1)) if length else 0):
        body += received(conn)
    return head + b"\r\n\r\n" + body


def received(conn: socket.socket) -> bytes:
    data = conn.recv(65536)
    if not data:
        raise ConnectionResetError("the client closed before its request was complete")
    return data


def attempt_to(
    url: str, resolver: ssrf.Resolver | None = None, bypass: str = "127.0.0.1"
) -> delivery.Outcome:
    return delivery.attempt(
        url=url,
        secret=SECRET,
        event="DOCUMENT_SIGNED",
        payload=DATA,
        bypass_hosts={bypass},
        resolver=resolver,
    )


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_huge_answer_is_read_up_to_the_cap_then_the_connection_is_closed() -> None:
    answer_bytes = 400 * 1024 * 1024
    chunk = b"x" * 65536
    sent = 0

    def huge(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % answer_bytes
        )
        nonlocal sent
        while sent < answer_bytes:
            sent += conn.send(chunk)

    peak = rss_bytes()
    sampling = threading.Event()

    def sample() -> None:  # the attempt's memory, measured while it runs
        nonlocal peak
        while not sampling.wait(0.005):
            peak = max(peak, rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    with RawReceiver(huge).running() as listening:
        before = rss_bytes()
        sampler.start()
        started = time.monotonic()
        outcome = attempt_to(listening.url("127.0.0.1"))
        elapsed = time.monotonic() - started
        sampling.set()
        sampler.join(5)
        assert listening.finished.wait(10)
    assert peak - before < 50 * 1024 * 1024
    assert elapsed < 3.0
    # The receiver could send little more than the cap plus the sockets' buffers before it was cut off.
    assert sent < 64 * 1024 * 1024
    assert ("SUCCESS", 200) == (outcome.status, outcome.response_code)
    assert f"longer than {delivery.MAX_RESPONSE_BYTES} bytes" in (outcome.cut_short or "")
    assert "x" * delivery.MAX_STORED_RESPONSE_CHARS == outcome.response_body


@pytest.mark.parametrize("dripping", ["status line and headers", "body"])
def test_an_answer_dripping_a_byte_at_a_time_is_cut_off_at_the_total_deadline(
    dripping: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 1.0)  # the reference's 10 s, shortened for the test
    body = b"0123456789" * 4
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)

    def drip(conn: socket.socket, stop: threading.Event) -> None:
        if dripping == "body":
            conn.sendall(head)
        for byte in head + body if dripping != "body" else body:
            if stop.wait(0.25):  # a byte every 0.25 s: well inside any per-read timeout
                return
            conn.sendall(bytes([byte]))

    with RawReceiver(drip).running() as listening:
        started = time.monotonic()
        outcome = attempt_to(listening.url("127.0.0.1"))
        elapsed = time.monotonic() - started
    assert ("FAILED", 0, True) == (outcome.status, outcome.response_code, outcome.retryable)
    assert (
        "ReadTimeout: the attempt's 1 s deadline passed while reading the response" in outcome.response_body
    )
    if dripping == "body":
        assert "(after status 200 and " in outcome.response_body
    assert 1.0 <= elapsed < 2.0


def ok(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
    )


def test_a_lookup_without_an_answer_refuses_the_attempt_and_nothing_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ssrf, "LOOKUP_TIMEOUT_SECONDS", 0.2)
    released = threading.Event()

    def slow(host: str) -> Sequence[str]:
        released.wait(30)
        return ["127.0.0.1"]

    with RawReceiver(ok).running() as listening:
        started = time.monotonic()
        try:
            outcome = attempt_to(listening.url("slow-dns.test"), resolver=slow, bypass="slow-dns.test")
        finally:
            released.set()
        elapsed = time.monotonic() - started
    assert ("FAILED", 0, True) == (outcome.status, outcome.response_code, outcome.retryable)
    assert "WebhookLookupFailed: DNS lookup of webhook host slow-dns.test gave no answer within 0.2 s" == (
        outcome.response_body
    )
    assert elapsed < 1.0
    assert [] == listening.requests


def test_the_connection_goes_to_the_address_looked_up_once_with_the_host_name_kept() -> None:
    lookups: list[str] = []

    def rebinding(host: str) -> Sequence[str]:
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["127.0.0.2"]

    with RawReceiver(ok).running() as checked:
        # A second receiver on the address a second lookup would give, same port.
        with RawReceiver(ok, host="127.0.0.2", port=checked.port).running() as rebound:
            outcome = attempt_to(
                checked.url("hooks.rebind.test"), resolver=rebinding, bypass="hooks.rebind.test"
            )
    assert ("SUCCESS", 200, {"ok": True}) == (outcome.status, outcome.response_code, outcome.response_body)
    assert ["hooks.rebind.test"] == lookups
    assert [] == rebound.requests
    (request,) = checked.requests
    assert f"Host: hooks.rebind.test:{checked.port}\r\n".encode() in request
    assert request.startswith(b"POST /hook HTTP/1.1\r\n")


def test_a_failed_lookup_is_recorded_and_retried(
    service: Runtime, owner: dict[str, Any], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unknown(host: str) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(ssrf, "system_resolver", unknown)
    deliver(Flows().add_webhook(owner["id"], "https://hooks.unknown.test/x", [WebhookEvent.DOCUMENT_SIGNED]))
    settle(service)
    calls = rows(database_url, "SELECT * FROM webhook_call ORDER BY id")
    assert service.settings.retries + 1 == len(calls)
    assert all(("FAILED", 0) == (call["status"], call["response_code"]) for call in calls)
    assert all(
        "DNS lookup of webhook host hooks.unknown.test failed: [Errno -2] Name or service not known"
        in call["response_body"]
        for call in calls
    )


def test_an_ipv6_literal_is_connected_to_without_a_lookup_and_named_in_brackets() -> None:
    with RawReceiver(ok, host="::1").running() as listening:
        outcome = attempt_to(listening.url("[::1]"), resolver=never_called, bypass="::1")
    assert ("SUCCESS", 200) == (outcome.status, outcome.response_code)
    (request,) = listening.requests
    assert f"Host: [::1]:{listening.port}\r\n".encode() in request


def never_called(host: str) -> Sequence[str]:
    raise AssertionError(f"{host} was looked up")


def test_a_secret_http_cannot_carry_is_not_sent_nor_repeated_in_the_recorded_error() -> None:
    secret = "whsec-line\r\nX-Injected: yes"
    with RawReceiver(ok).running() as listening:
        outcome = delivery.attempt(
            url=listening.url("127.0.0.1"),
            secret=secret,
            event="DOCUMENT_SIGNED",
            payload=DATA,
            bypass_hosts={"127.0.0.1"},
        )
    assert ("FAILED", 0) == (outcome.status, outcome.response_code)
    assert "LocalProtocolError: the request has a header value HTTP does not allow" == outcome.response_body
    assert [] == listening.requests
