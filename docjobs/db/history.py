"""Job history: the events and failed attempts of jobs whose queue is elsewhere.

Also where stored error text is masked: every error or traceback docjobs writes to
the database (here, and by the claim and task stores) goes through :func:`masked`,
because an exception's text can hold a secret and the board shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from docjobs import redaction
from docjobs.db import sql
from docjobs.db.documents import json_document
from docjobs.db.pool import Database

#: What a failed attempt recorded by ``HistoryStore.record`` carries.
ATTEMPT_COLUMNS = ("job_id", "attempt", "started_at", "finished_at", "outcome", "error", "traceback")
#: What a job event recorded by ``HistoryStore.record`` carries.
HISTORY_COLUMNS = (
    "id",
    "queue",
    "actor",
    "name",
    "status",
    "payload",
    "args",
    "options",
    "retried",
    "attempts",
    "max_retries",
    "run_at",
    "at",
    "submitted_at",
    "started_at",
    "completed_at",
    "last_error",
    "last_traceback",
)
#: The columns of an event, and of a failed attempt, that hold error text.
_EVENT_ERRORS = ("last_error", "last_traceback")
_ATTEMPT_ERRORS = ("error", "traceback")


def masked(text: str | None) -> str | None:
    """An error or traceback as the board may show it: an exception's text can hold a secret."""
    return None if text is None else redaction.redact(text)


@dataclass(frozen=True)
class JobStanding:
    """Where a job stands: its status, when it was sent and when it last started (``None``: never)."""

    status: str
    submitted_at: datetime
    started_at: datetime | None


class HistoryStore:
    """Writes job events and failed attempts into ``background_job`` and ``background_job_attempt``.

    Args:
        database: Where the tables live.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._q = sql.queries()

    def record(self, events: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]] = ()) -> None:
        """Apply job events (one per job, see ``HISTORY_COLUMNS``) and failed attempts in one statement.

        Each failure (``ATTEMPT_COLUMNS``) must belong to a job among ``events``.
        """
        params = {
            "events": _json_rows(events, HISTORY_COLUMNS, _EVENT_ERRORS),
            "failures": _json_rows(failures, ATTEMPT_COLUMNS, _ATTEMPT_ERRORS),
        }
        with self.database.connection() as conn:
            self._q["job_record_history"].execute(conn, params)

    def standing(self, job_id: str) -> JobStanding | None:
        """Where job ``job_id`` stands; ``None`` when there is no such job."""
        with self.database.connection() as conn:
            row = self._q["job_close_state"].execute(conn, {"id": job_id}).fetchone()
        return None if row is None else JobStanding(row["status"], row["submitted_at"], row["started_at"])

    def close(self, job_id: str, status: str, error: str) -> bool:
        """End job ``job_id`` with ``status`` and ``error`` if it is still PENDING or PROCESSING.

        For a run its provider ended without the job seeing it. Returns whether it
        was open (a job that ended already keeps its end).
        """
        params = {"id": job_id, "status": status, "error": masked(error)}
        with self.database.connection() as conn:
            return self._q["job_close"].execute(conn, params).fetchone() is not None

    def close_superseded(
        self, job_id: str, actor: str, key: str | None, value: str | None, error: str
    ) -> int:
        """End, as dropped, the PENDING jobs of ``actor`` sent before ``job_id`` whose payload's
        ``key`` is ``value`` (all of them when ``key`` is None); how many."""
        params = {"id": job_id, "actor": actor, "keyed": key is not None, "key": key or "", "value": value,
                  "error": error}  # fmt: skip
        with self.database.connection() as conn:
            return self._q["job_close_superseded"].execute(conn, params).rowcount


def _json_rows(
    records: Sequence[Mapping[str, Any]], columns: tuple[str, ...], errors: tuple[str, ...]
) -> str:
    """``records`` as one JSON array of objects with ``columns``, their ``errors`` masked.

    One document, not an array per column: psycopg adapts arrays element by element.
    """
    rows = [{column: record[column] for column in columns} for record in records]
    for row in rows:
        for column in errors:
            row[column] = masked(row[column])
    # A lone surrogate is escaped, and refused by PostgreSQL as before.
    return json_document(rows).decode()
