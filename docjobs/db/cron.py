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
Decision = Literal["running", "late", "succeeded", "paused"]
Claimed = Literal["fired", "paused"]

#: ``fired_by`` of the board's run-now firings (who asked is in the board's audit log).
RUN_NOW_SENDER = "run-now"

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

    def claim(
        self, conn: Conn, *, schedule: str, slot: datetime, job_id: str, fired_by: str
    ) -> Claimed | None:
        """Claim a slot for ``job_id`` inside the caller's transaction.

        Returns:
            ``"fired"``: send the message; ``"paused"``: the schedule is paused, the slot is
            recorded as skipped and nothing is to be sent; ``None``: the slot is already
            claimed. While another transaction holds an uncommitted claim this waits for
            it: if that scheduler dies before committing, this claim wins.
        """
        params = {"schedule": schedule, "slot": slot, "job_id": job_id, "fired_by": fired_by}
        row = self._q["cron_claim"].execute(conn, params).fetchone()
        if row is None:
            return None
        # The caller's connection may not make dict rows (a test's plain one).
        return _claimed(row[0] if isinstance(row, tuple) else row["status"])

    def claim_run_now(self, conn: Conn, *, schedule: str, moment: datetime, job_id: str) -> bool:
        """Record a run-now firing at ``moment`` (never a cron slot: see ``firing.run_now_moment``)."""
        params = {"schedule": schedule, "slot": moment, "job_id": job_id, "fired_by": RUN_NOW_SENDER}
        return self._q["cron_claim_run_now"].execute(conn, params).fetchone() is not None

    def decide(
        self, *, schedule: str, slot: datetime, job_id: str, fired_by: str, late: bool, run_now: bool = False
    ) -> Decision | None:
        """Record that a worker received a firing, and say what to do with it.

        Returns:
            ``"running"`` when this message owns the slot and should run (a retry of
            it included); ``"late"`` when it owns the slot but arrived, or was
            retried, later than the tolerance; ``"paused"`` when the slot is a paused
            schedule's (a ``run_now`` firing never is); ``"succeeded"`` when it already
            ran; ``None`` when another message owns the slot.
        """
        params = {
            "schedule": schedule,
            "slot": slot,
            "job_id": job_id,
            "fired_by": fired_by,
            "status": "late" if late else "running",
            "run_now": run_now,
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

    def recent(self, schedules: Sequence[str], *, limit: int) -> dict[str, list[Row]]:
        """The newest ``limit`` firings of each schedule (run-nows included), newest first."""
        found: dict[str, list[Row]] = {schedule: [] for schedule in schedules}
        with self.database.connection() as conn:
            params = {"schedules": list(schedules), "limit": limit}
            for row in self._q["cron_recent"].execute(conn, params).fetchall():
                found[row["schedule"]].append(row)
        return found

    def pause_states(self) -> dict[str, Row]:
        """Each schedule's pause state (``paused``, ``paused_at``, ``resumed_at``, ``changed_by``)."""
        with self.database.connection() as conn:
            rows = self._q["cron_states"].execute(conn).fetchall()
        return {row["schedule"]: row for row in rows}

    def set_paused(self, schedule: str, paused: bool, *, changed_by: str) -> Row:
        """Pause or resume ``schedule``; returns its state (resuming one never paused: not paused)."""
        name = "cron_pause" if paused else "cron_resume"
        with self.database.connection() as conn:
            row: Row | None = (
                self._q[name].execute(conn, {"schedule": schedule, "changed_by": changed_by}).fetchone()
            )
        return row or {"paused": False, "paused_at": None, "resumed_at": None}

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


def _claimed(status: str) -> Claimed:
    assert status in ("fired", "paused"), status
    return "fired" if status == "fired" else "paused"
