"""A worker thread's ack wakes the local consumer's thread only when that can change what it does (issue 21).

The consumer claims when half its slots are free (a batch), when all are (nothing held),
or, for work that arrived while every slot was taken, at the first free slot; it writes
acks alone when a full batch of them waits. Waking its thread for every other ack cost a
thread switch per job and decided nothing. No database: the claim is a stub.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from docjobs.brokers.local.consumer import LocalConsumer, Wakeup
from tests.support.fakes import stub_consumer

PREFETCH = 16


class CountingWakeup(Wakeup):
    """The consumer's event, counting the times an ack or a nack woke its thread."""

    def __init__(self) -> None:
        super().__init__()
        self.nudges = 0

    def nudge(self) -> None:
        self.nudges += 1
        super().nudge()


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> LocalConsumer:
    """A consumer whose claims hand out as many stub rows as it asks for (none after 64)."""
    made, _ = stub_consumer(monkeypatch, PREFETCH, rows=iter(range(64)))
    made.wakeup = CountingWakeup()
    return made


def nudges(consumer: LocalConsumer) -> int:
    return cast(CountingWakeup, consumer.wakeup).nudges


def test_acks_wake_the_consumer_when_a_batch_of_slots_is_free_and_when_all_are(
    consumer: LocalConsumer,
) -> None:
    messages = [next(consumer) for _ in range(PREFETCH)]
    assert all(message is not None for message in messages)
    for message in messages[: PREFETCH // 2 - 1]:
        consumer.ack(cast(Any, message))
    assert 0 == nudges(consumer)  # 7 slots free: not yet a batch to claim
    consumer.ack(cast(Any, messages[PREFETCH // 2 - 1]))
    assert 1 == nudges(consumer)  # half free: the consumer claims a batch
    for message in messages[PREFETCH // 2 :]:
        consumer.ack(cast(Any, message))
    assert 2 == nudges(consumer)  # and once more when nothing is held: it writes the acks


def test_work_that_arrived_while_every_slot_was_taken_is_claimed_at_the_first_free_slot(
    consumer: LocalConsumer,
) -> None:
    messages = [next(consumer) for _ in range(PREFETCH)]
    consumer.wakeup.set()  # a send, a NOTIFY: new work, no slot for it
    consumer.ack(cast(Any, messages[0]))
    assert 1 == nudges(consumer)
    consumer.ack(cast(Any, messages[1]))
    assert 1 == nudges(consumer)
