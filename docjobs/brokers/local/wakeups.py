"""Doorbells between processes: a debounced NOTIFY sender and a LISTEN thread.

NOTIFY is a doorbell, not a pipe: its payload is just the queue name, and the
sender rings at most once per ``min_interval_seconds`` per process. A NOTIFY per
enqueue would take Postgres' global notify lock at every commit; debounced, a burst
costs a few notifications while the first one of an idle period still goes out at
once (so idle latency stays low).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable

import psycopg

from docjobs.backoff import retry_delays
from docjobs.brokers.local.coalesce import CoalescingSender
from docjobs.db.store import JobStore
from docjobs.logging import first_line

logger = logging.getLogger(__name__)

DEFAULT_DOORBELL_INTERVAL_SECONDS = 0.005
LISTEN_TIMEOUT_SECONDS = 0.5


class Doorbell:
    """Sends ``NOTIFY docjobs_jobs, '<queue>'`` from a background thread, coalesced.

    Args:
        store: Where to send it.
        min_interval_seconds: The least time between two rounds of notifications.
    """

    def __init__(
        self, store: JobStore, *, min_interval_seconds: float = DEFAULT_DOORBELL_INTERVAL_SECONDS
    ) -> None:
        self._store = store
        self._sender: CoalescingSender[frozenset[str]] = CoalescingSender(
            self._notify,
            lambda pending, queues: queues if pending is None else pending | queues,
            min_interval_seconds=min_interval_seconds,
            name="docjobs-doorbell",
        )

    def ring(self, queue: str) -> None:
        """Ask for a notification of ``queue``; returns at once."""
        self._sender.put(frozenset((queue,)))

    def close(self, timeout: float = 2.0) -> None:
        """Send what is pending, then stop; safe to call twice."""
        self._sender.close(timeout)

    def _notify(self, queues: frozenset[str]) -> None:
        for queue in queues:
            try:
                self._store.queues.notify(queue)
            except psycopg.Error as exc:
                logger.debug("NOTIFY for queue %r failed: %s", queue, exc)


class Listener:
    """Holds one LISTEN connection per process and calls ``on_notify(queue)`` per doorbell.

    The connection is the one the process's budget keeps outside the pool; it goes
    to ``NEXT_PRIVATE_DIRECT_DATABASE_URL`` when set (a transaction pooler would hand
    the session's LISTEN to a server connection other clients then use).

    After a reconnect it calls ``on_notify(None)``: notifications sent while it was
    away are lost, so every consumer should look again. While the database is down it
    tries again after start-up's waits (0.5 s doubling to 30 s, :mod:`docjobs.backoff`),
    one log line per attempt; consumers poll meanwhile, so no job waits on it.
    """

    def __init__(self, store: JobStore, on_notify: Callable[[str | None], None]) -> None:
        self._store = store
        self._on_notify = on_notify
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start listening; safe to call twice."""
        with self._lock:
            if self._thread is None:
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="docjobs-listener", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop listening; safe to call twice or before :meth:`start`."""
        with self._lock:
            thread, self._thread = self._thread, None
        self._stopping.set()
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        reconnecting = False
        delays = retry_delays()
        while not self._stopping.is_set():
            try:
                with self._store.database.connect_listener() as conn:
                    self._store.queues.listen(conn)
                    if reconnecting:
                        self._on_notify(None)
                    reconnecting = False
                    delays = retry_delays()  # listening again: a later failure starts the waits anew
                    while not self._stopping.is_set():
                        for notification in conn.notifies(timeout=LISTEN_TIMEOUT_SECONDS):
                            self._on_notify(notification.payload)
            except psycopg.Error as exc:
                delay = next(delays)
                logger.warning(
                    "The LISTEN connection failed (%s); reconnecting in %s s.",
                    first_line(exc),  # libpq's reason without its hints
                    f"{delay:g}",
                    extra={"action": "listener_reconnect"},
                )
                reconnecting = True
                self._stopping.wait(delay)


class Alarm:
    """Wakes a queue's local consumers when a delayed job of this process falls due.

    Retries and delays are rows with a future ``run_at``; nobody rings a doorbell
    when that time comes. The process that scheduled them (for retries, the one
    consuming them) sets an alarm instead, so a 50 ms backoff takes about 50 ms
    rather than a poll interval.
    """

    #: Wake this much after the due time: ``run_at`` was set by the server a moment ago.
    SLACK_SECONDS = 0.005

    def __init__(self, ring: Callable[[str], None]) -> None:
        self._ring = ring
        self._due: list[tuple[float, str]] = []
        self._condition = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def set(self, queue: str, delay_seconds: float) -> None:
        """Ring ``queue`` after ``delay_seconds``; returns at once."""
        with self._condition:
            if self._stopping:
                return
            heapq.heappush(self._due, (time.monotonic() + delay_seconds + self.SLACK_SECONDS, queue))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="docjobs-alarm", daemon=True)
                self._thread.start()
            self._condition.notify()

    def close(self, timeout: float = 2.0) -> None:
        """Stop ringing; safe to call twice."""
        with self._condition:
            self._stopping = True
            self._condition.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopping and (not self._due or self._due[0][0] > time.monotonic()):
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._condition.wait(wait)
                if self._stopping:
                    return
                _, queue = heapq.heappop(self._due)
            self._ring(queue)
