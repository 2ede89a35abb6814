"""Behaviour 10: each actor's queue is declared, and a job on a queue of its own runs and joins there."""

from __future__ import annotations

from tests.support.providers import Calls, Harness

QUEUE = "conformance-other"


def test_an_actor_s_queue_is_declared_and_its_jobs_run_there(provider: Harness) -> None:
    calls = Calls()
    actor = provider.actor(lambda key: calls.add(key), name="elsewhere", queue_name=QUEUE)
    assert QUEUE in provider.broker.get_declared_queues()
    provider.run()
    actor.send(key="there")
    provider.join(QUEUE)
    assert ["there"] == calls.values()
