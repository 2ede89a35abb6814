"""Migrations: idempotent, safe to run concurrently, and in lockstep with schema.sql."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import psycopg
import pytest
from docjobs_devkit import PostgresServer

from docjobs import errors
from docjobs.db import migrate as migrate_module
from docjobs.db import sql
from docjobs.db.migrate import migrate


@pytest.fixture
def empty_database(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    name = f"empty_{request.node.name}"[:60].replace("[", "_").replace("]", "_").replace("-", "_")
    url = postgres_server.create_database(name)
    request.addfinalizer(lambda: postgres_server.drop_database(name))
    return url


def dump_schema(server: PostgresServer, url: str) -> str:
    result = subprocess.run(
        [
            str(server.bin_dir / "pg_dump"),
            "--schema-only",
            "--no-owner",
            "--exclude-table=docjobs_migration",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return "\n".join(
        line
        for line in result.stdout.splitlines()
        if not line.startswith(("--", "\\restrict", "\\unrestrict"))
    )


def test_migrations_build_exactly_the_schema_in_schema_sql(postgres_server: PostgresServer) -> None:
    from_migrations = postgres_server.create_database("lockstep_migrations")
    from_schema = postgres_server.create_database("lockstep_schema")
    try:
        migrate(from_migrations)
        with psycopg.connect(from_schema, autocommit=True) as conn:
            conn.execute(sql.schema().encode())
        assert dump_schema(postgres_server, from_schema) == dump_schema(postgres_server, from_migrations)
    finally:
        postgres_server.drop_database("lockstep_migrations")
        postgres_server.drop_database("lockstep_schema")


def test_migrating_twice_applies_nothing_the_second_time(empty_database: str) -> None:
    assert [1] == [migration.version for migration in migrate(empty_database)][:1]
    assert [] == migrate(empty_database)


def test_concurrent_migrations_apply_each_migration_once(empty_database: str) -> None:
    results: list[list[sql.Migration]] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        try:
            results.append(migrate(empty_database))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [] == failures
    assert len(sql.migrations()) == sum(len(applied) for applied in results)
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT count(*) FROM docjobs_migration").fetchone() == (len(sql.migrations()),)


def test_an_applied_migration_edited_afterwards_is_refused(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(empty_database)
    edited = [sql.Migration(m.version, m.name, m.sql + "\n-- edited") for m in sql.migrations()]
    monkeypatch.setattr(migrate_module.sql, "migrations", lambda: edited)
    with pytest.raises(errors.MigrationError, match="was edited after it was applied"):
        migrate(empty_database)


def test_a_failing_migration_leaves_nothing_half_applied(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = [*sql.migrations(), sql.Migration(999, "broken", "CREATE TABLE half (id int); SELECT 1/0;")]
    monkeypatch.setattr(migrate_module.sql, "migrations", lambda: broken)
    with pytest.raises(errors.MigrationError, match="migration 0999_broken failed"):
        migrate(empty_database)
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
        assert conn.execute("SELECT max(version) FROM docjobs_migration").fetchone() == (broken[-2].version,)


def test_schema_sql_ships_with_the_package() -> None:
    assert "CREATE TABLE background_job" in sql.schema()
    assert Path(migrate_module.__file__).parent.joinpath("schema.sql").exists()
