"""What flow control keeps between workers: slots, windows and each debounced key's latest send.

Two stores implement it: PostgreSQL's (``docjobs.db.flow``, the local provider) and
Redis's (``docjobs.brokers.bullmq.flow``). Every entry expires, so a worker killed
while holding a slot delays the key's next run by at most the slot's lifetime.
"""

from __future__ import annotations

from typing import Literal, Protocol

WindowKind = Literal["throttle", "rate_limit"]


class FlowStore(Protocol):
    """Shared flow-control state, keyed by job id and key value."""

    def take_slot(self, job: str, key: str, holder: str, *, limit: int, ttl_s: float) -> bool:
        """Take one of ``limit`` slots for ``holder`` (a job id) for at most ``ttl_s`` seconds.

        True when taken, or already held by ``holder``; False when all are held by others.
        """
        ...

    def release_slot(self, job: str, key: str, holder: str) -> None:
        """Free ``holder``'s slot (nothing happens if it holds none)."""
        ...

    def take_window(
        self, job: str, kind: WindowKind, key: str, *, limit: int, period_s: float
    ) -> float | None:
        """Count one run in the current window of ``period_s`` seconds, if it has fewer than ``limit``.

        Returns:
            None when counted; otherwise the seconds until the window ends.
        """
        ...

    def note_send(self, job: str, key: str, job_id: str, *, sent_ms: int, ttl_s: float) -> None:
        """Record ``job_id``, about to be sent and built at ``sent_ms``, as the latest send of a
        debounced key for ``ttl_s`` seconds, unless a send of a later millisecond is recorded."""
        ...

    def superseded(self, job: str, key: str, job_id: str, *, sent_ms: int) -> bool:
        """Whether another send of the debounced key, recorded after ``job_id`` (built at
        ``sent_ms``), exists."""
        ...
