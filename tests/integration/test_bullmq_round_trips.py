"""Round trips to Redis per send on the bullmq provider, counted by Redis itself (MONITOR).

Issue 21: a single send must cost what a stock Dramatiq send costs, one script call,
whatever it carries: a plain send, a send under the caller's id (taken atomically in
the script, SET NX) and a delayed send (scheduled in the script). No GET/EXISTS ahead
of it, no second call behind it. The history journal's own commands (its writer
thread, on its own schedule) are not the send's and are left out of the count.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from docjobs_devkit import RedisServer

from docjobs import jobs
from docjobs.brokers.bullmq.broker import BullmqBroker
from docjobs.runtime import Runtime
from tests.conftest import provider_overrides
from tests.support import actors

SENDS = 5
#: How long MONITOR waits for the next command before the test fails (seconds).
MONITOR_TIMEOUT_SECONDS = 10
MARKER = "docjobs-round-trip-test-end"
#: What a client sends when it opens a connection (redis-py's health check pings first), not per send:
#: the journal's thread may hold the pool's one connection, so a send may open a second.
CONNECTION_SETUP = frozenset({"PING", "HELLO", "CLIENT", "SELECT", "AUTH"})
_keys = itertools.count()


@pytest.fixture
def bullmq(request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime(**provider_overrides(request, "bullmq"))


@contextmanager
def monitored(url: str) -> Iterator[list[list[str]]]:
    """The commands clients send to Redis inside the block (not those scripts run), in order."""
    client = redis.Redis.from_url(url, socket_timeout=MONITOR_TIMEOUT_SECONDS)
    seen: list[list[str]] = []
    with client.monitor() as monitor:
        monitor.next_command()  # MONITOR's own OK: from here on, every command is seen
        yield seen
        client.echo(MARKER)
        while True:
            command: dict[str, Any] = monitor.next_command()
            words = command["command"].split(" ")
            if command.get("client_type") == "lua":
                continue
            if words[:2] == ["ECHO", MARKER]:
                break
            seen.append(words)
    client.close()


def _sends_of(commands: list[list[str]], namespace: str) -> list[list[str]]:
    """The commands that are neither the history journal's (its list, lease and trim script) nor a
    new connection's set-up."""
    return [
        words
        for words in commands
        if words[0] not in CONNECTION_SETUP and not any(f"{namespace}:__history__" in word for word in words)
    ]


def _send_plain() -> None:
    actors.record_job.send(key=f"plain-{next(_keys)}")


def _send_with_id() -> None:
    jobs.trigger("test.record", {"key": "with-id"}, id=f"round-trip-{next(_keys)}")


def _send_delayed() -> None:
    actors.record_job.send_with_options(kwargs={"key": f"delayed-{next(_keys)}"}, delay=60_000)


@pytest.mark.parametrize(
    ("send", "script"),
    [(_send_plain, "enqueue"), (_send_with_id, "enqueue"), (_send_delayed, "schedule")],
    ids=["plain", "with-id", "delayed"],
)
def test_each_send_is_one_script_call_and_nothing_else(
    bullmq: Runtime, redis_server: RedisServer, send: Callable[[], None], script: str
) -> None:
    broker = bullmq.broker
    assert isinstance(broker, BullmqBroker)
    send()  # the connection is open and the scripts are in Redis's cache
    with monitored(redis_server.url) as commands:
        for _ in range(SENDS):
            send()
    sha = {"enqueue": broker.writer.enqueue_script.sha, "schedule": broker.writer.schedule_script.sha}[script]
    expected = [["EVALSHA", sha]] * SENDS
    assert expected == [words[:2] for words in _sends_of(commands, broker.namespace)]


def test_a_send_under_a_taken_id_is_one_script_call_and_enqueues_nothing(
    bullmq: Runtime, redis_server: RedisServer
) -> None:
    broker = bullmq.broker
    assert isinstance(broker, BullmqBroker)
    assert jobs.trigger_once("test.record", {"key": "first"}, id="taken-once")
    with monitored(redis_server.url) as commands:
        again = jobs.trigger_once("test.record", {"key": "second"}, id="taken-once")
    assert not again
    sent = _sends_of(commands, broker.namespace)
    assert [["EVALSHA", broker.writer.enqueue_script.sha]] == [words[:2] for words in sent]
