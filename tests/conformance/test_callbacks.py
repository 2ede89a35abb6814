"""Behaviour 8: on_success and on_failure callbacks get the message and its result or exception."""

from __future__ import annotations

from typing import Any

from tests.support.providers import Calls, Harness


def test_on_success_gets_the_message_and_its_result(provider: Harness) -> None:
    calls = Calls()

    def succeed(x: int) -> int:
        return x + 1

    def succeeded(message_data: dict[str, Any], result: Any) -> None:
        calls.add((message_data["message_id"], result))

    callback = provider.actor(succeeded)
    actor = provider.actor(succeed)
    provider.run()
    message = actor.send_with_options(kwargs={"x": 41}, on_success=callback)
    provider.join()
    assert [(message.message_id, 42)] == calls.values()


def test_on_failure_gets_the_message_and_its_exception(provider: Harness) -> None:
    calls = Calls()

    def fail(x: int) -> None:
        raise ValueError(f"no {x}")

    def failed(message_data: dict[str, Any], exception_data: dict[str, Any]) -> None:
        calls.add((message_data["message_id"], exception_data["type"], exception_data["message"]))

    callback = provider.actor(failed)
    actor = provider.actor(fail, max_retries=0)
    provider.run()
    message = actor.send_with_options(kwargs={"x": 7}, on_failure=callback)
    provider.join()
    assert [(message.message_id, "ValueError", "no 7")] == calls.values()
