"""The keeper: one thread per worker process that heartbeats and runs maintenance.

An idle consumer waiting on the doorbell sends no command, and Dramatiq's heartbeat
is a side effect of commands: without the keeper a quiet worker would look dead.
Each round also runs Dramatiq's maintenance on every queue, which pushes the jobs
held by workers silent for longer than the heartbeat timeout back to their queues,
and sends the outbox rows whose after-commit send never happened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
import redis

logger = logging.getLogger(__name__)

#: Rounds per heartbeat timeout, so a live worker beats several times within it.
ROUNDS_PER_TIMEOUT = 4
#: The longest time between two rounds.
MAX_INTERVAL_SECONDS = 5.0


class Keeper:
    """Calls ``maintain()`` and ``relay()`` every ``min(timeout / 4, 5 s)`` from a daemon thread.

    Args:
        maintain: Heartbeats and gives back the jobs of dead workers (the broker's).
        relay: Sends the outbox rows an after-commit send missed (the broker's).
        heartbeat_timeout_seconds: The broker's heartbeat timeout.
    """

    def __init__(
        self, *, maintain: Callable[[], object], relay: Callable[[], object], heartbeat_timeout_seconds: float
    ) -> None:
        self.maintain = maintain
        self.relay = relay
        self.interval = min(heartbeat_timeout_seconds / ROUNDS_PER_TIMEOUT, MAX_INTERVAL_SECONDS)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread unless it runs; safe to call from every consumer."""
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="docjobs-redis-keeper", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it; safe to call twice."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.maintain()
            except redis.RedisError as exc:
                logger.warning("Redis maintenance failed, retrying in %.1f s: %s", self.interval, exc)
            try:
                self.relay()
            except (redis.RedisError, psycopg.Error) as exc:
                logger.warning("Sending the job outbox failed, retrying in %.1f s: %s", self.interval, exc)
            self._stop.wait(self.interval)
