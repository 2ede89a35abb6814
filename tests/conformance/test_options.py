"""Behaviour 6: message options as Dramatiq means them: max_age from message_timestamp, actor priority."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tests.conftest import wait_for
from tests.support.providers import ACTOR_PREFIX, Calls, Harness, InngestHarness

MAX_AGE_MS = 500
#: Messages of the low-priority burst besides the one holding the only worker thread.
BURST = 6
#: Messages a worker may hold: more than the burst, so the high-priority one fits beside it.
PREFETCH = 10


def test_max_age_counts_from_when_the_message_was_built(provider: Harness) -> None:
    calls = Calls()
    actor = provider.actor(lambda key: calls.add(key), name="aged")
    provider.run()
    built_a_second_ago = actor.message_with_options(kwargs={"key": "stale"}, max_age=MAX_AGE_MS)
    built_a_second_ago = built_a_second_ago.copy(message_timestamp=int(time.time() * 1000) - 1000)
    provider.broker.enqueue(built_a_second_ago)
    actor.send_with_options(kwargs={"key": "fresh"}, max_age=MAX_AGE_MS)
    provider.join()
    assert ["fresh"] == calls.values()
    assert provider.dead(built_a_second_ago)  # skipped and failed, as Dramatiq's AgeLimit does


def test_higher_priority_work_sent_during_a_burst_starts_first_once_a_slot_frees(provider: Harness) -> None:
    started = Calls()
    gate = threading.Event()

    def work(key: str) -> None:
        started.add(key)
        if key == "holder":
            gate.wait(10)

    low = provider.actor(work, name="low", priority=100)
    high = provider.actor(work, name="high", priority=0)
    if provider.name == "inngest":
        # Inngest starts a run at once unless a limit holds it back; then its function's own
        # priority orders the waiting runs: the priority goes there (lower runs first, as here).
        provider.run(threads=1, prefetch=PREFETCH)
        assert isinstance(provider, InngestHarness)
        synced = {
            f["id"].rpartition(ACTOR_PREFIX)[2]: f for f in provider.emulator.registrations[-1]["functions"]
        }
        assert {"run": "-100"} == synced["low"]["priority"] and "priority" not in synced["high"]
        low.send(key="holder")
        gate.set()
        provider.join()
        assert ["holder"] == started.values()
        return
    provider.run(threads=1, prefetch=PREFETCH)
    try:
        low.send(key="holder")
        started.wait(1)
        for index in range(BURST):
            low.send(key=f"low{index}")
        # The worker holds the burst (or, without workers, ran it) before the high one is sent.
        wait_until_or_not(lambda: provider.waiting() == BURST or len(started.values()) == BURST + 1)
        high.send(key="high")
        # Until the worker holds all of them (not an assertion: a provider that never takes
        # the high one in fails below, on the order).
        wait_until_or_not(lambda: provider.waiting() == BURST + 1 or "high" in started.values())
    finally:
        gate.set()
    provider.join()
    assert ["holder", "high"] == started.values()[:2]
    assert BURST + 2 == len(started.values())


def wait_until_or_not(condition: Callable[[], object], timeout_seconds: float = 3.0) -> bool:
    """Wait for ``condition`` up to ``timeout_seconds``; whether it came (the caller decides what that means)."""
    try:
        wait_for(condition, timeout=timeout_seconds)
    except AssertionError:
        return False
    return True
