"""Behaviour 1: a sent message runs once; many run once each; options travel with the message."""

from __future__ import annotations

from typing import Any

from dramatiq.middleware import CurrentMessage

from tests.support.providers import Calls, Harness

MANY_MESSAGES = 200


def test_a_sent_message_runs_once(provider: Harness) -> None:
    calls = Calls()

    def add(x: int, y: int) -> None:
        calls.add(x + y)

    actor = provider.actor(add)
    provider.run()
    actor.send(x=1, y=2)
    provider.join()
    assert [3] == calls.values()


def test_many_messages_run_once_each(provider: Harness) -> None:
    calls = Calls()

    def note(index: int) -> None:
        calls.add(index)

    actor = provider.actor(note)
    provider.run(threads=4)
    for index in range(MANY_MESSAGES):
        actor.send(index=index)
    provider.join(timeout_seconds=30)
    assert list(range(MANY_MESSAGES)) == sorted(calls.values())


def test_send_with_options_keeps_the_options(provider: Harness) -> None:
    calls = Calls()

    def look(key: str) -> None:
        message = CurrentMessage.get_current_message()
        assert message is not None
        calls.add((key, dict(message.options)))

    actor = provider.actor(look)
    provider.run()
    sent = actor.send_with_options(kwargs={"key": "opts"}, max_retries=1, max_age=60_000, note="kept")
    provider.join()
    [(key, options)] = calls.values()
    assert "opts" == key
    seen: dict[str, Any] = {name: options.get(name) for name in ("max_retries", "max_age", "note")}
    assert {"max_retries": 1, "max_age": 60_000, "note": "kept"} == seen
    assert sent.options["note"] == "kept"
