"""Job history: the events and failed attempts of jobs whose queue is elsewhere.

Also where stored error text is masked: every error or traceback docjobs writes to
the database (here, and by the claim and task stores) goes through :func:`masked`,
because an exception's text can hold a secret and the board shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from docjobs import redaction
from docjobs.db import sql
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
#: The columns of a recorded batch that hold error text.
_ERROR_PARAMETERS = ("last_error", "last_traceback", "failure_error", "failure_traceback")


def masked(text: str | None) -> str | None:
    """An error or traceback as the board may show it: an exception's text can hold a secret."""
    return None if text is None else redaction.redact(text)


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
        params = {column: [event[column] for event in events] for column in HISTORY_COLUMNS}
        for column in ATTEMPT_COLUMNS:
            params[f"failure_{column}"] = [failure[column] for failure in failures]
        for column in _ERROR_PARAMETERS:
            params[column] = [masked(text) for text in params[column]]
        with self.database.connection() as conn:
            self._q["job_record_history"].execute(conn, params)
