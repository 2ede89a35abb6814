"""The local consumer claims larger batches while its jobs finish fast, and no more otherwise (issue 21).

Dramatiq's prefetch (threads x 2) made claims of 8-16 jobs: for short jobs one round
trip per handful of jobs, and worker threads that slept between them. A consumer now
holds what its threads start within ``START_SOON_SECONDS`` at their recent rate, between
the prefetch and ``MAX_PREFETCH_FACTOR`` times it. No database and no sleeping: the claim
is a stub and the consumer's clock is stepped by the test.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any, cast

import pytest

from docjobs.brokers.local import consumer as consumer_module
from docjobs.brokers.local.consumer import LocalConsumer
from docjobs.brokers.local.consumers import ClaimSettings, ConsumerRegistry, HeldJobs
from docjobs.db.claims import Done

PREFETCH = 16
#: The most a consumer may hold: MAX_PREFETCH_FACTOR x PREFETCH.
CEILING = 64


class Clock:
    """A monotonic clock that moves only when the test says."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    made = Clock()
    monkeypatch.setattr(consumer_module, "time", SimpleNamespace(monotonic=made.monotonic))
    return made


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> tuple[LocalConsumer, list[int]]:
    """A consumer whose claims return as many stub rows as asked, and the limits it asked for."""
    made = LocalConsumer(
        cast(Any, None),  # no store: the claim is the stub below
        "default",
        PREFETCH,
        timeout_ms=10,
        consumers=ConsumerRegistry(),
        held=HeldJobs(),
        settings=ClaimSettings(worker_id="w", lease_seconds=30, poll_interval_seconds=1, retention_days=1),
    )
    numbers = itertools.count()
    limits: list[int] = []

    def claim(acked: list[Done], limit: int) -> list[dict[str, Any]]:
        limits.append(limit)
        return [
            {
                "id": f"job-{number}",
                "actor": "test.record",
                "args": [],
                "payload": {},
                "options": {},
                "retried": 0,
                "attempts": 1,
                "message_ts_ms": 0,
            }
            for number in itertools.islice(numbers, limit)
        ]

    monkeypatch.setattr(made, "_complete_and_claim", claim)
    return made, limits


def run_jobs(consumer: LocalConsumer, clock: Clock, count: int, seconds_each: float) -> None:
    """Take and ack ``count`` jobs one after another, each taking ``seconds_each``."""
    for _ in range(count):
        message = next(consumer)
        assert message is not None
        clock.now += seconds_each
        consumer.ack(cast(Any, message))


def test_jobs_that_finish_fast_are_claimed_in_batches_of_up_to_four_prefetches(
    asked: tuple[LocalConsumer, list[int]], clock: Clock
) -> None:
    consumer, limits = asked

    run_jobs(consumer, clock, 5000, seconds_each=0.0001)  # 10,000 jobs/s for 0.5 s

    assert limits[0] == PREFETCH  # nothing known yet: Dramatiq's prefetch
    assert max(limits) == CEILING
    assert limits[-1] >= CEILING - 1  # claims stay large while the jobs stay short


def test_jobs_that_take_a_while_are_claimed_as_before(
    asked: tuple[LocalConsumer, list[int]], clock: Clock
) -> None:
    consumer, limits = asked

    run_jobs(consumer, clock, 200, seconds_each=0.01)  # 100 jobs/s for 2 s: 2 start within 20 ms

    assert max(limits) == PREFETCH


def test_the_limit_falls_back_when_jobs_slow_down(
    asked: tuple[LocalConsumer, list[int]], clock: Clock
) -> None:
    consumer, limits = asked
    run_jobs(consumer, clock, 5000, seconds_each=0.0001)
    assert max(limits) == CEILING

    del limits[:]
    run_jobs(consumer, clock, 200, seconds_each=0.01)

    assert limits[-1] <= PREFETCH
