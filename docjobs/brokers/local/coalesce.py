"""A background sender that coalesces: what was asked while it was busy goes out once.

The doorbell (NOTIFY) and the self-trigger client both must never slow the
sender's path and must not multiply under load: a caller records what it wants
sent and returns; one thread sends it at once if idle, and otherwise merges every
request that arrives until it is free again, and at least ``min_interval_seconds``
has passed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class CoalescingSender(Generic[T]):
    """Calls ``send(pending)`` from one daemon thread, merging requests in between.

    Args:
        send: Sends one merged batch; its exceptions are logged, never raised.
        merge: Folds a new request into what is pending (``None`` when nothing is).
        min_interval_seconds: The least time between two sends.
        name: The thread's name.
    """

    def __init__(
        self,
        send: Callable[[T], None],
        merge: Callable[[T | None, T], T],
        *,
        min_interval_seconds: float,
        name: str,
    ) -> None:
        self._send = send
        self._merge = merge
        self._min_interval = min_interval_seconds
        self._name = name
        self._pending: T | None = None
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def put(self, request: T) -> None:
        """Ask for ``request`` to be sent; returns at once."""
        with self._lock:
            if self._stopping:
                return
            self._pending = self._merge(self._pending, request)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        if not self._wakeup.is_set():
            self._wakeup.set()

    def close(self, timeout: float = 2.0) -> bool:
        """Send what is pending, then stop the thread; safe to call twice.

        Returns:
            Whether the thread finished within ``timeout``.
        """
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._wakeup.set()
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        while True:
            self._wakeup.wait()
            self._wakeup.clear()
            with self._lock:
                pending, self._pending = self._pending, None
                stopping = self._stopping
            if pending is not None:
                try:
                    self._send(pending)
                except Exception:
                    logger.exception("The %s thread failed to send.", self._name)
            if stopping:
                return
            time.sleep(self._min_interval)
