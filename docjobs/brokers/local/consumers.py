"""One process's bookkeeping of the local provider: its consumers and the jobs it holds.

The broker, its consumers and the maintainer share these, so that consumers and the
maintainer depend on them rather than on the broker (which builds both).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from docjobs.db.claims import Done


@dataclass(frozen=True)
class ClaimSettings:
    """How this process claims and keeps jobs.

    Attributes:
        worker_id: Names this process on the rows it claims and its heartbeat.
        lease_seconds: How long a claim lasts without a heartbeat.
        poll_interval_seconds: The longest a consumer sleeps without a wake-up.
        retention_days: Finished jobs are deleted after this many days.
    """

    worker_id: str
    lease_seconds: float
    poll_interval_seconds: float
    retention_days: float


class Consumer(Protocol):
    """What the registry needs of a consumer (``consumer.LocalConsumer``)."""

    @property
    def queue_name(self) -> str:
        """The queue it consumes."""
        ...

    @property
    def wakeup(self) -> threading.Event:
        """Set to make its thread look for jobs now."""
        ...

    def adopt_acks(self, acks: list[Done]) -> None:
        """Write these acks (of a closed consumer of its queue) with its next claim."""
        ...


class ConsumerRegistry:
    """This process's live consumers by queue, and the acks a closed one left behind."""

    def __init__(self) -> None:
        self._consumers: dict[str, set[Consumer]] = {}
        #: Acks a closed consumer could not write, for the next consumer of their queue.
        self._handed_over: dict[str, list[Done]] = {}
        self._lock = threading.Lock()

    def register(self, consumer: Consumer) -> None:
        """Make a consumer reachable by :meth:`wake`; it takes the acks handed over for its queue."""
        with self._lock:
            self._consumers.setdefault(consumer.queue_name, set()).add(consumer)
            handed = self._handed_over.pop(consumer.queue_name, [])
        if handed:
            consumer.adopt_acks(handed)

    def unregister(self, consumer: Consumer) -> None:
        """Forget a closed consumer."""
        with self._lock:
            self._consumers.get(consumer.queue_name, set()).discard(consumer)

    def hand_over_acks(self, queue_name: str, acks: list[Done]) -> None:
        """Give acks a closed consumer could not write to a live consumer of the queue, or the next one."""
        with self._lock:
            live = next(iter(self._consumers.get(queue_name, ())), None)
            if live is None:
                self._handed_over.setdefault(queue_name, []).extend(acks)
        if live is not None:
            live.adopt_acks(acks)

    def has_consumer(self, queue_name: str) -> bool:
        """Whether this process consumes ``queue_name``."""
        with self._lock:
            return bool(self._consumers.get(queue_name))

    def wake(self, queue_name: str | None = None) -> None:
        """Wake this process's consumers of a queue (of every queue when ``None``)."""
        with self._lock:
            if queue_name is None:
                consumers = [c for group in self._consumers.values() for c in group]
            else:
                consumers = list(self._consumers.get(queue_name, ()))
        for consumer in consumers:
            consumer.wakeup.set()


class HeldJobs:
    """The jobs this process claimed and has not yet acked, nacked or requeued.

    The heartbeat extends their leases.
    """

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def hold(self, job_ids: Iterable[str]) -> None:
        """Record jobs this process claimed."""
        with self._lock:
            self._held.update(job_ids)

    def release(self, job_ids: Iterable[str]) -> None:
        """Forget jobs whose outcome was written (or can no longer be)."""
        with self._lock:
            self._held.difference_update(job_ids)

    def held(self) -> list[str]:
        """The jobs held now."""
        with self._lock:
            return list(self._held)
