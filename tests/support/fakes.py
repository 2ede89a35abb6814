"""Stand-ins for unit tests of the local consumer and the doorbell: a clock the test
moves, and a consumer whose claims are a stub (no database)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, cast

import pytest

from docjobs.brokers.local.consumer import LocalConsumer
from docjobs.brokers.local.consumers import ClaimSettings, ConsumerRegistry, HeldJobs
from docjobs.db.claims import Done


class ManualClock:
    """Monotonic seconds that move only when the test says (callable, or ``.monotonic()``)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def claimed_row(number: int) -> dict[str, Any]:
    """A claimed row as ``ClaimStore.complete_and_claim`` returns it."""
    return {
        "id": f"job-{number}",
        "actor": "test.record",
        "args": [],
        "payload": {"key": str(number)},
        "options": {},
        "retried": 0,
        "attempts": 1,
        "message_ts_ms": 0,
    }


def stub_consumer(
    monkeypatch: pytest.MonkeyPatch,
    prefetch: int,
    *,
    rows: Iterator[int] | None = None,
    cap: int | None = None,
) -> tuple[LocalConsumer, list[int]]:
    """A consumer of ``default`` whose claims hand out as many stub rows as they ask for
    (numbered from ``rows``, all of them by default), and the limits its claims asked for."""
    made = LocalConsumer(
        cast(Any, None),  # no store: the claim is the stub below
        "default",
        prefetch,
        timeout_ms=10,
        consumers=ConsumerRegistry(),
        held=HeldJobs(),
        settings=ClaimSettings(worker_id="w", lease_seconds=30, poll_interval_seconds=1, retention_days=1),
        **({} if cap is None else {"cap": cap}),
    )
    numbers = itertools.count() if rows is None else rows
    limits: list[int] = []

    def claim(acked: list[Done], limit: int) -> list[dict[str, Any]]:
        limits.append(limit)
        return [claimed_row(number) for number in itertools.islice(numbers, limit)]

    monkeypatch.setattr(made, "_complete_and_claim", claim)
    return made, limits
