"""What the job history needs of a journal, and the format of a journal entry.

A journal keeps the history's batches somewhere durable (bullmq: a Redis list, see
``docjobs.brokers.bullmq.journal``) until one process moves them into PostgreSQL.
The history (``brokers/history.py``) talks to it through :class:`Journal` alone, so
it knows no provider; a journal raises ``errors.BrokerError`` (its
``BrokerConnectionError`` when unreachable) rather than its client's errors.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

import orjson

from docjobs.db.documents import json_document

_EVENT_TIMES = ("run_at", "at", "submitted_at", "started_at", "completed_at")
_FAILURE_TIMES = ("started_at", "finished_at")

Failures = list[dict[str, Any]]
#: A journal entry's content in memory: its events and failed attempts, as :func:`decode` gives them.
Batch = tuple[list[dict[str, Any]], Failures]


class Journal(Protocol):
    """Where history batches wait, durably, until one process moves them into PostgreSQL."""

    def push(self, entry: bytes, batch: Batch | None = None) -> None:
        """Keep one batch (an :func:`encode`-d entry; ``batch`` is what it encodes, if at hand).

        Raises:
            errors.BrokerError: The journal could not be written.
        """
        ...

    def pending(self) -> int:
        """Entries not moved yet.

        Raises:
            errors.BrokerError: The journal could not be read.
        """
        ...

    def drain(self) -> int:
        """Move entries to PostgreSQL until none is left or another process is moving them.

        Returns:
            How many entries were moved.

        Raises:
            errors.BrokerError: The journal could not be read or trimmed.
            psycopg.Error: The database is away; the entries stay.
        """
        ...


def encode(events: list[dict[str, Any]], failures: Failures) -> bytes:
    """One journal entry: JSON, its times in ISO 8601."""
    return json_document({"events": events, "failures": failures})


def decode(entry: bytes) -> Batch:
    """A journal entry's events and failures, with their times as datetimes again."""
    try:
        data = orjson.loads(entry)
    except orjson.JSONDecodeError:  # what orjson refuses to read back (an escaped lone surrogate)
        data = json.loads(entry)
    for event in data["events"]:
        _times(event, _EVENT_TIMES)
    for failure in data["failures"]:
        _times(failure, _FAILURE_TIMES)
    return data["events"], data["failures"]


def _times(record: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if record.get(name) is not None:
            record[name] = datetime.fromisoformat(record[name])
