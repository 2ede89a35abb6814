"""The cron ledger: the only code that runs the cron queries (``cron.sql``).

One row per fired (schedule, slot). Its primary key is what makes a slot fire once
however many schedulers run: a scheduler claims the slot in the transaction that
enqueues its message, and a worker runs a firing only if the slot's row names its
message (or it is the first to arrive and writes the row itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import psycopg

from docjobs.db import sql
from docjobs.db.pool import Database

Row = dict[str, Any]
Conn = psycopg.Connection[Any]
Decision = Literal["running", "late", "succeeded"]

#: Ledger rows one retention statement deletes.
RETENTION_BATCH = 10_000


class CronLedger:
    """Reads and writes ``cron_run``.

    Args:
        database: Where the table lives.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._q = sql.cron_queries()

    def claim(self, conn: Conn, *, schedule: str, slot: datetime, job_id: str, fired_by: str) -> bool:
        """Claim a slot for ``job_id`` inside the caller's transaction.

        Returns:
            ``False`` when the slot is already claimed. While another transaction holds
            an uncommitted claim this waits for it: if that scheduler dies before
            committing, this claim wins.
        """
        params = {"schedule": schedule, "slot": slot, "job_id": job_id, "fired_by": fired_by}
        return self._q["cron_claim"].execute(conn, params).fetchone() is not None

    def decide(
        self, *, schedule: str, slot: datetime, job_id: str, fired_by: str, late: bool
    ) -> Decision | None:
        """Record that a worker received a firing, and say what to do with it.

        Returns:
            ``"running"`` when this message owns the slot and should run (a retry of
            it included); ``"late"`` when it owns the slot but arrived, or was
            retried, later than the tolerance;
            ``"succeeded"`` when it already ran; ``None`` when another message owns
            the slot.
        """
        params = {
            "schedule": schedule,
            "slot": slot,
            "job_id": job_id,
            "fired_by": fired_by,
            "status": "late" if late else "running",
        }
        with self.database.connection() as conn:
            row = self._q["cron_decide"].execute(conn, params).fetchone()
        if row is None:
            return None
        status: Decision = row["status"]
        return status

    def finish(
        self, *, schedule: str, slot: datetime, job_id: str, succeeded: bool, error: str | None = None
    ) -> None:
        """Record how a running firing ended."""
        params = {
            "schedule": schedule,
            "slot": slot,
            "job_id": job_id,
            "status": "succeeded" if succeeded else "failed",
            "error": error,
        }
        with self.database.connection() as conn:
            self._q["cron_finish"].execute(conn, params)

    def latest(self, schedules: Sequence[str]) -> dict[str, Row]:
        """The newest firing of each schedule that has one, by schedule."""
        with self.database.connection() as conn:
            rows = self._q["cron_latest"].execute(conn, {"schedules": list(schedules)}).fetchall()
        return {row["schedule"]: row for row in rows}

    def history(self, schedule: str, *, limit: int = 50) -> list[Row]:
        """A schedule's firings, newest first."""
        with self.database.connection() as conn:
            rows: list[Row] = (
                self._q["cron_history"].execute(conn, {"schedule": schedule, "limit": limit}).fetchall()
            )
        return rows

    def delete_old(self, days: float) -> int:
        """Delete firings older than ``days``, in short batches; returns how many."""
        deleted = 0
        while True:
            with self.database.connection() as conn:
                count = (
                    self._q["cron_delete_old"]
                    .execute(conn, {"days": days, "limit": RETENTION_BATCH})
                    .rowcount
                )
            deleted += count
            if count < RETENTION_BATCH:
                return deleted
