"""Behaviour 15 (docjobs): run_task memoises a job's steps across its retries."""

from __future__ import annotations

import pytest
from dramatiq.middleware import CurrentMessage

import docjobs
from docjobs.tasks import TASK_MAX_RETRIES
from tests.support.providers import Calls, Harness

pytestmark = pytest.mark.docjobs_only


def test_a_task_finished_before_a_failure_is_not_run_again(provider: Harness) -> None:
    calls = Calls()

    def steps(key: str) -> None:
        first = docjobs.run_task("first", lambda: calls.add("first") or {"value": 41})
        message = CurrentMessage.get_current_message()
        assert message is not None
        if not message.options.get("retries"):
            raise RuntimeError("fails after the first task")
        docjobs.run_task("second", lambda: calls.add(f"second:{first['value'] + 1}"))

    actor = provider.actor(steps, max_retries=3, min_backoff=10, max_backoff=50)
    provider.run()
    message = actor.send(key="steps")
    provider.join()
    assert ["first", "second:42"] == calls.values()
    assert not provider.dead(message)


def test_a_task_that_keeps_failing_fails_the_job_after_its_retries(provider: Harness) -> None:
    calls = Calls()

    def doomed(key: str) -> None:
        def step() -> None:
            calls.add("task")
            raise RuntimeError("the task fails")

        docjobs.run_task("always-fails", step)

    actor = provider.actor(doomed, max_retries=TASK_MAX_RETRIES + 1, min_backoff=10, max_backoff=50)
    provider.run()
    message = actor.send(key="doomed")
    provider.join()
    assert ["task"] * TASK_MAX_RETRIES == calls.values()
    assert provider.dead(message)
