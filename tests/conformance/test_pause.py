"""Behaviour 11 (docjobs): nothing of a paused queue starts until it is resumed; the stub refuses to pause."""

from __future__ import annotations

import pytest

from docjobs import errors
from docjobs.brokers.bullmq.broker import BullmqBroker
from tests.support.providers import Calls, Harness, RuntimeHarness

pytestmark = pytest.mark.docjobs_only

PAUSED_QUEUE = "conformance-paused"


def set_paused(provider: RuntimeHarness, queue: str, paused: bool) -> None:
    """Pause or resume as the board does (web/board/actions.py): its row first, then the provider."""
    rows = provider.broker.job_rows  # type: ignore[attr-defined]
    assert rows is not None
    rows.set_paused(queue, paused)
    provider.broker.set_paused(queue, paused)  # type: ignore[attr-defined]


def test_nothing_of_a_paused_queue_starts_until_it_is_resumed(provider: Harness) -> None:
    assert isinstance(provider, RuntimeHarness)
    calls = Calls()
    held = provider.actor(lambda key: calls.add(key), name="held", queue_name=PAUSED_QUEUE)
    free = provider.actor(lambda key: calls.add(key), name="free")
    if not provider.broker.capabilities.pause:  # type: ignore[attr-defined]
        assert "stub" == provider.name
        with pytest.raises(errors.NotSupportedError, match="pausing a queue is not available on the stub"):
            provider.broker.set_paused(PAUSED_QUEUE, True)  # type: ignore[attr-defined]
        return
    set_paused(provider, PAUSED_QUEUE, True)
    if isinstance(provider.broker, BullmqBroker):
        # bullmq's consumers learn the paused queues at their keeper's rounds, and one
        # already fetching finishes that fetch: learn it now, before any consumer starts.
        provider.broker.maintain()
        assert PAUSED_QUEUE in provider.broker.paused
    provider.run()
    waiting = held.send(key="held")
    free.send(key="free")
    # The other queue's job, sent after, has run; the paused one's has not started.
    assert ["free"] == calls.wait(1)
    provider.join()
    assert "PENDING" == provider.status(waiting)
    assert ["free"] == calls.values()
    set_paused(provider, PAUSED_QUEUE, False)
    assert ["free", "held"] == calls.wait(2)
    provider.join(PAUSED_QUEUE)
    assert "COMPLETED" == provider.status(waiting)
