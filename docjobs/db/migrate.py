"""Apply the SQL migrations, idempotently and safely from several processes at once.

Each migration runs in its own transaction, which takes a transaction-level advisory
lock, reads the ledger again, applies the migration and records it: a failure leaves
that migration unapplied (the ones before it stay), and processes migrating at once
apply each migration exactly once between them. A transaction-level lock (unlike a
session one) holds through PgBouncer in transaction mode, where a session's next
statement may reach another server connection.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql as pg_sql

from docjobs import errors
from docjobs.db import pool, sql

logger = logging.getLogger(__name__)

#: pg_advisory_xact_lock key that serialises migrations ("djmigrat" in ASCII).
MIGRATION_LOCK_KEY = 0x646A6D6967726174


def create_database(server_url: str, name: str) -> None:
    """Create database ``name`` on the server ``server_url`` points at, unless it exists."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        if sql.queries()["database_exists"].execute(conn, {"name": name}).fetchone() is None:
            conn.execute(pg_sql.SQL("CREATE DATABASE {}").format(pg_sql.Identifier(name)))


def migrate(url: str) -> list[sql.Migration]:
    """Apply every pending migration.

    Works on a direct URL and through a transaction pooler alike: the lock is held by
    each migration's transaction, and nothing is prepared.

    Args:
        url: The database's ``postgresql://`` URL (``NEXT_PRIVATE_DIRECT_DATABASE_URL``
            when set: DDL need not queue behind the pooler).

    Returns:
        The migrations applied by this call (empty when the schema was current).

    Raises:
        errors.MigrationError: A migration failed, or an applied one was edited since.
    """
    queries = sql.queries()
    applied_now: list[sql.Migration] = []
    with pool.connect(
        url, autocommit=True, prepare_threshold=None, application_name=pool.application_name("migrate")
    ) as conn:
        with conn.transaction():
            queries["migration_lock"].execute(conn, {"key": MIGRATION_LOCK_KEY})
            queries["migration_create_table"].execute(conn)
            applied = _applied(conn)
        for migration in sql.migrations():
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise errors.MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was edited after it was "
                        "applied; add a new migration instead"
                    )
                continue
            try:
                with conn.transaction():
                    queries["migration_lock"].execute(conn, {"key": MIGRATION_LOCK_KEY})
                    if migration.version in _applied(conn):
                        continue  # another process applied it while this one waited
                    conn.execute(migration.sql.encode("utf-8"))
                    queries["migration_record"].execute(
                        conn,
                        {
                            "version": migration.version,
                            "name": migration.name,
                            "checksum": migration.checksum,
                        },
                    )
            except psycopg.Error as exc:
                raise errors.MigrationError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from exc
            logger.info(
                "Applied migration %04d_%s.",
                migration.version,
                migration.name,
                extra={"action": "migration_applied", "version": migration.version},
            )
            applied_now.append(migration)
    return applied_now


def _applied(conn: psycopg.Connection[Any]) -> dict[int, str]:
    """Applied migrations' checksums by version."""
    return {row[0]: row[2] for row in sql.queries()["migration_list_applied"].execute(conn).fetchall()}
