"""What every part of the domain store stands on: ``domain.sql``'s queries and how to run one."""

from __future__ import annotations

from typing import Any

import psycopg

from docjobs.db import sql

Row = dict[str, Any]
Conn = psycopg.Connection[Any]

#: Rows one cleanup statement deletes, so each transaction stays short.
CLEANUP_BATCH = 10_000


class DomainQueries:
    """Runs the queries of ``domain.sql`` by name, on the connection it is given."""

    def __init__(self) -> None:
        self._q = sql.domain_queries()

    def _one(self, conn: Conn, query: str, params: dict[str, Any] | None = None) -> Row | None:
        row: Row | None = self._q[query].execute(conn, params).fetchone()
        return row

    def _all(self, conn: Conn, query: str, params: dict[str, Any] | None = None) -> list[Row]:
        rows: list[Row] = self._q[query].execute(conn, params).fetchall()
        return rows

    def _run(self, conn: Conn, query: str, params: dict[str, Any] | None = None) -> int:
        return self._q[query].execute(conn, params).rowcount
