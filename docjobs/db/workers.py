"""Workers: their heartbeats, and the maintenance round that rescues what they dropped."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from docjobs.db import sql
from docjobs.db.claims import PREPARE_HELD_JOB_STATEMENTS
from docjobs.db.jobs import JobRows
from docjobs.db.pool import Database

#: pg_try_advisory_xact_lock key of the maintenance round ("docjobs" in ASCII).
MAINTENANCE_LOCK_KEY = 0x646F636A6F6273

Row = dict[str, Any]


class WorkerStore:
    """Keeps ``worker`` rows and runs the maintenance round.

    Args:
        database: Where the tables live.
        rows: The job rows whose retention the round applies.
    """

    def __init__(self, database: Database, rows: JobRows) -> None:
        self.database = database
        self.rows = rows
        self._q = sql.queries()

    def heartbeat(
        self,
        *,
        worker: str,
        held: Sequence[str],
        queues: Sequence[str],
        concurrency: int,
        lease_seconds: float,
    ) -> None:
        """Record the worker as alive and extend the leases of the jobs it still holds.

        Only ``held`` jobs are extended: a job whose outcome this worker failed to
        write is not, so its lease runs out and the rescuer returns it.
        """
        with self.database.connection() as conn:
            self._q["worker_heartbeat"].execute(
                conn,
                {
                    "worker": worker,
                    "held": list(held),
                    "hostname": socket.gethostname(),
                    "pid": os.getpid(),
                    "queues": list(queues),
                    "concurrency": concurrency,
                    "lease_seconds": lease_seconds,
                },
                prepare=PREPARE_HELD_JOB_STATEMENTS,
            )

    def delete_worker(self, worker: str) -> None:
        """Forget a worker that stopped cleanly."""
        with self.database.connection() as conn:
            self._q["worker_delete"].execute(conn, {"worker": worker})

    def count_alive(self, *, within_seconds: float) -> int:
        """How many workers, on any host, heartbeat within the last ``within_seconds``."""
        with self.database.connection() as conn:
            row = self._q["worker_count_alive"].execute(conn, {"within_seconds": within_seconds}).fetchone()
        return int(row["alive"]) if row is not None else 0

    def maintain(
        self, *, stale_worker_seconds: float, retention_days: float, now: datetime | None = None
    ) -> list[Row] | None:
        """Run one maintenance round unless another process is running one.

        Under an advisory lock, in one transaction: rescue jobs whose lease expired
        and forget silent workers. Then, still only in the process that won the
        round, apply retention (see :meth:`JobRows.delete_finished`).

        Returns:
            The rescued jobs, or ``None`` when another process holds the round.
        """
        with self.database.connection() as conn:
            with conn.transaction():
                lock = self._q["maintenance_try_lock"].execute(conn, {"key": MAINTENANCE_LOCK_KEY}).fetchone()
                if lock is None or not lock["locked"]:
                    return None
                rescued: list[Row] = self._q["job_rescue_expired"].execute(conn, {"now": now}).fetchall()
                self._q["worker_delete_stale"].execute(
                    conn, {"now": now, "stale_seconds": stale_worker_seconds}
                )
        self.rows.delete_finished(retention_days, now=now)
        return rescued
