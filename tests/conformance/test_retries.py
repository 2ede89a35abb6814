"""Behaviour 3: failures are retried with a growing backoff, up to max_retries, then the message is dead."""

from __future__ import annotations

from tests.support.providers import Calls, Harness

#: Dramatiq's backoff before retry n (from 0) is between half and all of BACKOFF_MS * 2**n.
BACKOFF_MS = 100


def test_a_failing_message_is_retried_with_a_growing_backoff_until_it_succeeds(provider: Harness) -> None:
    calls = Calls()

    def flaky(key: str) -> None:
        calls.add(key)
        if len(calls.values()) < 4:
            raise RuntimeError("not yet")

    actor = provider.actor(flaky, max_retries=3, min_backoff=BACKOFF_MS, max_backoff=10 * BACKOFF_MS)
    provider.run()
    message = actor.send(key="flaky")
    provider.join()
    times = calls.times()
    assert 4 == len(times)
    gaps_ms = [(later - earlier) * 1000 for earlier, later in zip(times, times[1:], strict=False)]
    # Never earlier than the jittered backoff allows, which doubles with each retry.
    assert all(gap >= BACKOFF_MS * 2**n / 2 for n, gap in enumerate(gaps_ms)), gaps_ms
    assert not provider.dead(message)


def test_an_actor_s_max_retries_bounds_its_attempts_then_the_message_is_dead(provider: Harness) -> None:
    calls = Calls()

    def broken(key: str) -> None:
        calls.add(key)
        raise RuntimeError("always")

    actor = provider.actor(broken, max_retries=2, min_backoff=10, max_backoff=50)
    provider.run()
    message = actor.send(key="broken")
    provider.join()
    assert ["broken"] * 3 == calls.values()
    assert provider.dead(message)


def test_a_message_s_max_retries_overrides_the_actor_s(provider: Harness) -> None:
    calls = Calls()

    def broken(key: str) -> None:
        calls.add(key)
        raise RuntimeError("always")

    actor = provider.actor(broken, max_retries=5, min_backoff=10, max_backoff=50)
    provider.run()
    message = actor.send_with_options(kwargs={"key": "once-more"}, max_retries=1)
    provider.join()
    assert ["once-more"] * 2 == calls.values()
    assert provider.dead(message)
