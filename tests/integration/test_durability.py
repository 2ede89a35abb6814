"""Which of docjobs' writes wait for the WAL flush (issue 21, "Durability first").

These tests run on a PostgreSQL server of their own with the server's durable default
(``synchronous_commit = on``), unlike the suite's fast server: a trigger records the
``synchronous_commit`` each write to ``background_job`` and ``worker`` runs with, inside
the write's own transaction, and one test crashes the server (an immediate shutdown,
as ``pg_ctl stop -m immediate``) right after the sends return.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import psycopg
import pytest
from docjobs_devkit import PostgresServer
from psycopg.rows import dict_row

from docjobs import jobs, runtime
from docjobs.db.migrate import migrate
from docjobs.runtime import Runtime
from tests.conftest import TEMPLATE_DATABASE
from tests.support import actors
from tests.support.actors import EVENTS_TABLE

#: Jobs sent before the crash, one at a time and then in one bulk send of each kind.
CRASH_JOBS = 200
#: How long an immediate shutdown and the restart may take.
SERVER_DEADLINE_SECONDS = 30.0
#: The WAL writer's longest sleep: an asynchronous commit waits this long for it (or a full
#: WAL page), so a crash right after the sends finds the last ones unflushed.
SLOW_WAL_WRITER = {"wal_writer_delay": "10s", "wal_writer_flush_after": "0"}

# Test-only instrumentation: the setting every row write of background_job and worker ran with.
COMMIT_PROBE = """
CREATE TABLE commit_probe (
    seq           bigserial PRIMARY KEY,
    tbl           text NOT NULL,
    op            text NOT NULL,
    row_id        text,
    status_before text,
    status_after  text,
    setting       text NOT NULL
);
CREATE FUNCTION commit_probe_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO commit_probe (tbl, op, row_id, status_before, status_after, setting)
    VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(NEW) ->> 'id',
            CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ->> 'status' END,
            to_jsonb(NEW) ->> 'status', current_setting('synchronous_commit'));
    RETURN NULL;
END $$;
CREATE TRIGGER commit_probe AFTER INSERT OR UPDATE ON background_job
    FOR EACH ROW EXECUTE FUNCTION commit_probe_record();
CREATE TRIGGER commit_probe AFTER INSERT OR UPDATE ON worker
    FOR EACH ROW EXECUTE FUNCTION commit_probe_record();
"""


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    """This module's server (overrides the suite's): durable defaults, a slow WAL writer, probed tables.

    The suite's ``database_url`` makes each test's database from its template.
    """
    server = PostgresServer(settings=SLOW_WAL_WRITER).start()
    try:
        url = server.create_database(TEMPLATE_DATABASE)
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(EVENTS_TABLE)
            conn.execute(COMMIT_PROBE)
            assert "on" == conn.execute("SHOW synchronous_commit").fetchone()[0]  # type: ignore[index]
        yield server
    finally:
        server.stop()


def _probes(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM commit_probe ORDER BY seq").fetchall()


def _settings(probes: list[dict[str, Any]], **match: str | None) -> set[str]:
    """The settings of the probed writes whose columns equal ``match``; fails when there are none."""
    found = {p["setting"] for p in probes if all(p[key] == value for key, value in match.items())}
    assert found, f"no write matched {match}"
    return found


def _send_one_of_each_kind(current: Runtime) -> dict[str, set[str]]:
    """Job ids by how they were sent: alone, in bulk (COPY and INSERT), in the app's transaction."""
    alone = actors.fail_once_job.send(key="alone").message_id
    copied = [m.message_id for m in jobs.trigger_many("test.record", [{"key": "copy-1"}, {"key": "copy-2"}])]
    listed = [
        m.message_id
        for m in jobs.trigger_many(
            "test.record", [{"key": "ids-1"}, {"key": "ids-2"}], ids=["ids-1", "ids-2"]
        )
    ]
    assert current.database is not None
    with current.database.transaction() as conn:
        in_app = jobs.trigger("test.record", {"key": "in-app"}, conn=conn).message_id
    return {"standalone": {alone, *copied, *listed}, "in_app": {in_app}}


def test_by_default_enqueues_wait_for_the_wal_flush_and_claims_acks_and_heartbeats_do_not(
    make_runtime: Callable[..., Runtime],
    start_worker: Callable[..., dramatiq.Worker],
    database_url: str,
) -> None:
    # Before: every write of docjobs' own (the standalone enqueues too) ran with "off".
    current = make_runtime(NEXT_PRIVATE_JOBS_POLL_INTERVAL_SECONDS="0.05")
    sent = _send_one_of_each_kind(current)
    start_worker(current.broker, threads=2)
    current.join(timeout_seconds=30)

    probes = _probes(database_url)
    inserts = {
        p["row_id"]: p["setting"] for p in probes if p["tbl"] == "background_job" and p["op"] == "INSERT"
    }
    assert {job_id: "on" for job_id in sent["standalone"] | sent["in_app"]} == inserts
    assert {"off"} == _settings(probes, status_before="PENDING", status_after="PROCESSING")  # claims
    assert {"off"} == _settings(probes, status_before="PROCESSING", status_after="COMPLETED")  # acks
    assert {"off"} == _settings(probes, status_before="PROCESSING", status_after="PENDING")  # the retry
    assert {"off"} == _settings(probes, tbl="worker")  # heartbeats


def test_the_opt_out_makes_standalone_enqueues_asynchronous_and_the_apps_transaction_keeps_its_own(
    make_runtime: Callable[..., Runtime], database_url: str
) -> None:
    current = make_runtime(NEXT_PRIVATE_JOBS_SYNCHRONOUS_COMMIT="false")
    sent = _send_one_of_each_kind(current)

    probes = _probes(database_url)
    inserts = {
        p["row_id"]: p["setting"] for p in probes if p["tbl"] == "background_job" and p["op"] == "INSERT"
    }
    expected = {job_id: "off" for job_id in sent["standalone"]} | {job_id: "on" for job_id in sent["in_app"]}
    assert expected == inserts


def test_every_enqueue_that_returned_survives_a_postgresql_crash(
    make_runtime: Callable[..., Runtime], postgres_server: PostgresServer, database_url: str
) -> None:
    # Before (synchronous_commit off by default): the sends of the last unflushed WAL page
    # were gone after the crash.
    make_runtime(NEXT_PRIVATE_JOBS_LISTEN="false")
    sent = [actors.record_job.send(key=f"crash-{n}").message_id for n in range(CRASH_JOBS)]
    sent += [m.message_id for m in jobs.trigger_many("test.record", [{"key": "crash-copy"}] * CRASH_JOBS)]
    ids = [f"crash-listed-{n}" for n in range(CRASH_JOBS)]
    sent += [
        m.message_id for m in jobs.trigger_many("test.record", [{"key": "listed"}] * CRASH_JOBS, ids=ids)
    ]

    # Immediate shutdown, as `pg_ctl stop -m immediate`: no checkpoint, no WAL written on the way out.
    assert postgres_server.process is not None
    postgres_server.process.send_signal(signal.SIGQUIT)
    postgres_server.process.wait(SERVER_DEADLINE_SECONDS)
    runtime.reset()
    postgres_server.restart()

    with psycopg.connect(database_url) as conn:
        found = {row[0] for row in conn.execute("SELECT id FROM background_job WHERE id = ANY(%s)", (sent,))}
    assert 3 * CRASH_JOBS == len(set(sent))
    assert [] == [job_id for job_id in sent if job_id not in found]
