"""The job history writes JSON with orjson, yet stores and journals what ``json`` did."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from docjobs.brokers.history import json_text
from docjobs.brokers.journal import decode, encode


@dataclass
class _Point:
    x: int


def test_json_text_stores_the_value_json_stored() -> None:
    when = datetime(2026, 12, 6, 17, 50, 1, 250, tzinfo=UTC)
    cases = [
        ({"name": "Zoë 📄", "pages": [1, 2.5, None, True], "nested": {"a": {}}}, None),
        ([], None),
        ({"at": when, "point": _Point(3), "retries": 2}, str),  # options: json gave str() to these
        ({"big": 2**70, "small": -(2**65)}, None),  # beyond orjson's 64 bits
        ({1: "one", None: "none", 2.5: "half"}, None),  # keys json turns into strings
        ({"lone": "\ud800"}, None),  # a lone surrogate: escaped, as json did
    ]
    for value, default in cases:
        assert json.loads(json_text(value, default=default)) == json.loads(json.dumps(value, default=default))


def test_json_text_refuses_what_json_refused() -> None:
    with pytest.raises(TypeError):
        json_text({"at": datetime.now(UTC)})


def test_a_journal_entry_gives_back_its_events_and_failures() -> None:
    at = datetime(2026, 12, 6, 17, 50, 1, 250, tzinfo=UTC)
    event = {
        "id": "job-1",
        "status": "FAILED",
        "payload": '{"n": 1}',
        "attempts": 2,
        "run_at": at,
        "at": at + timedelta(seconds=1),
        "submitted_at": at.replace(microsecond=0),
        "started_at": at.astimezone(timezone(timedelta(hours=2))),
        "completed_at": None,
        "last_error": "ValueError: bad \ud800 text",  # orjson cannot write it: json escapes it
    }
    failure = {"job_id": "job-1", "attempt": 1, "started_at": None, "finished_at": at, "error": "boom"}
    for events in ([event], [{**event, "last_error": "ValueError: bad"}]):
        assert decode(encode(events, [failure])) == (events, [failure])


def test_a_journal_entry_of_the_previous_encoder_is_read() -> None:
    at = datetime(2026, 12, 6, 17, 50, 1, tzinfo=UTC)
    entry = {"events": [{"id": "job-1", "at": at.isoformat(), "started_at": None}], "failures": []}

    events, failures = decode(json.dumps(entry).encode())

    assert events == [{"id": "job-1", "at": at, "started_at": None}]
    assert failures == []
