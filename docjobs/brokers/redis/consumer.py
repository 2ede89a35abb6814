"""A Redis consumer that batches its acks and sleeps on the doorbell when idle.

Dramatiq's consumer makes one Redis round trip per ack and, on an empty queue,
sleeps with a growing backoff. This one keeps the acks of finished messages and
sends them with its next fetch (one round trip for both), and waits on the doorbell
when the queue is empty, so an idle worker starts a new job within milliseconds.
An ack not yet sent when a worker dies only means the job runs again after the
heartbeat timeout: the same at-least-once as a job interrupted mid-run.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

from docjobs.brokers.redis.doorbell import Doorbell

#: How long a consumer whose workers are all busy waits before looking again.
BUSY_WAIT_SECONDS = 0.002


class RedisConsumer(_RedisConsumer):
    """Consumes one queue (or its delay queue) for one worker process.

    Args:
        broker: The docjobs Redis broker.
        queue_name: The queue.
        prefetch: The most messages held (fetched, not yet acked) at a time.
        idle_poll_seconds: The longest wait on the doorbell before fetching anyway.
        doorbell: The process's doorbell.
    """

    def __init__(
        self, broker: Any, queue_name: str, prefetch: int, idle_poll_seconds: float, doorbell: Doorbell
    ) -> None:
        super().__init__(broker, queue_name, prefetch, int(idle_poll_seconds * 1000))
        self.idle_poll_seconds = idle_poll_seconds
        self.doorbell = doorbell
        # Kept by the broker, so acks a lost connection left unsent go out with the
        # next consumer of this queue; lost, their jobs would stay held while this
        # process lives.
        self._acks: list[str] = broker.unsent_acks(queue_name)

    def ack(self, message: MessageProxy) -> None:
        self._acks.append(message.options["redis_message_id"])
        self.queued_message_ids.discard(message.message_id)

    def nack(self, message: MessageProxy) -> None:
        self._send_acks()
        super().nack(message)

    def requeue(self, messages: Any) -> None:
        self._send_acks()
        super().requeue(messages)

    def close(self) -> None:
        try:
            self._send_acks()
        except ConnectionClosed:
            pass  # Redis is gone: these jobs run again once the heartbeat times out

    def __next__(self) -> MessageProxy | None:
        if self.message_cache:
            return self._proxy(self.message_cache.pop(0))
        wanted = self.prefetch - self.outstanding_message_count
        if wanted <= 0:
            # Every slot is taken: the acks that free them arrive between calls.
            self._send_acks()
            time.sleep(BUSY_WAIT_SECONDS)
            return None
        self.doorbell.arm(self.queue_name)
        try:
            self.message_cache = self._ack_and_fetch(wanted)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None
        if self.message_cache:
            return self._proxy(self.message_cache.pop(0))
        self.doorbell.wait(self.queue_name, self.idle_poll_seconds)
        return None

    def _proxy(self, data: bytes | None) -> MessageProxy | None:
        if data is None:  # the body was deleted under us (acked by a rescued duplicate)
            return None
        message = Message.decode(data)
        self.queued_message_ids.add(message.message_id)
        return MessageProxy(message)

    def _ack_and_fetch(self, wanted: int) -> list[bytes | None]:
        acks = list(self._acks)

        def build(pipeline: Any) -> None:
            if acks:
                self.broker.ack_to(pipeline, self.queue_name, acks)
            self.broker.dispatch_to(pipeline, "fetch", self.queue_name, wanted)

        results = self.broker.run_pipeline(build)
        del self._acks[: len(acks)]
        fetched: list[bytes | None] = results[-1]
        return fetched

    def _send_acks(self) -> None:
        acks = list(self._acks)
        if acks:
            try:
                self.broker.run_pipeline(lambda pipeline: self.broker.ack_to(pipeline, self.queue_name, acks))
            except redis.ConnectionError as exc:
                raise ConnectionClosed(exc) from None
            del self._acks[: len(acks)]
