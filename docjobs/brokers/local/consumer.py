"""The consumer of one queue in one process: batch claims, batched acks, fenced writes.

Dramatiq calls :meth:`__next__` from the queue's consumer thread and ``ack``/``nack``
from worker threads. Acks are only recorded in memory; the consumer thread writes
them in the same statement that claims the next batch, so a busy worker costs one
round trip per batch instead of one per job. Every write names the attempt it
claimed (``attempts``), so an ack that arrives after the rescuer handed the job to
someone else changes nothing.

The thread sleeps on an event that the LISTEN thread, the self-trigger endpoint,
worker threads (a slot freed up) and local enqueues set; the poll interval bounds
the sleep, so a job whose wake-up was lost still starts within it.

Neither the claim nor the batched write says when a job ran: a claimed job may wait
in the worker's prefetch buffer, and its ack may be written a poll interval after it
ended. :class:`RunClock` notes when each actor began and ended, and every write of an
outcome carries those times (issue 20).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable
from typing import Any

import dramatiq
import psycopg
from dramatiq import Message, MessageProxy
from dramatiq.errors import BrokerConnectionError

from docjobs.brokers.local.consumers import ClaimSettings, ConsumerRegistry, HeldJobs
from docjobs.brokers.local.unreachable import database_unreachable
from docjobs.db.claims import Done, Ran
from docjobs.db.store import Claim, JobStore, Row
from docjobs.logging import first_line

logger = logging.getLogger(__name__)

#: A consumer holds at most the jobs its worker threads start within this time (at their
#: recent rate), never fewer than Dramatiq's prefetch: short jobs are claimed in larger
#: batches, long ones as before (issue 21).
START_SOON_SECONDS = 0.02
#: ... and never more than this many times Dramatiq's prefetch.
MAX_PREFETCH_FACTOR = 4
#: The rate at which jobs finish is measured over windows at least this long.
RATE_WINDOW_SECONDS = 0.25
#: A batch statement PostgreSQL rolled back to break a deadlock is run again at once, up to
#: this many times in all: its acks and claims were undone, not lost. Handled as an outage,
#: each one stopped the consumer until Dramatiq restarted it (make load, issue 21).
BATCH_TRIES = 3
_ROLLED_BACK = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


class ClaimedMessage(MessageProxy):
    """A message handed out by the Postgres consumer, with the attempt that holds it.

    ``began`` and ``ended`` are when its actor began and ended (``time.monotonic()``),
    set by :class:`RunClock` in the worker thread that runs it.
    """

    def __init__(
        self,
        claim: Claim,
        *,
        queue_name: str,
        actor_name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
        message_timestamp: int,
    ) -> None:
        # Not MessageProxy.__init__: the Message it wraps is built when first asked for
        # (see _message). A job that runs and is acked never asks, and building the frozen
        # dataclass cost ~3 us a job in the consumer thread (issue 21).
        self.failed = False
        self._exception: BaseException | None = None
        self._wrapped: Message[Any] | None = None
        # The fields every middleware reads, as the proxy's own attributes: reading them
        # through MessageProxy.__getattr__ took ~30 calls per job (issue 21). The message
        # gets the same objects, so a middleware that changes ``options`` changes its.
        self.queue_name = queue_name
        self.actor_name = actor_name
        self.args = args
        self.kwargs = kwargs
        self.options = options
        self.message_id = claim.id
        self.message_timestamp = message_timestamp
        self.claim = claim
        self.began: float | None = None
        self.ended: float | None = None

    @property
    def _message(self) -> Message[Any]:
        """The Dramatiq message this proxy stands for (what ``MessageProxy`` answers from)."""
        if self._wrapped is None:
            self._wrapped = Message(
                queue_name=self.queue_name,
                actor_name=self.actor_name,
                args=self.args,
                kwargs=self.kwargs,
                options=self.options,
                message_id=self.message_id,
                message_timestamp=self.message_timestamp,
            )
        return self._wrapped

    @_message.setter
    def _message(self, message: Message[Any]) -> None:
        self._wrapped = message

    def ran(self) -> Ran:
        """When its actor ran; a message whose end was not seen ends now."""
        return Ran(self.began, time.monotonic() if self.ended is None else self.ended)


class RunClock(dramatiq.Middleware):
    """Notes when the actor of each claimed message began and ended, for the write of its outcome.

    Added last, so its hooks are the nearest to the actor: the run it measures is the
    one the job's log line reports (``JobLog``).
    """

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if isinstance(message, ClaimedMessage):
            message.began = time.monotonic()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if isinstance(message, ClaimedMessage):
            message.ended = time.monotonic()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if isinstance(message, ClaimedMessage):
            message.ended = time.monotonic()


class Wakeup(threading.Event):
    """The event a consumer thread sleeps on, knowing why it was set.

    :meth:`set` (a wake-up: a local send, NOTIFY, the self-trigger) also records that
    new work may be waiting, until the consumer next claims; :meth:`nudge` (an ack or
    a nack freed a slot) only wakes the thread.
    """

    def __init__(self) -> None:
        super().__init__()
        self.work_arrived = False

    def set(self) -> None:
        """Wake the thread: new work may be waiting."""
        self.work_arrived = True
        super().set()

    def nudge(self) -> None:
        """Wake the thread without news of work (a slot freed, acks to write)."""
        super().set()


class HoldLimit:
    """How many jobs a consumer may hold: what its threads start soon, within bounds.

    Dramatiq's prefetch (threads x 2) is the floor: jobs that take a while are held as
    before. Jobs that finish fast are claimed up to ``MAX_PREFETCH_FACTOR`` times that,
    as many as the threads start within ``START_SOON_SECONDS``: a claim and its acks cost
    one round trip however many jobs it carries, and a worker thread that finds the next
    job already queued takes it without sleeping (no-op jobs: ~150 -> ~100 us a job).

    Args:
        prefetch: Dramatiq's prefetch for the queue.
        now: The current ``time.monotonic()``.
        cap: The queue's concurrency cap (``NEXT_PRIVATE_JOBS_<QUEUE>_CONCURRENCY``): the
            limit never grows past it, however fast the jobs finish.
    """

    def __init__(self, prefetch: int, now: float, cap: int | None = None) -> None:
        self.floor = max(prefetch if cap is None else min(prefetch, cap), 1)
        self.ceiling = (
            self.floor * MAX_PREFETCH_FACTOR if cap is None else min(self.floor * MAX_PREFETCH_FACTOR, cap)
        )
        self.limit = self.floor
        self._finished = 0
        self._since = now

    def finished(self, count: int, now: float) -> int:
        """Note ``count`` more jobs finished by ``now``; the limit from now on."""
        self._finished += count
        elapsed = now - self._since
        if elapsed >= RATE_WINDOW_SECONDS:
            soon = int(self._finished / elapsed * START_SOON_SECONDS)
            self.limit = min(max(soon, self.floor), self.ceiling)
            self._finished, self._since = 0, now
        return self.limit


class LocalConsumer(dramatiq.Consumer):
    """Claims jobs of one queue for one Dramatiq worker.

    Args:
        store: The job store it claims from and writes outcomes to.
        queue_name: The queue to consume.
        prefetch: Dramatiq's prefetch: the most jobs this consumer holds at once while they
            take a while; up to ``MAX_PREFETCH_FACTOR`` times it when they finish fast
            (see :class:`HoldLimit`).
        timeout_ms: How long ``__next__`` waits before returning ``None``.
        consumers: The process's consumers; this one joins them until closed.
        held: The jobs the process holds, which the heartbeat keeps leased.
        settings: The worker id, lease and poll interval.
        cap: The queue's concurrency cap: the most jobs held at once, fast or slow.
    """

    def __init__(
        self,
        store: JobStore,
        queue_name: str,
        prefetch: int,
        timeout_ms: int,
        *,
        consumers: ConsumerRegistry,
        held: HeldJobs,
        settings: ClaimSettings,
        cap: int | None = None,
    ) -> None:
        self.store = store
        self.consumers = consumers
        self.held_jobs = held
        self.settings = settings
        self.queue_name = queue_name
        self._hold = HoldLimit(prefetch, time.monotonic(), cap)
        # The limit and batch change only in the consumer thread, at a claim (see __next__).
        self.prefetch = self._hold.limit
        self.timeout = timeout_ms / 1000
        self.wakeup = Wakeup()
        self._buffer: deque[ClaimedMessage] = deque()
        self._acked: list[Done] = []
        self._oldest_ack = 0.0
        self._held = 0
        self._more = False
        self._next_poll = 0.0
        self._batch = max(self.prefetch // 2, 1)
        self._lock = threading.Lock()
        self._closed = False
        consumers.register(self)

    def __next__(self) -> ClaimedMessage | None:
        if self._buffer:
            return self._buffer.popleft()
        deadline = time.monotonic() + self.timeout
        while True:
            now = time.monotonic()
            with self._lock:
                # A consumer that replaced a failed one receives acks of messages it
                # never handed out: never count below zero.
                held, acks = max(self._held, 0), len(self._acked)
            free = self.prefetch - held
            # New work (a wake-up): claim into any free slot, so the worker's priority
            # queue sees high-priority work as soon as a thread can take it. A backlog
            # (the last claim came back full) and the idle poll refill in batches: when
            # half the slots are free, or the worker threads ran dry, so one round trip
            # claims many jobs.
            refill = free >= self._batch or held == 0
            wanted = (free > 0 and self.wakeup.work_arrived) or (
                refill and (self._more or now >= self._next_poll)
            )
            # Acks ride along with claims; alone, they go out once all work is done
            # (so finished jobs show COMPLETED promptly), when many are waiting, or
            # when the oldest has waited a poll interval (long jobs).
            flush = acks > 0 and (
                held == 0
                or acks >= self.prefetch
                or now - self._oldest_ack >= self.settings.poll_interval_seconds
            )
            if wanted or flush:
                # Clear before looking, so a wake-up that lands during the claim is kept.
                self.wakeup.clear()
                with self._lock:
                    acked, self._acked = self._acked, []
                self._resize(len(acked), now)
                limit = max(self.prefetch - held, 0) if wanted else 0
                if limit:
                    # This claim looks for it; a wake-up from now on sets it again.
                    self.wakeup.work_arrived = False
                rows = self._complete_and_claim(acked, limit)
                if limit:
                    self._more = len(rows) == limit
                    self._next_poll = now + self.settings.poll_interval_seconds
                if rows:
                    with self._lock:
                        self._held += len(rows)
                    self._buffer.extend(self._to_message(row) for row in rows)
                    return self._buffer.popleft()
                continue
            if deadline <= now:
                return None
            self.wakeup.clear()
            with self._lock:
                changed = (self._held, len(self._acked)) != (held, acks)
            if changed or (free > 0 and self.wakeup.work_arrived):
                continue  # an ack or a wake-up landed before the clear: look again
            # Waiting for jobs: until the next poll. Waiting for slots: until an ack.
            until = min(deadline, self._next_poll) if refill else deadline
            self.wakeup.wait(max(until - now, 0))

    def _resize(self, finished: int, now: float) -> None:
        """Follow the hold limit after ``finished`` more jobs ended.

        Only this (the consumer) thread changes the limit and the batch, and it looks at
        the counts again before it sleeps: an ack that read the old values is not missed.
        """
        limit = self._hold.finished(finished, now)
        if limit != self.prefetch:
            self.prefetch = limit
            self._batch = max(limit // 2, 1)

    def ack(self, message: MessageProxy) -> None:
        claimed = _claimed(message)
        done = Done(claimed.claim, claimed.ran())
        wake = False
        with self._lock:
            closed = self._closed
            if not closed:
                self._append_acks([done])
                self._held -= 1
                wake = self._ack_may_wake(self._held, len(self._acked))
        if closed:
            # Dramatiq's worker threads ack through the consumer they know, which may
            # have been closed after a connection error: the queue's next one writes it.
            self.consumers.hand_over_acks(self.queue_name, [done])
            return
        if wake:
            self.wakeup.nudge()

    def _ack_may_wake(self, held: int, acks: int) -> bool:
        """Whether an ack that left ``held`` jobs and ``acks`` unwritten acks can change what
        :meth:`__next__` does, so its thread must look again.

        Only these crossings can (each ack moves both counts by one, so none is
        skipped): the first free slot (for work that arrived while all were taken),
        half the slots free (a batch refill), nothing held, a full batch of acks.
        Waking the consumer thread on every other ack cost a thread switch per job
        and decided nothing (issue 21).
        """
        free = self.prefetch - max(held, 0)
        return (
            held <= 0
            or free == self._batch
            or acks == self.prefetch
            or (free == 1 and self.wakeup.work_arrived)
        )

    def adopt_acks(self, acks: list[Done]) -> None:
        """Write these acks (of a closed consumer of this queue) with this one's next claim."""
        with self._lock:
            self._append_acks(acks)
        self.wakeup.nudge()

    def _append_acks(self, acks: list[Done]) -> None:
        if not self._acked:
            self._oldest_ack = time.monotonic()
        self._acked.extend(acks)

    def nack(self, message: MessageProxy) -> None:
        claimed = _claimed(message)
        claim = claimed.claim
        error, trace = describe_failure(message)
        try:
            self.store.claims.fail(claim, error=error, traceback=trace, ran=claimed.ran())
        except psycopg.OperationalError as exc:
            # Dramatiq nacks again (every 5 s) until it goes through. Until then the job
            # stays held, so its lease is kept: the rescuer must not end it without its error.
            raise database_unreachable(exc) from exc
        self.held_jobs.release([claim.id])
        with self._lock:
            self._held -= 1
        self.wakeup.nudge()

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        claims = [_claimed(message).claim for message in messages]
        try:
            self.store.claims.requeue(claims)
        except psycopg.OperationalError as exc:
            raise database_unreachable(exc) from exc
        finally:
            self.held_jobs.release(claim.id for claim in claims)
            with self._lock:
                self._held -= len(claims)

    def close(self) -> None:
        self.consumers.unregister(self)
        with self._lock:
            self._closed = True
            acked, self._acked = self._acked, []
        leftover = list(self._buffer)
        self._buffer.clear()
        try:
            if acked:
                self._complete_and_claim(acked, 0)
            if leftover:
                self.requeue(leftover)
        finally:
            # Acks that could not be written (the database is away) go to the queue's
            # next consumer in this process, which replaces this one after a connection
            # error: the jobs ran, and need not run again. Their leases stay extended
            # meanwhile; if the process stops first, they run again after the lease.
            with self._lock:
                unwritten, self._acked = self._acked, []
            if unwritten:
                self.consumers.hand_over_acks(self.queue_name, unwritten)
            # Jobs never started are no longer ours: the rescuer returns them to the queue.
            self.held_jobs.release(message.claim.id for message in leftover)

    def _complete_and_claim(self, acked: list[Done], limit: int) -> list[Row]:
        try:
            rows = self._batch_statement(acked, limit)
        except psycopg.OperationalError as exc:
            # Keep the acks for close() to try once more; if that fails too they go
            # to the queue's next consumer (see close).
            with self._lock:
                self._acked[:0] = acked
            if isinstance(exc, _ROLLED_BACK):  # the database answered: not an outage
                why = first_line(exc)
                raise BrokerConnectionError(
                    f"claims on {self.queue_name} were rolled back {BATCH_TRIES} times in a row: {why}"
                ) from exc
            raise database_unreachable(exc) from exc
        self.held_jobs.release(done.claim.id for done in acked)
        self.held_jobs.hold(row["id"] for row in rows)
        return rows

    def _batch_statement(self, acked: list[Done], limit: int) -> list[Row]:
        tries = 1
        while True:
            try:
                # A pooled connection, not one of its own: the process's connections stay
                # within NEXT_PRIVATE_JOBS_DB_POOL_SIZE however many queues it consumes.
                with self.store.database.connection() as conn:
                    return self.store.claims.complete_and_claim(
                        conn,
                        queue=self.queue_name,
                        done=acked,
                        limit=limit,
                        worker=self.settings.worker_id,
                        lease_seconds=self.settings.lease_seconds,
                    )
            except _ROLLED_BACK as exc:
                if tries >= BATCH_TRIES:
                    raise
                tries += 1
                logger.info(
                    "Claims on %s were rolled back (%s); running them again.",
                    self.queue_name,
                    first_line(exc),
                )

    def _to_message(self, row: Row) -> ClaimedMessage:
        options = row["options"]  # the row's own dict, decoded for this claim
        if row["retried"]:
            # The row is the source of truth: rescues count as retries too.
            options["retries"] = row["retried"]
        return ClaimedMessage(
            Claim(row["id"], row["attempts"]),
            queue_name=self.queue_name,
            actor_name=row["actor"],
            args=tuple(row["args"]),
            kwargs=row["payload"],
            options=options,
            # When the message was built, as on every Dramatiq broker: max_age counts from it.
            message_timestamp=row["message_ts_ms"],
        )


def _claimed(message: MessageProxy) -> ClaimedMessage:
    if not isinstance(message, ClaimedMessage):
        raise TypeError(f"{message!r} was not handed out by a Postgres consumer")
    return message


def describe_failure(message: MessageProxy) -> tuple[str | None, str | None]:
    """The error line and traceback of a failed attempt, from what Dramatiq kept."""
    exception: BaseException | None = getattr(message, "_exception", None)
    trace = message.options.get("traceback")
    if exception is None:
        return None, trace
    if trace is None:
        trace = "".join(traceback.format_exception(exception))
    return f"{type(exception).__name__}: {exception}", trace
