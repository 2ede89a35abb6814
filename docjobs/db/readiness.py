"""Is the database ready for docjobs? It answers, and every migration is applied.

The long-running commands (``docjobs web``, ``docjobs worker``, ``docjobs scheduler``,
``dramatiq docjobs.runtime:broker``) ask once at start: a database that was never
migrated is one line saying to run ``docjobs migrate``, not a consumer that fails
every three seconds for ever.
"""

from __future__ import annotations

from importlib import resources

from docjobs import errors
from docjobs.db import pool, sql


class SchemaNotMigrated(errors.MigrationError):
    """The database lacks docjobs' migrations: run docjobs migrate."""


def check(url: str, *, transaction_pooling: bool = False) -> None:
    """Connect once and check that every migration docjobs knows is applied.

    Args:
        url: The database's URL (``NEXT_PRIVATE_DATABASE_URL``).
        transaction_pooling: The URL goes through a transaction pooler (nothing is prepared).

    Raises:
        SchemaNotMigrated: Migrations are missing (a newer schema is fine).
        errors.SettingsError: The URL has an option libpq cannot use, or the server refused
            the role, database or password.
        psycopg.OperationalError: The database is unreachable, starting or full (worth a retry).
    """
    options = {**pool.connect_kwargs(transaction_pooling=transaction_pooling), "prepare_threshold": None}
    with pool.connect(url, **options) as conn:
        row = _queries()["schema_ledger_exists"].execute(conn).fetchone()
        applied: set[int] = set()
        if row is not None and row["present"]:
            applied = {found["version"] for found in _queries()["schema_versions_applied"].execute(conn)}
    known = sql.migrations()
    missing = [migration for migration in known if migration.version not in applied]
    if missing:
        where = "has no docjobs schema" if not applied else "is not up to date"
        raise SchemaNotMigrated(
            f"the database {where} ({len(known) - len(missing)} of {len(known)} migrations applied): "
            "run docjobs migrate"
        )


def _queries() -> dict[str, sql.Query]:
    return sql.parse_queries(resources.files("docjobs.db").joinpath("readiness.sql").read_text("utf-8"))
