"""What one send does, and does once (issue 21: single enqueue CPU).

A bullmq send encodes its message once, with orjson, not through Dramatiq's JSON
encoder (~14-40 us a send); a local send validates its payload once (a guard: it did
before too); the self-trigger client stops trying a web app that does not answer, for
a while, instead of paying an HTTP attempt per interval of sends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from docjobs_devkit.services import free_port
from dramatiq.message import Message

from docjobs.brokers.bullmq.broker import BullmqBroker
from docjobs.brokers.local import selftrigger
from docjobs.runtime import Runtime
from tests.conftest import TEST_SECONDARY_KEY, provider_overrides, wait_for
from tests.support import actors

SENDS = 5
#: A wait after a failure far longer than the test: only close() ends it.
LONG_WAIT_SECONDS = 3600.0


@pytest.fixture
def bullmq(request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime(**provider_overrides(request, "bullmq"))


def test_a_bullmq_send_does_not_go_through_dramatiqs_encoder_and_stores_the_message_sent(
    bullmq: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = bullmq.broker
    assert isinstance(broker, BullmqBroker)
    calls = []
    original = Message.encode

    def counted(self: Message[object]) -> bytes:
        calls.append(self.message_id)
        return original(self)

    monkeypatch.setattr(Message, "encode", counted)
    sent = [actors.record_job.send(key=f"encoded-{n}", document_id=n) for n in range(SENDS)]
    assert [] == calls
    stored = broker.client.hgetall(f"{broker.namespace}:default.msgs")
    by_id = {message.message_id: message for message in map(Message.decode, stored.values())}
    for message in sent:
        assert message.kwargs == by_id[message.message_id].kwargs
        assert {"key": message.kwargs["key"], "documentId": message.kwargs["documentId"]} == message.kwargs


class _CountingValidator:
    """Stands for a payload model's validator, counting the payloads it validates."""

    def __init__(self, validator: Any) -> None:
        self.validator = validator
        self.calls = 0

    def validate_python(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.validator.validate_python(*args, **kwargs)


def test_a_local_send_validates_its_payload_once(
    make_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_runtime()
    model = actors.record_job.payload_model
    actors.record_job.send(key="built")  # the model's validator is built (deferred until first use)
    counting = _CountingValidator(model.__pydantic_validator__)
    monkeypatch.setattr(model, "__pydantic_validator__", counting)
    for n in range(SENDS):
        actors.record_job.send(key=f"once-{n}")
    assert SENDS == counting.calls


def test_after_a_failed_request_the_self_trigger_waits_and_then_names_the_newest_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waiting = threading.Event()

    def long_waits() -> Iterator[float]:
        while True:
            waiting.set()
            yield LONG_WAIT_SECONDS

    # (raising=False: before issue 21 the client had no such waits, and this test fails below.)
    monkeypatch.setattr(selftrigger, "retry_delays", long_waits, raising=False)
    named: list[str] = []
    body = selftrigger.request_body

    def recorded(actor: str, job_id: str) -> bytes:
        named.append(job_id)
        return body(actor, job_id)

    monkeypatch.setattr(selftrigger, "request_body", recorded)
    client = selftrigger.SelfTrigger(
        f"http://127.0.0.1:{free_port()}",  # nothing listens: refused
        TEST_SECONDARY_KEY.encode(),
        min_interval_seconds=0,
        workers_listen=True,
    )
    try:
        client.wake("test.record", "job-1")
        wait_for(lambda: len(named) == 1 and waiting.is_set())  # refused, then waiting
        for n in range(2, 21):
            client.wake("test.record", f"job-{n}")
        assert ["job-1"] == named  # the thread waits: nineteen wake-ups, no request
    finally:
        client.close()  # ends the wait: what is pending goes now
    assert ["job-1", "job-20"] == named
