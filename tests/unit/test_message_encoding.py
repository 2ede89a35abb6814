"""The bullmq provider encodes a message with orjson only where that reads back as Dramatiq's (issue 21)."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from dramatiq.message import Message

from docjobs import strictjson
from docjobs.brokers.bullmq.broker import encoded


class Colour(enum.IntEnum):
    RED = 1


def _message(kwargs: dict[str, Any], **options: Any) -> Message[Any]:
    return Message(
        queue_name="default",
        actor_name="test.record",
        args=(1, "two"),
        kwargs=kwargs,
        options=options,
        message_id="0190a0a0-0000-7000-8000-000000000000",
        message_timestamp=1_700_000_000_000,
    )


def test_a_plain_message_reads_back_as_dramatiqs_encoding_does() -> None:
    message = _message(
        {"key": "héllo \x01 \U0001f600", "n": -(2**63), "x": 1e-300, "nested": [{"a": None, "b": [True]}]},
        redis_message_id="abc",
        eta=1_700_000_000_500,
        pipe_target={"args": (3,), "kwargs": {}},
    )
    assert strictjson.plain(message.asdict())
    assert json.loads(message.encode()) == json.loads(encoded(message))
    assert Message.decode(message.encode()) == Message.decode(encoded(message))


@pytest.mark.parametrize(
    "options",
    [
        {"big": 2**70},  # past orjson's 64 bits
        {"colour": Colour.RED},  # a subclass: json writes it its own way
        {"ratio": float("nan")},  # json writes NaN; orjson would write null
        {"keys": {1: "one"}},  # json turns the key into a string; orjson refuses it
    ],
    ids=["65-bit", "enum", "nan", "int-key"],
)
def test_anything_else_is_encoded_by_dramatiq_byte_for_byte(options: dict[str, Any]) -> None:
    message = _message({"key": "k"}, **options)
    assert message.encode() == encoded(message)


def test_plain_answers_false_for_values_json_has_no_form_for() -> None:
    assert strictjson.plain({"a": [1, 2.5, "x", None, False, (1, {"b": {}})]})
    assert not strictjson.plain({"a": [object()]})
    assert not strictjson.plain([float("inf")])
    assert not strictjson.plain({"a": b"bytes"})
