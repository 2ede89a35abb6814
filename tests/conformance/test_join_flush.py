"""Behaviour 9: join waits for follow-ups and times out; flush and flush_all drop waiting messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from docjobs_devkit.inngest import InngestServer
from dramatiq.errors import QueueJoinTimeout

from docjobs import errors, jobs
from docjobs.runtime import Runtime
from tests.conftest import inngest_overrides
from tests.support.providers import Calls, Harness


def test_join_waits_for_the_messages_that_jobs_send(provider: Harness) -> None:
    calls = Calls()

    def second(key: str) -> None:
        calls.add(f"second:{key}")

    follow_up = provider.actor(second)

    def first(key: str) -> None:
        calls.add(f"first:{key}")
        follow_up.send(key=key)

    actor = provider.actor(first)
    provider.run()
    actor.send(key="a")
    provider.join()
    assert ["first:a", "second:a"] == calls.values()


def test_join_raises_queue_join_timeout_while_a_job_runs(provider: Harness) -> None:
    gate = threading.Event()
    actor = provider.actor(lambda key: gate.wait(10), name="held")
    provider.run()
    actor.send(key="held")
    try:
        with pytest.raises(QueueJoinTimeout):
            provider.join(timeout_seconds=0.3)
    finally:
        gate.set()
    provider.join()


def _flush_test(provider: Harness, flush: str) -> None:
    calls = Calls()
    actor = provider.actor(lambda key: calls.add(key), name="flushed")
    for index in range(3):
        actor.send(key=f"waiting{index}")
    if provider.name == "inngest":
        with pytest.raises(errors.NotSupportedError, match="managed by Inngest"):
            getattr(provider.broker, flush)(*(["default"] if flush == "flush" else []))
        return
    getattr(provider.broker, flush)(*(["default"] if flush == "flush" else []))
    provider.run()
    actor.send(key="after")
    provider.join()
    assert ["after"] == calls.values()


def test_flush_drops_the_waiting_messages_of_a_queue(provider: Harness) -> None:
    _flush_test(provider, "flush")


def test_flush_all_drops_every_waiting_message(provider: Harness) -> None:
    _flush_test(provider, "flush_all")


def test_on_inngest_join_gives_up_on_a_job_nobody_runs(
    make_runtime: Callable[..., Runtime], inngest_emulator: InngestServer
) -> None:
    current = make_runtime(**inngest_overrides(inngest_emulator))
    jobs.trigger("test.record", {"key": "unserved"})  # the app never synced: no function takes the event
    started = time.monotonic()
    with pytest.raises(QueueJoinTimeout):
        current.join(timeout_seconds=0.5)
    assert time.monotonic() - started >= 0.5
