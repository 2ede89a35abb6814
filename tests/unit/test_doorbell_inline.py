"""The doorbell rides on the sends (issue 21: local single enqueue).

A standalone send whose queue is due a ring carries the NOTIFY in its own INSERT; the
doorbell's thread (~100-200 us of CPU per NOTIFY, in its own transaction) only sends
the rings no send carried, two ``min_interval_seconds`` after they were asked for. These
tests drive the doorbell's decisions with a test clock and no thread.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from docjobs.brokers.local.wakeups import Doorbell
from docjobs.db.store import JobStore
from tests.support.fakes import ManualClock

#: Exactly representable, as are the steps below: the comparisons are exact.
INTERVAL_SECONDS = 1 / 128


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def doorbell(clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> Doorbell:
    bell = Doorbell(cast(JobStore, Any), min_interval_seconds=INTERVAL_SECONDS, clock=clock)
    monkeypatch.setattr(bell, "_start_thread", lambda: None)  # the test calls due() itself
    return bell


def test_a_send_takes_the_ring_once_per_interval(doorbell: Doorbell, clock: ManualClock) -> None:
    assert doorbell.take_inline("default") == clock.now
    clock.now += INTERVAL_SECONDS / 2
    assert doorbell.take_inline("default") is None
    assert doorbell.take_inline("emails") is not None  # each queue has its own interval
    clock.now += INTERVAL_SECONDS / 2
    assert doorbell.take_inline("default") == clock.now


def test_a_ring_asked_for_within_the_interval_waits_for_a_send_to_carry_it(
    doorbell: Doorbell, clock: ManualClock
) -> None:
    taken = doorbell.take_inline("default")
    assert taken is not None
    doorbell.rang_inline("default", taken)
    clock.now += INTERVAL_SECONDS / 8
    doorbell.ring("default")  # a send that found no ring due
    assert ([], pytest.approx(2 * INTERVAL_SECONDS)) == doorbell.due()
    clock.now += INTERVAL_SECONDS  # the next send is due the ring and carries it
    taken = doorbell.take_inline("default")
    assert taken is not None
    doorbell.rang_inline("default", taken)
    clock.now += INTERVAL_SECONDS / 8
    assert ([], None) == doorbell.due()  # nothing left for the thread


def test_the_thread_sends_a_ring_no_send_carried_within_the_interval(
    doorbell: Doorbell, clock: ManualClock
) -> None:
    doorbell.take_inline("default")
    clock.now += INTERVAL_SECONDS / 8
    doorbell.ring("default")
    clock.now += INTERVAL_SECONDS
    assert [] == doorbell.due()[0]  # a send may still carry it
    clock.now += INTERVAL_SECONDS
    assert (["default"], None) == doorbell.due()
    clock.now += INTERVAL_SECONDS / 8
    assert doorbell.take_inline("default") is None  # the thread's ring counts for the interval


def test_a_ring_asked_for_while_an_inline_ring_ran_is_not_dropped(
    doorbell: Doorbell, clock: ManualClock
) -> None:
    # Another thread's job committed after this send's INSERT began: its NOTIFY may have
    # gone out before that job was visible, so the trailing ring must stay.
    taken = doorbell.take_inline("default")
    assert taken is not None
    clock.now += INTERVAL_SECONDS / 64
    doorbell.ring("default")
    doorbell.rang_inline("default", taken)
    clock.now += 2 * INTERVAL_SECONDS
    assert (["default"], None) == doorbell.due()


def test_a_ring_after_a_quiet_spell_is_due_at_once(doorbell: Doorbell, clock: ManualClock) -> None:
    # Bulk sends, retries and rescues ring through the thread: no wait when nothing rang lately.
    doorbell.ring("default")
    assert (["default"], None) == doorbell.due()
    clock.now += INTERVAL_SECONDS * 3
    doorbell.ring("default")
    assert (["default"], None) == doorbell.due()
