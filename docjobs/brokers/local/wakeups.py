"""Doorbells between processes: a debounced NOTIFY sender and a LISTEN thread.

NOTIFY is a doorbell, not a pipe: its payload is just the queue name, and the
sender rings at most once per ``min_interval_seconds`` a queue per process. A NOTIFY
per enqueue would take Postgres' global notify lock at every commit; debounced, a
burst costs a few notifications while the first one of an idle period still goes out
at once, inside the send's own INSERT (so idle latency stays low).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable

import psycopg

from docjobs.backoff import retry_delays
from docjobs.db.store import JobStore
from docjobs.logging import first_line

logger = logging.getLogger(__name__)

DEFAULT_DOORBELL_INTERVAL_SECONDS = 0.005
LISTEN_TIMEOUT_SECONDS = 0.5


class Doorbell:
    """Rings ``NOTIFY docjobs_jobs, '<queue>'`` at most once per ``min_interval_seconds`` a queue.

    A standalone send whose queue is due a ring carries the NOTIFY in its own INSERT
    (:meth:`take_inline`, then :meth:`rang_inline`): delivered at its commit, no second
    transaction, no thread. The other sends ask for a trailing ring (:meth:`ring`), which
    a background thread sends two ``min_interval_seconds`` after the first such request
    unless an inline ring covered it meanwhile (at once if the queue has not rung lately:
    bulk sends, retries and rescues ring that way). Under a burst the sends ring for
    themselves; the thread (~100-200 us of CPU per NOTIFY) only closes a burst (issue 21).
    Every committed job so gets a NOTIFY within two ``min_interval_seconds`` (10 ms) of
    its send.

    Args:
        store: Where the thread's NOTIFY goes.
        min_interval_seconds: The least time between two rings of a queue by this process.
        clock: Monotonic seconds (a test's clock).
    """

    def __init__(
        self,
        store: JobStore,
        *,
        min_interval_seconds: float = DEFAULT_DOORBELL_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._interval = min_interval_seconds
        self._clock = clock
        #: When each queue last rang (or a send took its ring), by this process.
        self._rung: dict[str, float] = {}
        #: The first request for a trailing ring no ring has covered yet, by queue: when it
        #: was asked, and when the thread sends it.
        self._requested: dict[str, tuple[float, float]] = {}
        self._condition = threading.Condition()
        #: When the waiting thread wakes by itself (``None``: only when notified, or busy).
        self._wake_at: float | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    def take_inline(self, queue: str) -> float | None:
        """Take ``queue``'s ring for a send about to run, if one is due.

        Returns:
            The time taken (pass it to :meth:`rang_inline` once the send committed with its
            NOTIFY), or ``None``: no ring is due; call :meth:`ring` once the send committed.
        """
        now = self._clock()
        with self._condition:
            if self._stopping or now - self._rung.get(queue, -self._interval) < self._interval:
                return None
            self._rung[queue] = now
        return now

    def rang_inline(self, queue: str, taken_at: float) -> None:
        """A send taken at ``taken_at`` committed with its NOTIFY: the jobs whose trailing
        ring was asked before it started are announced (they committed before it)."""
        with self._condition:
            requested = self._requested.get(queue)
            if requested is not None and requested[0] < taken_at:
                del self._requested[queue]

    def ring(self, queue: str) -> None:
        """Ask for a notification of ``queue``; returns at once.

        It goes out at once if ``queue`` rang more than ``min_interval_seconds`` ago, else
        twice ``min_interval_seconds`` from now, so that the next send can carry it instead.
        """
        now = self._clock()
        with self._condition:
            if self._stopping or queue in self._requested:
                return
            recent = now - self._rung.get(queue, -self._interval) < self._interval
            # Two intervals: a send due the ring comes within one (plus a send's time), and
            # taking it is far cheaper than the thread's ring.
            due_at = now + 2 * self._interval if recent else now
            self._requested[queue] = (now, due_at)
            if self._thread is None:
                self._thread = self._start_thread()
            elif self._wake_at is None or due_at < self._wake_at:
                self._condition.notify()  # else the thread wakes in time by itself

    def _start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="docjobs-doorbell", daemon=True)
        thread.start()
        return thread

    def due(self) -> tuple[list[str], float | None]:
        """The queues whose trailing ring is due now (marked rung), and the seconds until
        the next one is (``None``: none asked for)."""
        now = self._clock()
        with self._condition:
            ready = [queue for queue, (_, due_at) in self._requested.items() if due_at <= now]
            for queue in ready:
                del self._requested[queue]
                self._rung[queue] = now
            waits = [due_at - now for _, due_at in self._requested.values()]
        return ready, min(waits) if waits else None

    def close(self, timeout: float = 2.0) -> None:
        """Send what is pending, then stop; safe to call twice."""
        with self._condition:
            self._stopping = True
            thread = self._thread
            self._condition.notify()
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                queues = self._wait_for_due()
                self._wake_at = None  # busy: a new request wakes it (harmless if it is not waiting)
                stopping = self._stopping
            self._notify(queues)
            if stopping:
                return

    def _wait_for_due(self) -> list[str]:
        """Wait (the lock held) until a trailing ring is due, or until closed; the queues to ring.

        With nothing asked for, the thread lingers two intervals before it sleeps for good:
        under a burst of single sends it then wakes about once per two intervals, not twice
        per interval (a request and its deadline).
        """
        lingered = False
        while not self._stopping:
            queues, wait = self.due()
            if queues:
                return queues
            if wait is not None:
                lingered = False
            elif not lingered:
                wait, lingered = 2 * self._interval, True
            self._wake_at = None if wait is None else self._clock() + wait
            self._condition.wait(wait)
        queues = list(self._requested)
        self._requested.clear()
        return queues

    def _notify(self, queues: list[str]) -> None:
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
