"""One behaviour, three brokers: Dramatiq's stub, its stock Redis broker, and docjobs' Postgres one.

The Postgres broker must behave as Dramatiq users expect from the others.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import dramatiq
import pytest
from docjobs_devkit import RedisServer
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from docjobs import runtime
from docjobs.brokers.middleware import default_middleware
from docjobs.settings import Settings


def middleware() -> list[dramatiq.Middleware]:
    return default_middleware(
        max_retries=3, min_backoff_seconds=0.01, max_backoff_seconds=0.1, max_payload_bytes=1024 * 1024
    )


@pytest.fixture(params=["stub", "redis", "postgres"])
def broker(request: pytest.FixtureRequest, environ: dict[str, str]) -> Iterator[dramatiq.Broker]:
    if request.param == "stub":
        made: dramatiq.Broker = StubBroker(middleware=middleware())
    elif request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        made = RedisBroker(
            url=server.url, namespace=f"conformance-{uuid.uuid4().hex}", middleware=middleware()
        )
    else:
        made = runtime.build(Settings.from_environ(environ)).broker
    made.emit_after("process_boot")
    yield made
    made.close()


@pytest.fixture
def worker(broker: dramatiq.Broker) -> Iterator[dramatiq.Worker]:
    running = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    running.start()
    yield running
    running.stop()


class Calls:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.lock = threading.Lock()
        self.done = threading.Event()

    def add(self, value: str) -> None:
        with self.lock:
            self.calls.append((value, time.monotonic()))


def declare(broker: dramatiq.Broker, name: str, fn: Callable[..., None]) -> dramatiq.Actor:
    return dramatiq.actor(fn, broker=broker, actor_name=f"conformance.{name}", max_retries=3, min_backoff=10)


def test_a_sent_message_is_processed(broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
    calls = Calls()
    actor = declare(broker, "add", lambda x, y: calls.add(str(x + y)))
    actor.send(1, 2)
    broker.join(actor.queue_name, timeout=10_000)
    assert ["3"] == [value for value, _ in calls.calls]


def test_a_delayed_message_waits(broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
    calls = Calls()
    actor = declare(broker, "later", lambda: calls.add("ran"))
    sent = time.monotonic()
    actor.send_with_options(delay=300)
    deadline = time.monotonic() + 10
    while not calls.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls.calls, "the delayed message never ran"
    assert calls.calls[0][1] - sent >= 0.3


def test_a_failing_message_is_retried_until_it_succeeds(
    broker: dramatiq.Broker, worker: dramatiq.Worker
) -> None:
    calls = Calls()

    def flaky() -> None:
        calls.add("attempt")
        if len(calls.calls) < 3:
            raise RuntimeError("not yet")

    actor = declare(broker, "flaky", flaky)
    actor.send()
    deadline = time.monotonic() + 10
    while len(calls.calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    broker.join(actor.queue_name, timeout=10_000)
    assert 3 == len(calls.calls)


def test_many_messages_are_each_processed_once(broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
    calls = Calls()
    actor = declare(broker, "many", lambda i: calls.add(str(i)))
    for i in range(200):
        actor.send(i)
    deadline = time.monotonic() + 20
    while len(calls.calls) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    broker.join(actor.queue_name, timeout=10_000)
    assert sorted(str(i) for i in range(200)) == sorted(value for value, _ in calls.calls)
