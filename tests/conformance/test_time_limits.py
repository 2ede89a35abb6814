"""Behaviour 5: a job over its time_limit is interrupted (TimeLimitExceeded) and retried."""

from __future__ import annotations

import time
from typing import Any

import pytest
from dramatiq.middleware import CurrentMessage

from docjobs.errors import NotSupportedError
from tests.support.providers import Calls, Harness

TIME_LIMIT_MS = 200
#: Dramatiq's TimeLimit looks once a second; a job left running stops by itself after this.
RUNAWAY_SECONDS = 2.0


def runaway(calls: Calls, key: str) -> None:
    """Runs for RUNAWAY_SECONDS on its first attempt (unless interrupted), at once on later ones."""
    message = CurrentMessage.get_current_message()
    assert message is not None
    attempt = int(message.options.get("retries", 0))
    calls.add(("started", attempt))
    if attempt == 0:
        deadline = time.monotonic() + RUNAWAY_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.01)
    calls.add(("finished", attempt))


def refused_on_inngest(provider: Harness, actor: Any) -> bool:
    """On inngest (Inngest cannot interrupt a call) a send with a time limit is refused, naming it; elsewhere False."""
    if provider.name != "inngest":
        return False
    with pytest.raises(NotSupportedError, match="time_limit is not supported by the inngest provider"):
        actor.send(key="slow")
    return True


def test_a_job_over_its_time_limit_is_interrupted_and_retried(provider: Harness) -> None:
    calls = Calls()
    actor = provider.actor(
        lambda key: runaway(calls, key),
        name="runaway",
        time_limit=TIME_LIMIT_MS,
        max_retries=1,
        min_backoff=10,
    )
    if refused_on_inngest(provider, actor):
        return
    provider.run()
    message = actor.send(key="slow")
    provider.join()
    assert [("started", 0), ("started", 1), ("finished", 1)] == calls.values()
    assert not provider.dead(message)


def test_a_job_over_its_time_limit_without_retries_is_dead(provider: Harness) -> None:
    calls = Calls()
    actor = provider.actor(
        lambda key: runaway(calls, key), name="runaway", time_limit=TIME_LIMIT_MS, max_retries=0
    )
    if refused_on_inngest(provider, actor):
        return
    provider.run()
    message = actor.send(key="slow")
    provider.join()
    assert [("started", 0)] == calls.values()
    assert provider.dead(message)
