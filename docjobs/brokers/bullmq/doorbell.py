"""A doorbell on Redis pub/sub: senders ring a queue, idle consumers wake at once.

Stock Dramatiq consumers poll an empty queue with a growing backoff (up to their
whole idle timeout), so a job sent to an idle worker waits hundreds of milliseconds.
Here a send publishes the queue's name in its enqueue script (``enqueue.lua``), one
listener thread per process turns it into an event, and an idle consumer waits on
that event. The doorbell only shortens waits: if pub/sub is down, consumers still
poll every ``idle_poll`` and lose nothing.
"""

from __future__ import annotations

import logging
import threading

import dramatiq
import redis

logger = logging.getLogger(__name__)

RECONNECT_DELAY_SECONDS = 0.5
#: The longest doorbell wait once a worker of this process is shutting down.
SHUTDOWN_WAIT_SECONDS = 0.02


class Doorbell:
    """Per-queue events set by ``PUBLISH <namespace>:__doorbell__ <queue>``.

    Args:
        client: The Redis client (the listener takes its own connection).
        namespace: The key prefix; brokers with other prefixes never ring this one.
    """

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.client = client
        self.channel = f"{namespace}:__doorbell__"
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shutting_down = False

    def arm(self, queue: str) -> None:
        """Forget earlier rings of ``queue``: call before looking at the queue."""
        self._event(queue).clear()

    def wake(self, queue: str) -> None:
        """Wake this process's consumer of ``queue`` without Redis (it has acks to send).

        Rung already, it is left alone: a set event has no one waiting on it, and every
        ack of a busy worker rings (issue 21: ``Event.set`` takes the lock the consumer
        waits under: ~0.8 us an ack alone, more when contended).
        """
        event = self._event(queue)
        if not event.is_set():
            event.set()

    def wait(self, queue: str, timeout: float) -> bool:
        """Wait until ``queue`` is rung (since :meth:`arm`) or ``timeout`` passes."""
        self._start()
        if self._shutting_down:
            timeout = min(timeout, SHUTDOWN_WAIT_SECONDS)
        return self._event(queue).wait(timeout)

    def shutting_down(self, value: bool) -> None:
        """While a worker stops, waits are short so its consumer threads see it at once."""
        self._shutting_down = value
        if value:
            for event in list(self._events.values()):
                event.set()

    def close(self) -> None:
        """Stop listening; safe to call twice."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(2)

    def _event(self, queue: str) -> threading.Event:
        event = self._events.get(queue)
        if event is None:
            with self._lock:
                event = self._events.setdefault(queue, threading.Event())
        return event

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(
                        target=self._listen, name="docjobs-redis-doorbell", daemon=True
                    )
                    self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                # A ring may have been missed while (re)subscribing: wake everyone once.
                self._ring_all()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None and message["type"] == "message":
                        self._event(message["data"].decode()).set()
            except redis.RedisError as exc:
                logger.debug("Doorbell listener lost Redis (%s); consumers poll meanwhile.", exc)
                self._stop.wait(RECONNECT_DELAY_SECONDS)
            finally:
                try:
                    pubsub.close()
                except redis.RedisError:
                    pass

    def _ring_all(self) -> None:
        with self._lock:
            events = list(self._events.values())
        for event in events:
            event.set()


class DoorbellShutdown(dramatiq.Middleware):
    """Shortens doorbell waits while a worker shuts down (a stop would wait a whole poll)."""

    def __init__(self, doorbell: Doorbell) -> None:
        self.doorbell = doorbell

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.doorbell.shutting_down(False)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.doorbell.shutting_down(True)
