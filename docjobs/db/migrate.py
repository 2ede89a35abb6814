"""Apply the SQL migrations, idempotently and safely from several processes at once.

A session-level advisory lock serialises migrating processes: the second one waits,
then finds every migration applied and does nothing. Each migration runs in its own
transaction together with its ledger row, so a failure leaves nothing half-applied.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql as pg_sql

from docjobs import errors
from docjobs.db import sql

logger = logging.getLogger(__name__)

#: pg_advisory_lock key that serialises migrations ("djmigrat" in ASCII).
MIGRATION_LOCK_KEY = 0x646A6D6967726174


def create_database(server_url: str, name: str) -> None:
    """Create database ``name`` on the server ``server_url`` points at, unless it exists."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        if sql.queries()["database_exists"].execute(conn, {"name": name}).fetchone() is None:
            conn.execute(pg_sql.SQL("CREATE DATABASE {}").format(pg_sql.Identifier(name)))


def migrate(url: str) -> list[sql.Migration]:
    """Apply every pending migration.

    Args:
        url: The database's ``postgresql://`` URL.

    Returns:
        The migrations applied by this call (empty when the schema was current).

    Raises:
        errors.MigrationError: A migration failed, or an applied one was edited since.
    """
    queries = sql.queries()
    applied_now: list[sql.Migration] = []
    with psycopg.connect(url, autocommit=True) as conn:
        queries["migration_lock"].execute(conn, {"key": MIGRATION_LOCK_KEY})
        try:
            queries["migration_create_table"].execute(conn)
            applied = {row[0]: row[2] for row in queries["migration_list_applied"].execute(conn).fetchall()}
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
        finally:
            queries["migration_unlock"].execute(conn, {"key": MIGRATION_LOCK_KEY})
    return applied_now
