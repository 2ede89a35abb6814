"""Behaviour 7: groups and pipelines, with Dramatiq's Results middleware."""

from __future__ import annotations

import dramatiq

from tests.support.providers import Harness

RESULT_TIMEOUT_MS = 3_000


def test_a_group_runs_every_message_and_gives_their_results(provider: Harness) -> None:
    provider.with_results()

    def double(x: int) -> int:
        return 2 * x

    actor = provider.actor(double, store_results=True)
    provider.run()
    group = dramatiq.group([actor.message(x=x) for x in range(3)], broker=provider.broker).run()
    assert [0, 2, 4] == list(group.get_results(block=True, timeout=RESULT_TIMEOUT_MS))


def test_a_pipeline_passes_each_result_to_the_next_message(provider: Harness) -> None:
    provider.with_results()

    def add(x: int, y: int = 0) -> int:
        return x + y

    actor = provider.actor(add, store_results=True)
    provider.run()
    pipe = dramatiq.pipeline(
        [actor.message(x=1, y=2), actor.message(y=10), actor.message(y=100)], broker=provider.broker
    )
    pipe.run()
    assert 113 == pipe.get_result(block=True, timeout=RESULT_TIMEOUT_MS)


def test_a_pipeline_of_messages_that_ignore_results_runs_in_order(provider: Harness) -> None:
    provider.with_results()
    seen: list[str] = []

    def step(key: str) -> str:
        seen.append(key)
        return key

    actor = provider.actor(step, store_results=True)
    provider.run()
    messages = [actor.message_with_options(kwargs={"key": key}, pipe_ignore=True) for key in ("a", "b", "c")]
    pipe = dramatiq.pipeline(messages, broker=provider.broker)
    pipe.run()
    assert "c" == pipe.get_result(block=True, timeout=RESULT_TIMEOUT_MS)
    assert ["a", "b", "c"] == seen
