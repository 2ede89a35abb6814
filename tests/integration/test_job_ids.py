"""``id=`` deduplicates on every provider: a second send of an id is a no-op while the first job's record exists."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dramatiq
import pytest
from docjobs_devkit.http import serve
from docjobs_devkit.inngest import InngestServer
from dramatiq import Message

from docjobs import jobs
from docjobs.brokers.bullmq.broker import BullmqBroker
from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from tests.conftest import app_port, events, job_row, provider_overrides, wait_for

JOIN_SECONDS = 20.0
#: The retention of the bullmq test whose id must become free again: short, so it does.
SHORT_RETENTION_SECONDS = 3.0


@dataclass
class Provider:
    name: str
    runtime: Runtime
    overrides: dict[str, str]
    emulator: InngestServer | None = None


@pytest.fixture(params=["local", "bullmq", "inngest"])
def provider(
    request: pytest.FixtureRequest,
    make_runtime: Callable[..., Runtime],
    start_worker: Callable[..., dramatiq.Worker],
) -> Iterator[Provider]:
    """A runtime on each provider, with something running its jobs (a worker, or Inngest calling the app)."""
    overrides = provider_overrides(request, request.param)
    current = make_runtime(**overrides)
    if request.param != "inngest":
        start_worker(current.broker, threads=4)
        yield Provider(request.param, current, overrides)
        return
    emulator = request.getfixturevalue("inngest_emulator")
    with serve(create_app(current), port=app_port(current)) as base:
        assert 200 == emulator.sync(f"{base}/api/jobs").status_code
        yield Provider(request.param, current, overrides, emulator)


@pytest.fixture
def bullmq_runtime(request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime(
        **provider_overrides(request, "bullmq"),
        NEXT_PRIVATE_JOBS_RETENTION_DAYS=str(SHORT_RETENTION_SECONDS / 86_400),
    )


def _waiting(broker: BullmqBroker) -> list[Message[object]]:
    """The messages in the default queue and its schedule, oldest first."""
    queue_key = f"{broker.namespace}:default"
    redis_ids = [
        *broker.client.lrange(queue_key, 0, -1),
        *broker.client.zrange(f"{queue_key}.delayed", 0, -1),
    ]
    bodies = [broker.client.hget(f"{queue_key}.msgs", redis_id) for redis_id in redis_ids]
    return [Message.decode(body) for body in bodies if isinstance(body, bytes)]


def test_on_bullmq_two_threads_sending_one_id_at_once_enqueue_one_job(bullmq_runtime: Runtime) -> None:
    broker = bullmq_runtime.broker
    assert isinstance(broker, BullmqBroker)
    job_ids = [f"race-{n}" for n in range(50)]
    start_together = threading.Barrier(2)
    failures: list[BaseException] = []

    def send(key: str, delay: float | None) -> None:
        try:
            for job_id in job_ids:
                start_together.wait(timeout=10)
                jobs.trigger("test.record", {"key": key}, id=job_id, delay=delay)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    # One sends now, the other delayed: a queued and a scheduled send check the same key.
    threads = [threading.Thread(target=send, args=args) for args in (("a", None), ("b", 60.0))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [] == failures
    assert sorted(job_ids) == sorted(message.message_id for message in _waiting(broker))


def test_on_bullmq_an_id_is_taken_while_its_job_retries_and_for_the_retention_after_it_ends(
    bullmq_runtime: Runtime, start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    broker = bullmq_runtime.broker
    assert isinstance(broker, BullmqBroker)
    jobs.trigger("test.fail_once", {"key": "retried"}, id="seal-9")
    assert -1 == broker.client.pttl(broker.id_key("seal-9"))  # no expiry while the job waits
    start_worker(broker)
    bullmq_runtime.join(timeout_seconds=JOIN_SECONDS)
    # The retry is the same job: it ran, not dropped as a duplicate of itself.
    assert ["ran", "ran"] == [event["kind"] for event in events(database_url, "retried")]
    assert "COMPLETED" == job_row(database_url, "seal-9")["status"]
    assert 0 < broker.client.pttl(broker.id_key("seal-9")) <= SHORT_RETENTION_SECONDS * 1000
    jobs.trigger("test.fail_once", {"key": "too-soon"}, id="seal-9")
    wait_for(lambda: not broker.client.exists(broker.id_key("seal-9")))
    jobs.trigger("test.record", {"key": "once-free-again"}, id="seal-9")
    bullmq_runtime.join(timeout_seconds=JOIN_SECONDS)
    assert [] == events(database_url, "too-soon")
    assert ["ran"] == [event["kind"] for event in events(database_url, "once-free-again")]


def test_on_bullmq_a_job_taken_out_on_the_board_keeps_its_id_for_the_retention(
    bullmq_runtime: Runtime,
) -> None:
    broker = bullmq_runtime.broker
    assert isinstance(broker, BullmqBroker)
    jobs.trigger("test.record", {"key": "cancelled"}, id="seal-10", delay=60)
    (waiting,) = _waiting(broker)
    assert broker.commands.remove_waiting("default", waiting.options["redis_message_id"])
    assert [] == _waiting(broker)
    # Cancelled, as the board records it: taken until retention, as an ended job's id.
    assert 0 < broker.client.pttl(broker.id_key("seal-10")) <= SHORT_RETENTION_SECONDS * 1000
