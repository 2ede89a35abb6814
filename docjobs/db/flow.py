"""Flow control's state in PostgreSQL (``flow.sql``): the local provider's ``FlowStore``."""

from __future__ import annotations

from typing import Any

from docjobs.db import sql
from docjobs.db.pool import Database
from docjobs.flow.store import WindowKind

#: Rows of each flow table one maintenance round deletes at most.
EXPIRE_BATCH = 10_000


class FlowRows:
    """Slots, windows and debounced sends in the flow_* tables.

    Writes go through the pool's own-writes view when given it (they skip the WAL
    flush wait): losing the last of them in a PostgreSQL crash at worst lets one
    more job through, as losing an ack runs a job again.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._q = sql.flow_queries()

    def take_slot(self, job: str, key: str, holder: str, *, limit: int, ttl_s: float) -> bool:
        params: dict[str, Any] = {"job": job, "key": key, "holder": holder, "limit": limit, "ttl_s": ttl_s}
        with self.database.connection() as conn, conn.transaction():
            self._q["flow_lock"].execute(conn, params)
            return self._q["flow_slot_take"].execute(conn, params).fetchone() is not None

    def release_slot(self, job: str, key: str, holder: str) -> None:
        with self.database.connection() as conn:
            self._q["flow_slot_release"].execute(conn, {"job": job, "key": key, "holder": holder})

    def take_window(
        self, job: str, kind: WindowKind, key: str, *, limit: int, period_s: float
    ) -> float | None:
        params = {"job": job, "kind": kind, "key": key, "limit": limit, "period_s": period_s}
        with self.database.connection() as conn:
            row = self._q["flow_window_take"].execute(conn, params).fetchone()
        assert row is not None  # one row, always
        return None if row["taken"] else max(float(row["wait_s"]), 0.0)

    def note_send(self, job: str, key: str, job_id: str, *, sent_ms: int, ttl_s: float) -> None:
        params = {"job": job, "key": key, "latest": job_id, "latest_ms": sent_ms, "ttl_s": ttl_s}
        with self.database.connection() as conn:
            self._q["flow_debounce_note"].execute(conn, params)

    def superseded(self, job: str, key: str, job_id: str, *, sent_ms: int) -> bool:
        params = {"job": job, "key": key, "job_id": job_id, "sent_ms": sent_ms}
        with self.database.connection() as conn:
            row = self._q["flow_debounce_superseded"].execute(conn, params).fetchone()
        return bool(row and row["superseded"])

    def expire(self) -> int:
        """Delete expired slots, windows and debounced sends (a bounded batch of each)."""
        with self.database.connection() as conn:
            row = self._q["flow_expire"].execute(conn, {"limit": EXPIRE_BATCH}).fetchone()
        return int(row["deleted"]) if row else 0
