"""A Redis consumer that batches its acks and sleeps on the doorbell when idle.

Dramatiq's consumer makes one Redis round trip per ack and, on an empty queue,
sleeps with a growing backoff. This one keeps the acks of finished messages and
sends them with its next fetch (one round trip for both; an idle consumer is woken
to send them at once), and waits on the doorbell when the queue is empty, so an
idle worker starts a new job within milliseconds. A delay queue's consumer also
moves its queue's scheduled jobs when they fall due, with each fetch, and sleeps
until the next one is due.
An ack not yet sent when a worker dies only means the job runs again after the
heartbeat timeout: the same at-least-once as a job interrupted mid-run.

A lost connection is waited out here, not raised: Dramatiq's consumer thread
answers a connection error by dropping the delayed messages it holds, which
would strand them. Fetches are never retried blindly (see ``holdings``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.common import current_millis, q_name
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message
from redis.client import Pipeline

from docjobs.brokers.bullmq.commands import RedisCommands
from docjobs.brokers.bullmq.doorbell import Doorbell
from docjobs.brokers.bullmq.holdings import Holdings

logger = logging.getLogger(__name__)

#: How long a consumer whose workers are all busy waits before looking again.
BUSY_WAIT_SECONDS = 0.002
#: The shortest wait for a delayed message's due time (a bound on spinning).
MIN_ETA_WAIT_SECONDS = 0.002
#: Waits between tries while Redis is unreachable: 50 ms doubling up to 1 s.
RECONNECT_FIRST_SECONDS = 0.05
RECONNECT_MAX_SECONDS = 1.0

#: Around a pipeline that sends acks: yields what adds the pending history events to it.
Journaling = Callable[[], AbstractContextManager[Callable[[Pipeline], None]]]


def direct_proxy(message: Message[Any]) -> MessageProxy:
    """The worker's proxy of ``message``, holding the message's fields itself.

    A plain proxy answers each field through ``__getattr__`` after a failed lookup,
    ~2 us a time, and the worker and its middleware read some thirty per job. The
    message is frozen (its options dict is shared, not copied), so the copies stay true.
    """
    proxy = MessageProxy(message)
    vars(proxy).update(vars(message))
    return proxy


class BullmqConsumer(dramatiq.Consumer):
    """Consumes one queue (or its delay queue) for one worker process.

    Args:
        commands: The provider's Redis commands.
        queue_name: The queue.
        prefetch: The most messages held (fetched, not yet acked) at a time.
        idle_poll_seconds: The longest wait on the doorbell before fetching anyway.
        doorbell: The process's doorbell.
        holdings: What this process holds of the queue, kept by the broker so the
            queue's next consumer in this process knows what this one fetched or
            left unacked.
        journaling: Puts the pending history events ahead of the acks (the broker's).
        paused: The queues paused on the board, as the keeper last read them.
    """

    def __init__(
        self,
        commands: RedisCommands,
        queue_name: str,
        prefetch: int,
        *,
        idle_poll_seconds: float,
        doorbell: Doorbell,
        holdings: Holdings,
        journaling: Journaling,
        paused: Callable[[], frozenset[str]],
    ) -> None:
        self.commands = commands
        self.queue_name = queue_name
        self.prefetch = prefetch
        self.idle_poll_seconds = idle_poll_seconds
        self.doorbell = doorbell
        self.holdings = holdings
        self.journaling = journaling
        self.paused = paused
        self.message_cache: list[Message[Any]] = []
        #: Ids of the messages handed to the worker and not yet acked or nacked.
        self.queued_message_ids: set[str] = set()
        self._failures = 0
        #: A delay queue's consumer keeps its queue's schedule (see ``schedule.lua``).
        self.keeps_schedule = q_name(queue_name) != queue_name
        #: When the queue's next scheduled job is due (epoch ms), as the last fetch saw.
        self.next_due_ms: int | None = None

    @property
    def outstanding_message_count(self) -> int:
        """Messages held: handed to the worker, or fetched and not handed out yet."""
        return len(self.queued_message_ids) + len(self.message_cache)

    def ack(self, message: MessageProxy) -> None:
        # An ack with an exception is of an attempt the retry policy sent again: not an end.
        if self.commands.holds_id_key(message.options) and message._exception is None:
            self.holdings.unsent_ends.append(message.message_id)
        self.holdings.unsent_acks.append(message.options["redis_message_id"])
        self.queued_message_ids.discard(message.message_id)
        self.holdings.etas.pop(message.message_id, None)
        # An idle consumer sends it now (a busy one sends it with its next fetch anyway):
        # an unsent ack keeps the job counted as queued, and run again if this process dies.
        self.doorbell.wake(self.queue_name)

    def nack(self, message: MessageProxy) -> None:
        message_id = message.options["redis_message_id"]
        if self.commands.holds_id_key(message.options):
            self.holdings.unsent_ends.append(message.message_id)
        try:
            self._send_acks()
            self.commands.nack(self.queue_name, message_id)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # Dramatiq tries again until it goes through
        self.holdings.acknowledged([message_id])
        self.queued_message_ids.discard(message.message_id)
        self.holdings.etas.pop(message.message_id, None)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        messages = list(messages)  # Dramatiq may pass a generator
        message_ids = [message.options["redis_message_id"] for message in messages]
        try:
            self._send_acks()
            if message_ids:
                self.commands.requeue(self.queue_name, message_ids)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # still held: recovered with the rest
        self.holdings.acknowledged(message_ids)
        for message in messages:
            self.holdings.etas.pop(message.message_id, None)

    def close(self) -> None:
        if self.message_cache:
            # Fetched but never handed out: the next fetch of this queue gives them back.
            with self.holdings.lock:
                self.holdings.held.difference_update(
                    m.options["redis_message_id"] for m in self.message_cache
                )
                self.holdings.suspect = True
            self.message_cache = []
        try:
            self._send_acks()
        except redis.ConnectionError:
            pass  # still listed: the next consumer of this queue sends them

    def __next__(self) -> MessageProxy | None:
        if self.message_cache:
            return self._proxy(self.message_cache.pop(0))
        wanted = self.prefetch - self.outstanding_message_count
        if wanted <= 0:
            # Every slot is taken: the acks that free them arrive between calls.
            try:
                self._send_acks()
            except redis.ConnectionError as exc:
                self._wait_for_redis(exc)
                return None
            time.sleep(BUSY_WAIT_SECONDS)
            return None
        if self.queue_name in self.paused():
            # Paused on the board: keep acking what runs, fetch nothing new.
            try:
                self._send_acks()
            except redis.ConnectionError as exc:
                self._wait_for_redis(exc)
                return None
            self.doorbell.wait(self.queue_name, self.idle_poll_seconds)
            return None
        self.doorbell.arm(self.queue_name)
        try:
            self.message_cache = self._ack_and_fetch(wanted)
        except redis.ConnectionError as exc:
            self._wait_for_redis(exc)
            return None
        self._failures = 0
        if self.message_cache:
            return self._proxy(self.message_cache.pop(0))
        self.doorbell.wait(self.queue_name, self._idle_wait())
        return None

    def _idle_wait(self) -> float:
        """Until the doorbell, or until a held delayed message or a scheduled one is due.

        A held delayed message moves only between waits.
        """
        now = current_millis()
        dues = [self.holdings.seconds_to_next_eta(now)]
        if self.next_due_ms is not None:
            dues.append(max(self.next_due_ms - now, 0) / 1000)
        due_in = min((due for due in dues if due is not None), default=None)
        if due_in is None:
            return self.idle_poll_seconds
        return min(max(due_in, MIN_ETA_WAIT_SECONDS), self.idle_poll_seconds)

    def _proxy(self, message: Message[Any]) -> MessageProxy:
        self.queued_message_ids.add(message.message_id)
        if not self.keeps_schedule:
            # On its queue a scheduled job is due: without this, Dramatiq's worker would
            # hold it as delayed and send it again.
            message.options.pop("eta", None)
        eta = message.options.get("eta")
        if eta is not None:
            self.holdings.etas[message.message_id] = int(eta)
        return direct_proxy(message)

    def _ack_and_fetch(self, wanted: int) -> list[Message[Any]]:
        holdings = self.holdings
        with holdings.lock, self.journaling() as journal_to:
            if holdings.suspect:
                recovered = self.commands.requeue_unheld(self.queue_name, holdings)
                if recovered:
                    logger.warning(
                        "Gave back %d job(s) of %r whose fetch was cut off by a lost connection.",
                        recovered,
                        self.queue_name,
                    )
                holdings.suspect = False
            acks = list(holdings.unsent_acks)
            ends = list(holdings.unsent_ends)

            def build(pipeline: Pipeline) -> None:
                self._acks_to(pipeline, journal_to, acks, ends)
                if self.keeps_schedule:
                    self.commands.move_due_to(pipeline, self.queue_name)
                self.commands.dispatch_to(pipeline, "fetch", self.queue_name, wanted)

            try:
                results = self.commands.run_pipeline(build, fetching=True)
            except redis.ConnectionError:
                holdings.suspect = True  # Redis may have run the fetch
                raise
            del holdings.unsent_acks[: len(acks)]
            del holdings.unsent_ends[: len(ends)]
            holdings.acknowledged(acks)
            if self.keeps_schedule:
                next_due = int(results[-2][1])
                self.next_due_ms = next_due if next_due >= 0 else None
            # A body deleted under us (acked by a rescued duplicate) comes back as None.
            fetched = [Message.decode(data) for data in results[-1] if data is not None]
            holdings.held.update(message.options["redis_message_id"] for message in fetched)
        return fetched

    def _send_acks(self) -> None:
        """Send the unsent acks, behind the history events (a nack's failure among them)."""
        holdings = self.holdings
        with holdings.lock, self.journaling() as journal_to:
            acks = list(holdings.unsent_acks)
            ends = list(holdings.unsent_ends)
            self.commands.run_pipeline(lambda pipeline: self._acks_to(pipeline, journal_to, acks, ends))
            del holdings.unsent_ends[: len(ends)]
            del holdings.unsent_acks[: len(acks)]
            holdings.acknowledged(acks)

    def _acks_to(
        self, pipeline: Pipeline, journal_to: Callable[[Pipeline], None], acks: list[str], ends: list[str]
    ) -> None:
        """Queue the history events, then the acks and the ends of the jobs' ids, on ``pipeline``."""
        journal_to(pipeline)
        if acks:
            self.commands.ack_to(pipeline, self.queue_name, acks)
        self.commands.expire_ids_to(pipeline, ends)

    def _wait_for_redis(self, exc: redis.ConnectionError) -> None:
        delay = min(RECONNECT_FIRST_SECONDS * 2**self._failures, RECONNECT_MAX_SECONDS)
        if self._failures == 0:
            logger.warning("Lost Redis while consuming %r, reconnecting: %s", self.queue_name, exc)
        self._failures += 1
        time.sleep(delay)
