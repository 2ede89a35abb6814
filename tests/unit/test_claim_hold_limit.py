"""The local consumer claims larger batches while its jobs finish fast, and no more otherwise (issue 21).

Dramatiq's prefetch (threads x 2) made claims of 8-16 jobs: for short jobs one round
trip per handful of jobs, and worker threads that slept between them. A consumer now
holds what its threads start within ``START_SOON_SECONDS`` at their recent rate, between
the prefetch and ``MAX_PREFETCH_FACTOR`` times it. No database and no sleeping: the claim
is a stub and the consumer's clock is stepped by the test.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from docjobs.brokers.local import consumer as consumer_module
from docjobs.brokers.local.consumer import LocalConsumer
from tests.support.fakes import ManualClock, stub_consumer

PREFETCH = 16
#: The most a consumer may hold: MAX_PREFETCH_FACTOR x PREFETCH.
CEILING = 64


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    made = ManualClock()
    monkeypatch.setattr(consumer_module, "time", SimpleNamespace(monotonic=made.monotonic))
    return made


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> tuple[LocalConsumer, list[int]]:
    """A consumer whose claims return as many stub rows as asked, and the limits it asked for."""
    return stub_consumer(monkeypatch, PREFETCH)


def run_jobs(consumer: LocalConsumer, clock: ManualClock, count: int, seconds_each: float) -> None:
    """Take and ack ``count`` jobs one after another, each taking ``seconds_each``."""
    for _ in range(count):
        message = next(consumer)
        assert message is not None
        clock.now += seconds_each
        consumer.ack(cast(Any, message))


def test_jobs_that_finish_fast_are_claimed_in_batches_of_up_to_four_prefetches(
    asked: tuple[LocalConsumer, list[int]], clock: ManualClock
) -> None:
    consumer, limits = asked

    run_jobs(consumer, clock, 5000, seconds_each=0.0001)  # 10,000 jobs/s for 0.5 s

    assert limits[0] == PREFETCH  # nothing known yet: Dramatiq's prefetch
    assert max(limits) == CEILING
    assert limits[-1] >= CEILING - 1  # claims stay large while the jobs stay short


def test_jobs_that_take_a_while_are_claimed_as_before(
    asked: tuple[LocalConsumer, list[int]], clock: ManualClock
) -> None:
    consumer, limits = asked

    run_jobs(consumer, clock, 200, seconds_each=0.01)  # 100 jobs/s for 2 s: 2 start within 20 ms

    assert max(limits) == PREFETCH


def test_the_limit_falls_back_when_jobs_slow_down(
    asked: tuple[LocalConsumer, list[int]], clock: ManualClock
) -> None:
    consumer, limits = asked
    run_jobs(consumer, clock, 5000, seconds_each=0.0001)
    assert max(limits) == CEILING

    del limits[:]
    run_jobs(consumer, clock, 200, seconds_each=0.01)

    assert limits[-1] <= PREFETCH
