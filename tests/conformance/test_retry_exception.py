"""Behaviour 4: `raise dramatiq.Retry(delay=...)` runs the message again after that delay."""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import CurrentMessage

from tests.support.providers import Calls, Harness

RETRY_DELAY_MS = 400


def test_retry_reschedules_the_message_after_its_delay(provider: Harness) -> None:
    calls = Calls()

    def later(key: str) -> None:
        message = CurrentMessage.get_current_message()
        assert message is not None
        attempt = int(message.options.get("retries", 0))
        calls.add(attempt)
        if attempt == 0:
            raise dramatiq.Retry(delay=RETRY_DELAY_MS)

    actor = provider.actor(later, max_retries=3, min_backoff=10, max_backoff=20)
    provider.run()
    message = actor.send(key="retry")
    provider.join()
    assert [0, 1] == calls.values()
    first, second = calls.times()
    assert second - first >= RETRY_DELAY_MS / 1000
    assert not provider.dead(message)
