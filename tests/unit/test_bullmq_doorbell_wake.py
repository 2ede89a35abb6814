"""A bullmq worker's acks ring their consumer's doorbell only when it is not rung already.

Issue 21 (bullmq drain): every ack wakes the consumer (an idle one sends the ack at
once), and ``threading.Event.set`` takes the lock the consumer waits under even when
the event is set already, as it is while the consumer is busy fetching and handing
out jobs: ~0.8 us an ack alone, more when contended. A set event has no one waiting
on it, so ringing it again changes nothing. No Redis here: the listener is not used.
"""

from __future__ import annotations

import threading
from typing import Any, cast

import redis

from docjobs.brokers.bullmq.doorbell import Doorbell


class CountingEvent(threading.Event):
    """An event that counts its ``set`` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        super().set()


class DownPubSub:
    """Pub/sub that cannot subscribe: the doorbell's listener retries until closed."""

    def subscribe(self, channel: str) -> None:
        raise redis.ConnectionError("no pub/sub in this test")

    def close(self) -> None:
        pass


class NoPubSub:
    """A client whose pub/sub is down."""

    def pubsub(self, **kwargs: Any) -> DownPubSub:
        return DownPubSub()


def test_waking_a_rung_doorbell_does_not_set_it_again_and_a_waiter_still_wakes() -> None:
    doorbell = Doorbell(cast(redis.Redis, NoPubSub()), "wake-test")
    event = CountingEvent()
    doorbell._events["default"] = event  # the doorbell makes one per queue; this one counts
    try:
        for _ in range(5):  # five acks while the consumer is busy
            doorbell.wake("default")
        assert 1 == event.sets

        doorbell.arm("default")  # the consumer looks at its queue again, then waits
        woken: list[bool] = []
        waiter = threading.Thread(target=lambda: woken.append(doorbell.wait("default", 10.0)))
        waiter.start()
        doorbell.wake("default")
        waiter.join(10.0)
        assert [True] == woken and 2 == event.sets
    finally:
        doorbell.close()
