"""MessageLimits measures a batch on the JSON its rows carry, and counts what it always counted (issue 21)."""

from __future__ import annotations

from typing import Any

import dramatiq
import orjson
import pytest

from docjobs.brokers.middleware import PayloadRefused, check_message, check_messages


def _message(kwargs: dict[str, Any], job_id: str = "job-1") -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name="default", actor_name="test.record", args=(), kwargs=kwargs, options={}, message_id=job_id
    )


def _encoded(message: dramatiq.Message[Any]) -> tuple[str, str]:
    return orjson.dumps(message.kwargs).decode(), "[]"


@pytest.mark.parametrize("text", ["y" * 500, "é" * 250 + "€" * 10], ids=["ascii", "utf-8"])
def test_a_batch_is_measured_as_one_message_was(text: str) -> None:
    message = _message({"key": text})
    size = len(orjson.dumps({"args": message.args, "kwargs": message.kwargs}))
    check_message(message, size)
    check_messages([message], [_encoded(message)], size)  # exactly at the limit: sent
    with pytest.raises(PayloadRefused) as alone:
        check_message(message, size - 1)
    with pytest.raises(PayloadRefused) as batched:
        check_messages([message], [_encoded(message)], size - 1)
    assert str(alone.value) == str(batched.value)
    assert f"the payload is {size} bytes" in str(batched.value)


def test_a_bad_id_in_a_batch_is_named_with_its_index() -> None:
    messages = [_message({"key": "k"}, job_id=f"id-{n}") for n in range(3)]
    messages[2] = _message({"key": "k"}, job_id="forged\nline")
    with pytest.raises(PayloadRefused, match=r"^test\.record: payload 2: the job id 'forged\\nline' holds"):
        check_messages(messages, [_encoded(m) for m in messages], 1 << 16)


def test_a_payload_orjson_could_not_encode_is_checked_alone() -> None:
    # An integer beyond 64 bits: the row took the standard library's JSON, orjson refuses it.
    messages = [_message({"key": "k"}), _message({"key": 1 << 70})]
    with pytest.raises(
        PayloadRefused, match=r"^test\.record: payload 1: the payload cannot be sent: Integer"
    ):
        check_messages(messages, [_encoded(messages[0]), None], 1 << 16)
