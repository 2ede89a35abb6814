"""The single-send statement run straight through libpq behaves like psycopg."""

from __future__ import annotations

import psycopg
import pytest

from docjobs.db.direct import DirectStatement
from docjobs.db.sql import parse_queries
from docjobs.runtime import Runtime
from tests.conftest import job_row
from tests.support import actors


def insert_statement() -> DirectStatement:
    (query,) = parse_queries(
        "-- probe_insert --\n-- A test insert.\n"
        "INSERT INTO background_job (id, actor, name, payload)\n"
        "VALUES (%(id)s, %(actor)s, %(actor)s, %(payload)s::jsonb);"
    ).values()
    return DirectStatement(query)


def test_it_inserts_and_raises_psycopgs_own_errors(database_url: str) -> None:
    statement = insert_statement()
    with psycopg.connect(database_url, autocommit=True) as conn:
        statement.execute(conn, {"id": "direct-1", "actor": "test.record", "payload": '{"key": "x"}'})
        with pytest.raises(psycopg.errors.UniqueViolation):
            statement.execute(conn, {"id": "direct-1", "actor": "test.record", "payload": "{}"})
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            statement.execute(conn, {"id": "direct-2", "actor": "test.record", "payload": "{not json"})
        assert conn.execute("SELECT payload FROM background_job WHERE id = 'direct-1'").fetchone() == (
            {"key": "x"},
        )


def test_it_prepares_again_when_the_statement_was_dropped(database_url: str) -> None:
    statement = insert_statement()
    with psycopg.connect(database_url, autocommit=True) as conn:
        statement.execute(conn, {"id": "direct-3", "actor": "test.record", "payload": "{}"})
        conn.execute("DEALLOCATE ALL")
        statement.execute(conn, {"id": "direct-4", "actor": "test.record", "payload": "{}"})
        assert conn.execute("SELECT count(*) FROM background_job").fetchone() == (2,)


def test_a_lost_connection_is_an_operational_error(database_url: str) -> None:
    statement = insert_statement()
    with (
        psycopg.connect(database_url, autocommit=True) as conn,
        psycopg.connect(database_url, autocommit=True) as admin,
    ):
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError):
            statement.execute(conn, {"id": "direct-5", "actor": "test.record", "payload": "{}"})


def test_single_sends_use_it_and_keep_their_payload(pg_runtime: Runtime, database_url: str) -> None:
    message = actors.record_job.send(key="ünïcode ✓", document_id=7)
    assert {"key": "ünïcode ✓", "documentId": 7} == job_row(database_url, message.message_id)["payload"]
