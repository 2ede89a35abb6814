"""Queues: their doorbells (LISTEN/NOTIFY) and which of them are paused."""

from __future__ import annotations

from typing import Any

import psycopg

from docjobs.db import sql
from docjobs.db.pool import Database


class QueueStore:
    """Rings and listens to queue doorbells, and reads the paused queues.

    Args:
        database: Where ``queue_state`` lives.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._q = sql.queries()

    def notify(self, queue: str, *, conn: psycopg.Connection[Any] | None = None) -> None:
        """Ring a queue's doorbell; inside a transaction it rings at commit, never on rollback.

        Alone, it rings at once without waiting for a WAL flush, set for its own
        transaction: the borrowed session's settings stay as they were.
        """
        if conn is not None:
            self._q["queue_notify"].execute(conn, {"queue": queue})
            return
        with self.database.connection_as_is() as pooled:
            self._q["queue_notify_now"].execute(pooled, {"queue": queue})

    def listen(self, conn: psycopg.Connection[Any]) -> None:
        """Subscribe a dedicated connection to queue doorbells."""
        self._q["queue_listen"].execute(conn)

    def paused_queues(self) -> frozenset[str]:
        """The queues paused on the board."""
        with self.database.connection() as conn:
            return frozenset(row["queue"] for row in self._q["queue_paused"].execute(conn))
