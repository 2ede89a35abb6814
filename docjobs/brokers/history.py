"""Job history for providers whose queue is not a PostgreSQL table (bullmq).

The board shows every provider's jobs from ``background_job``. For the local
provider that table is the queue; for Redis this middleware writes it: each send,
start, retry, success and failure becomes an event in memory, and a background
thread writes the newest event of each job every ``flush_interval`` in one
statement. Sending and running never wait for PostgreSQL; if it is down, events
wait (up to ``max_pending``, then the oldest are dropped with a warning), and
retention (``internal.cleanup-background-jobs``) keeps the table bounded.

With a journal (``brokers/journal.py``; bullmq keeps one in Redis) the events go
there first, ahead of the acks of their jobs, and from there to PostgreSQL, so
neither a killed process nor a database outage loses them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import orjson
import psycopg
from dramatiq.common import q_name

from docjobs import errors
from docjobs.brokers.journal import Batch, Journal, decode, encode
from docjobs.db.store import JobStore
from docjobs.flow.gate import POSTPONED_ATTRIBUTE

logger = logging.getLogger(__name__)

DEFAULT_FLUSH_INTERVAL_SECONDS = 0.2
DEFAULT_MAX_PENDING = 100_000
#: The longest ``flush`` waits for another process moving the journal.
FLUSH_WAIT_SECONDS = 5.0
#: Options Dramatiq keeps on a message that the row already has in its own columns.
# The Redis id stays: the board needs it to take a waiting message out of Redis.
_NOT_OPTIONS = frozenset({"traceback", "eta"})
#: The order of a job's events within one attempt (see ``_progress``).
_PHASES = {"PROCESSING": 0, "PENDING": 1}
_ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
#: Types orjson writes natively that ``json`` hands to ``default`` (see ``json_text``).
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class JobHistory(dramatiq.Middleware):
    """Records jobs in ``background_job`` from any broker, off the hot path.

    Put it first in the middleware list: its after-hooks then run last, once the
    retry policy has decided whether a failure is retried or final.

    Args:
        store: Where the rows go.
        default_max_retries: The provider's retries, for actors without their own.
        flush_interval: Seconds between two writes.
        max_pending: Events kept while PostgreSQL is unreachable.
    """

    def __init__(
        self,
        store: JobStore,
        *,
        default_max_retries: int,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL_SECONDS,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.store = store
        self.default_max_retries = default_max_retries
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self._pending: dict[str, dict[str, Any]] = {}
        # Failed attempts, kept apart: a job's events collapse into its newest one.
        self._failures: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dropped = 0
        self._attempt = threading.local()
        self.journal: Journal | None = None
        #: Held from taking events to their push having run: a consumer that sends acks
        #: holds it too, so no ack overtakes the events of its job.
        self.pushing = threading.Lock()
        self._failed_rounds = 0

    def use_journal(self, journal: Journal) -> None:
        """Send events through ``journal`` rather than straight to PostgreSQL."""
        self.journal = journal

    # Hooks.

    def after_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        now = _now()
        run_at = now + timedelta(milliseconds=delay) if delay else now
        # A retry is a new enqueue of the same message, carrying the failure's traceback.
        traceback = message.options.get("traceback")
        error = _last_line(traceback) if traceback else None
        self._record(broker, message, "PENDING", now, run_at=run_at, error=error, traceback=traceback)

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        now = _now()
        # The retry policy counts this attempt's failure in `retries` before we see it.
        retried = int(_unwrapped(message).options.get("retries", 0))
        self._attempt.retried = retried
        # A failed attempt's row needs its start, whose own event may be written by then.
        self._attempt.running = (_unwrapped(message).message_id, now)
        self._record(broker, message, "PROCESSING", now, started_at=now, attempts=retried + 1)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        now = _now()
        retried = getattr(self._attempt, "retried", int(message.options.get("retries", 0)))
        if exception is None:
            self._record(broker, message, "COMPLETED", now, completed_at=now, attempts=retried + 1)
            return
        if message.failed:  # out of retries, or not to be retried
            error = f"{type(exception).__name__}: {exception}"
            traceback = message.options.get("traceback")
            self._record(
                broker,
                message,
                "FAILED",
                now,
                completed_at=now,
                error=error,
                traceback=traceback,
                retried=retried,
                attempts=retried + 1,
            )
        # Otherwise the retry policy sent it again, and that enqueue was recorded.

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        if getattr(message, POSTPONED_ATTRIBUTE, False):
            return  # waiting for its flow control: sent again, and that send was recorded
        now = _now()
        status = "FAILED" if message.failed else "COMPLETED"
        # Counted as an attempt, as the local provider's claim counts it.
        attempts = int(message.options.get("retries", 0)) + 1
        self._record(broker, message, status, now, completed_at=now, attempts=attempts)

    # The writer.

    def take(self) -> tuple[bytes, Batch] | None:
        """Take the pending events and failures as one journal entry, and the batch it encodes.

        None when there are none. Call with ``pushing`` held, and :meth:`put_back`
        the entry if its push fails.
        """
        with self._lock:
            events, self._pending = self._pending, {}
            failures, self._failures = self._failures, []
        if not events and not failures:
            return None
        batch = list(events.values()), failures
        return encode(*batch), batch

    def put_back(self, entry: bytes) -> None:
        """Keep the events of an entry whose push failed, for the next one."""
        events, failures = decode(entry)
        with self._lock:
            for event in events:
                newer = self._pending.get(event["id"])
                self._pending[event["id"]] = event if newer is None else merge_events(event, newer)
            self._failures[:0] = failures
            self._bound()

    def flush(self) -> None:
        """Write what is pending now; when it returns, every event recorded before is written.

        With a journal, also what other processes journaled, unless one of them is
        moving it at the moment (that one writes it).
        """
        if self.journal is not None:
            with self._writing:
                self._push()
                deadline = time.monotonic() + FLUSH_WAIT_SECONDS
                while self.journal.pending() and time.monotonic() < deadline:
                    if not self.journal.drain():  # another process is moving it: let it finish
                        time.sleep(0.01)
            return
        # One write at a time: a flush also waits for the writer thread's write in progress.
        with self._writing:
            with self._lock:
                events, self._pending = self._pending, {}
                failures, self._failures = self._failures, []
            if not events:
                return
            try:
                self.store.history.record(list(events.values()), failures)
            except psycopg.Error as exc:
                logger.warning("Could not record %d job event(s), keeping them: %s", len(events), exc)
                with self._lock:
                    for job_id, event in events.items():
                        newer = self._pending.get(job_id)
                        self._pending[job_id] = event if newer is None else merge_events(event, newer)
                    self._failures[:0] = failures
                    self._bound()
                raise

    def _round(self) -> None:
        """Journal what is pending, and move the journal if no other process is."""
        assert self.journal is not None
        with self._writing:
            self._push()
            self.journal.drain()

    def _push(self) -> None:
        assert self.journal is not None
        with self.pushing:
            taken = self.take()
            if taken is None:
                return
            entry, batch = taken
            try:
                self.journal.push(entry, batch)
            except errors.BrokerError:
                self.put_back(entry)
                raise

    def close(self) -> None:
        """Write what is pending and stop the writer; safe to call twice."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5)
        try:
            if self.journal is not None:
                self._round()  # what is left in the journal, other processes move
            else:
                self.flush()
        except (psycopg.Error, errors.BrokerError):
            pass

    def _record(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message[Any] | dramatiq.MessageProxy,
        status: str,
        at: datetime,
        *,
        run_at: datetime | None = None,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
        error: str | None = None,
        traceback: str | None = None,
        retried: int | None = None,
        attempts: int | None = None,
    ) -> None:
        """Keep the job's newest event; ``attempts`` defaults to the attempts made (its failures)."""
        message = _unwrapped(message)
        options = message.options
        failures = int(options.get("retries", 0))
        actor = broker.actors.get(message.actor_name)
        # Most messages carry none of the options left out: no filtered copy then.
        kept = (
            options
            if _NOT_OPTIONS.isdisjoint(options)
            else {k: v for k, v in options.items() if k not in _NOT_OPTIONS}
        )
        event = {
            "id": message.message_id,
            "queue": q_name(message.queue_name),
            "actor": message.actor_name,
            "name": getattr(actor, "display_name", None) or message.actor_name,
            "status": status,
            "payload": json_text(message.kwargs or {}),
            "args": json_text(message.args),  # a tuple: a JSON array, as a list
            "options": json_text(kept, default=str),
            "retried": failures if retried is None else retried,
            "attempts": failures if attempts is None else attempts,
            "max_retries": int(
                actor.options.get("max_retries", self.default_max_retries)
                if actor
                else self.default_max_retries
            ),
            "run_at": run_at or at,
            "at": at,
            "submitted_at": at,
            "started_at": started_at,
            "completed_at": completed_at,
            "last_error": error,
            "last_traceback": traceback,
        }
        with self._lock:
            earlier = self._pending.get(message.message_id)
            attempt = failures if attempts is None else attempts
            if error is not None and status in ("PENDING", "FAILED") and attempt > 0:
                self._failures.append(
                    {
                        "job_id": message.message_id,
                        "attempt": attempt,
                        "started_at": self._running_since(message.message_id)
                        or (earlier["started_at"] if earlier is not None else None),
                        "finished_at": at,
                        "outcome": "failed" if status == "FAILED" else "retried",
                        "error": error,
                        "traceback": traceback,
                    }
                )
            if earlier is not None:
                event = merge_events(earlier, event)
            self._pending[message.message_id] = event
            if len(self._pending) > self.max_pending or len(self._failures) > self.max_pending:
                self._bound()
        self._start()

    def _running_since(self, job_id: str) -> datetime | None:
        """When this thread's attempt at ``job_id`` began (``None``: it runs no attempt of that job)."""
        running: tuple[str, datetime] | None = getattr(self._attempt, "running", None)
        return running[1] if running is not None and running[0] == job_id else None

    def _bound(self) -> None:
        del self._failures[: max(len(self._failures) - self.max_pending, 0)]
        while len(self._pending) > self.max_pending:
            self._pending.pop(next(iter(self._pending)))
            self._dropped += 1
            if self._dropped in (1, 1000) or self._dropped % 100_000 == 0:
                logger.warning("Job history is behind: %d event(s) dropped so far.", self._dropped)

    def _start(self) -> None:
        if self._thread is None and not self._stop.is_set():
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="docjobs-history", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                if self.journal is not None:
                    self._round()
                else:
                    self.flush()
                self._failed_rounds = 0
            except (psycopg.Error, errors.BrokerError) as exc:
                # Kept for the next round; said once, then every 50 rounds (10 s) of an outage.
                if self.journal is not None and self._failed_rounds % 50 == 0:
                    logger.warning("Job history waits in the journal: %s", exc)
                self._failed_rounds += 1
            except Exception:  # noqa: BLE001 - the writer must outlive a bad event
                logger.exception("Recording job history failed.")
            self._stop.wait(max(self.flush_interval - (time.monotonic() - started), 0.0))


