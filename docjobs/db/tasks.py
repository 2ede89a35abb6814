"""Task rows: the memoized steps ``run_task`` runs inside a job."""

from __future__ import annotations

from typing import Any

from docjobs.db import history, sql
from docjobs.db.pool import Database

Row = dict[str, Any]


class TaskStore:
    """Reads and writes ``background_job_task`` rows.

    Args:
        database: Where the table lives.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._q = sql.queries()

    def get_or_create(self, *, task_id: str, job_id: str, actor: str, name: str) -> Row:
        """A task's status, result and failure count, creating it on first use."""
        with self.database.connection() as conn:
            cursor = self._q["task_get_or_create"].execute(
                conn, {"id": task_id, "job_id": job_id, "actor": actor, "name": name}
            )
            row: Row | None = cursor.fetchone()
        assert row is not None  # the statement inserts or finds the row
        return row

    def complete(self, task_id: str, result_json: str) -> None:
        """Store a task's JSON result."""
        with self.database.connection() as conn:
            self._q["task_complete"].execute(conn, {"id": task_id, "result": result_json})

    def record_failure(self, task_id: str, error: str) -> None:
        """Count a failed run of a task and keep its error line."""
        with self.database.connection() as conn:
            self._q["task_record_failure"].execute(conn, {"id": task_id, "error": history.masked(error)})
