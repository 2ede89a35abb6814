"""The outbox of providers whose queue is elsewhere (bullmq, inngest).

A job sent with ``conn=`` is written here in the caller's transaction; after commit
(or later, by the relay, for rows left behind) it is taken out and sent on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from docjobs.db import sql
from docjobs.db.pool import Database

Row = dict[str, Any]
#: Stale rows taken by one relay round at most.
DEFAULT_TAKE_LIMIT = 1000


class OutboxStore:
    """Adds and takes ``(id, queue, data)`` outbox rows.

    Args:
        database: Where ``job_outbox`` lives.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._q = sql.queries()

    def add(self, conn: psycopg.Connection[Any], entries: Sequence[tuple[str, str, bytes]]) -> None:
        """Write ``(id, queue, data)`` entries in the caller's transaction."""
        self._q["job_outbox_add"].execute(
            conn,
            {
                "id": [entry[0] for entry in entries],
                "queue": [entry[1] for entry in entries],
                "data": [entry[2] for entry in entries],
            },
        )

    def take(
        self,
        send: Callable[[list[Row]], None],
        *,
        ids: Sequence[str] | None = None,
        stale_seconds: float = 0.0,
        limit: int = DEFAULT_TAKE_LIMIT,
    ) -> int:
        """Remove outbox rows and ``send`` them, oldest first; if ``send`` raises, they stay.

        Args:
            send: Gets the rows (``id``, ``queue``, ``data``) inside the transaction.
            ids: These rows; else rows older than ``stale_seconds``, at most ``limit``.

        Returns:
            How many rows were sent.
        """
        with self.database.transaction() as conn:
            if ids is not None:
                cursor = self._q["job_outbox_take"].execute(conn, {"ids": list(ids)})
            else:
                cursor = self._q["job_outbox_take_stale"].execute(
                    conn, {"seconds": stale_seconds, "limit": limit}
                )
            rows: list[Row] = sorted(cursor.fetchall(), key=lambda row: row["created_at"])
            if rows:
                send(rows)
        return len(rows)