def _progress(event: dict[str, Any]) -> tuple[bool, int, int, datetime]:
    """Where an event stands in its job's life, the same order as ``job_record_history``.

    Not the clock alone: a fast job can start (in a worker thread) before its sender
    records the send, and must not go back to PENDING. An end comes last; before
    it, attempt k runs, then is retried (PENDING, still k attempts); the clock only
    breaks ties.
    """
    ended = event["status"] in _ENDED
    return ended, event["attempts"], _PHASES.get(event["status"], 2), event["at"]


def merge_events(one: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """One event from two of the same job: the further on, keeping what only the other knew."""
    earlier, later = (one, other) if _progress(one) <= _progress(other) else (other, one)
    merged = dict(later)
    merged["submitted_at"] = min(earlier["submitted_at"], later["submitted_at"])
    merged["attempts"] = max(earlier["attempts"], later["attempts"])
    for column in ("started_at", "last_error", "last_traceback"):
        if merged[column] is None:
            merged[column] = earlier[column]
    return merged


def json_text(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as JSON text for a jsonb column, as ``json.dumps(value, default=default)`` reads.

    orjson is several times faster. What it would write differently goes to the
    standard library: datetimes and dataclasses reach ``default`` as there, and what
    orjson refuses (integers beyond 64 bits, non-string keys, lone surrogates) is
    written, or refused, exactly as before.
    """
    try:
        return orjson.dumps(value, default=default, option=_PASSTHROUGH).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, default=default)


def _unwrapped(message: dramatiq.Message[Any] | dramatiq.MessageProxy) -> dramatiq.Message[Any]:
    """The message a worker's proxy wraps (the message itself otherwise).

    A proxy answers each attribute of its message through ``__getattr__``, after a
    failed lookup that costs ~2 us; the history reads about ten of them per event.
    """
    if isinstance(message, dramatiq.MessageProxy):
        wrapped: dramatiq.Message[Any] = message._message
        return wrapped
    return message


def _last_line(traceback: str) -> str:
    lines = [line for line in traceback.strip().splitlines() if line.strip()]
    return lines[-1] if lines else traceback


def _now() -> datetime:
    return datetime.now(UTC)
