"""Behaviour 2: a delayed message never starts early."""

from __future__ import annotations

import time

import pytest

from docjobs import jobs
from tests.support.providers import Calls, Harness

DELAY_MS = 300


def test_a_delayed_message_never_starts_early(provider: Harness) -> None:
    calls = Calls()
    actor = provider.actor(lambda key: calls.add(key), name="later")
    provider.run()
    sent = time.monotonic()
    actor.send_with_options(kwargs={"key": "later"}, delay=DELAY_MS)
    provider.join()
    assert ["later"] == calls.values()
    assert calls.times()[0] - sent >= DELAY_MS / 1000


@pytest.mark.docjobs_only
def test_a_job_triggered_with_a_delay_never_starts_early(provider: Harness) -> None:
    calls = Calls()

    def later(key: str) -> None:
        calls.add(key)

    provider.actor(later)
    provider.run()
    sent = time.monotonic()
    jobs.trigger("conformance.later", {"key": "triggered"}, delay=DELAY_MS / 1000)
    provider.join()
    assert ["triggered"] == calls.values()
    assert calls.times()[0] - sent >= DELAY_MS / 1000
