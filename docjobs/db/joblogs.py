"""Job logs: the lines and progress actors report (``docjobs.log_line``, ``docjobs.set_progress``).

Rows are keyed by job id without a foreign key to ``background_job``: on bullmq and
inngest the job's history row is written after the job starts, often after its first
line. Retention deletes them with their job (``job_delete_finished``).
"""

from __future__ import annotations

from typing import Any

from docjobs.db import history, sql
from docjobs.db.pool import Database

Row = dict[str, Any]


class JobLogStore:
    """Reads and writes ``background_job_log`` and ``background_job_progress``.

    Args:
        database: Where the tables live.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._q = sql.joblog_queries()

    def append(self, job_id: str, attempt: int, line: str, *, max_lines: int, timeout_seconds: float) -> None:
        """Append ``line`` to the job's log, keeping its newest ``max_lines``; one statement.

        Args:
            timeout_seconds: The longest wait for a pooled connection.

        Raises:
            psycopg.Error: The database failed; ``psycopg_pool.PoolTimeout`` when no connection came.
        """
        # Masked as error text is: the board shows it, and app code logs what it has at hand.
        params = {"job_id": job_id, "attempt": attempt, "line": history.masked(line), "max_lines": max_lines}
        with self.database.connection(timeout_seconds=timeout_seconds) as conn:
            self._q["job_log_append"].execute(conn, params)

    def set_progress(self, job_id: str, progress_json: str, *, timeout_seconds: float) -> None:
        """Set the job's progress to ``progress_json`` (a JSON number or object).

        Raises:
            psycopg.Error: The database failed; ``psycopg_pool.PoolTimeout`` when no connection came.
        """
        with self.database.connection(timeout_seconds=timeout_seconds) as conn:
            self._q["job_progress_set"].execute(conn, {"job_id": job_id, "progress": progress_json})

    def read(self, job_id: str, *, limit: int) -> Row:
        """The job's progress and its newest ``limit`` lines, as the board shows them.

        Returns:
            ``progress`` (``None`` when none was set), ``written`` (lines written, the dropped
            ones included), ``updatedAt``, and ``lines``: ``seq``, ``attempt``, ``at``, ``line``,
            oldest first.
        """
        with self.database.connection() as conn:
            rows: list[Row] = (
                self._q["job_log_read"].execute(conn, {"job_id": job_id, "limit": limit}).fetchall()
            )
        if not rows:
            return {"progress": None, "written": 0, "updatedAt": None, "lines": []}
        head = rows[0]
        lines = [
            {"seq": row["seq"], "attempt": row["attempt"], "at": row["at"], "line": row["line"]}
            for row in rows
            if row["seq"] is not None
        ]
        return {
            "progress": head["progress"],
            "written": head["written"],
            "updatedAt": head["updated_at"],
            "lines": lines,
        }
