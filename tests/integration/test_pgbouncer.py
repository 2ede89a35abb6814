"""Behind a real PgBouncer in transaction mode, and within the per-process connection budget.

PgBouncer (tests/support/pgbouncer.py) refuses start-up options and resets every
server connection after each transaction, so session state (prepared statements,
session settings and advisory locks, LISTEN) cannot survive a transaction.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import dramatiq
import psycopg
import pytest
from docjobs_devkit import PostgresServer
from docjobs_devkit.services import free_port

from docjobs import errors, runtime
from docjobs.db import sql
from docjobs.db.migrate import migrate
from docjobs.runtime import Runtime
from docjobs.settings import Settings
from tests.conftest import events, job_row, wait_for
from tests.support import actors
from tests.support.pgbouncer import PgBouncer
from tests.support.processes import Processes, answers, cli_env, docjobs

#: What every docjobs connection is called in pg_stat_activity.
APPLICATION_NAME = re.compile(r"^docjobs-(web|worker)-[^-]+-(\d+)$")
BUDGET = 4
#: A poll this long never explains a job that ran within the tests' deadlines.
SLOW_POLL_SECONDS = "60"


@pytest.fixture(scope="module")
def pgbouncer(postgres_server: PostgresServer) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(postgres_server.port).start()
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture
def processes() -> Iterator[Processes]:
    running = Processes()
    yield running
    running.stop_all()


def _name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def behind(pgbouncer: PgBouncer, database_url: str, **more: str) -> dict[str, str]:
    """Settings that reach the test's database through PgBouncer in transaction mode."""
    return {
        "NEXT_PRIVATE_DATABASE_URL": pgbouncer.url(_name(database_url)),
        "NEXT_PRIVATE_JOBS_DB_TRANSACTION_POOLING": "true",
        **more,
    }


def test_a_job_triggered_from_the_command_line_runs_in_the_web_app_through_pgbouncer(
    pgbouncer: PgBouncer, environ: dict[str, str], database_url: str, processes: Processes, tmp_path: Path
) -> None:
    # Before: PgBouncer refused every connection ("unsupported startup parameter: options").
    port = free_port()
    env = cli_env(
        environ,
        **behind(pgbouncer, database_url),
        PORT=str(port),
        NEXT_PRIVATE_INTERNAL_WEBAPP_URL=f"http://127.0.0.1:{port}",
        NEXT_PRIVATE_JOBS_POLL_INTERVAL_SECONDS=SLOW_POLL_SECONDS,
    )
    processes.start(
        "web", "--actors", "tests.support.actors", "--host", "127.0.0.1", env=env, log=tmp_path / "web.log"
    )
    wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=30)
    result = docjobs(
        "trigger", "test.record", '{"key": "bounced"}', "--actors", "tests.support.actors", env=env
    )
    assert 0 == result.returncode, result.stderr
    # Woken by the self-request (no LISTEN without a direct URL, and a 60 s poll).
    wait_for(lambda: job_row(database_url, result.stdout.strip())["status"] == "COMPLETED", timeout=20)
    (ran,) = events(database_url, "bounced")
    assert ran["pid"] != os.getpid()
    assert "prepared statement" not in (tmp_path / "web.log").read_text()


def test_a_worker_sends_and_runs_many_jobs_through_pgbouncer_without_prepared_statements(
    pgbouncer: PgBouncer,
    make_runtime: Callable[..., Runtime],
    start_worker: Callable[..., dramatiq.Worker],
    database_url: str,
) -> None:
    # Synchronous commits: no start-up options even before, so what failed here was the
    # prepared job insert ("prepared statement docjobs_job_insert does not exist").
    current = make_runtime(
        **behind(pgbouncer, database_url),
        NEXT_PRIVATE_JOBS_SYNCHRONOUS_COMMIT="true",
        NEXT_PRIVATE_JOBS_POLL_INTERVAL_SECONDS="0.05",
    )
    sent = [actors.record_job.send(key=f"many-{n}") for n in range(30)]
    start_worker(current.broker, threads=4)
    current.join(timeout_seconds=30)
    assert {"COMPLETED"} == {job_row(database_url, m.message_id)["status"] for m in sent}
    assert 30 == len([e for e in events(database_url) if e["key"].startswith("many-")])
    # Without a direct URL nothing LISTENs (the jobs ran by polling), and nothing NOTIFYs.
    assert current.database is not None and not current.database.listens
    assert current.broker.doorbell is None  # type: ignore[attr-defined]


def test_a_doorbell_reaches_a_worker_behind_pgbouncer_through_the_direct_url(
    pgbouncer: PgBouncer,
    make_runtime: Callable[..., Runtime],
    start_worker: Callable[..., dramatiq.Worker],
    database_url: str,
) -> None:
    # Before: LISTEN went through PgBouncer, whose server connection forgot it after the
    # transaction; the job waited for the 60 s poll.
    current = make_runtime(
        **behind(pgbouncer, database_url, NEXT_PRIVATE_DIRECT_DATABASE_URL=database_url),
        NEXT_PRIVATE_JOBS_SYNCHRONOUS_COMMIT="true",
        NEXT_PRIVATE_JOBS_POLL_INTERVAL_SECONDS=SLOW_POLL_SECONDS,
    )
    start_worker(current.broker, threads=2)
    listener = wait_for(lambda: _listening(database_url), timeout=10)
    assert listener.startswith("docjobs-")
    # Another process sends (its self-request goes nowhere): only the doorbell wakes the worker.
    sender = runtime.build(current.settings)
    try:
        sender.broker.declare_actor(actors.record_job)
        message = actors.record_job.message(key="rung")
        sender.broker.enqueue(message)
        wait_for(lambda: job_row(database_url, message.message_id)["status"] == "COMPLETED", timeout=15)
    finally:
        sender.close()


def _listening(database_url: str) -> str | None:
    """The application_name of the connection LISTENing on the test database, directly."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = current_database() "
            "AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        ).fetchone()
    return str(row[0]) if row else None


def test_concurrent_migrations_through_pgbouncer_apply_each_migration_once(
    postgres_server: PostgresServer,
) -> None:
    # One server connection, shared by turns: a session advisory lock taken by one
    # migrator was held by that shared session, so the other took it too (or lost it).
    bouncer = PgBouncer(postgres_server.port, pool_size=1).start()
    name = f"bounced_migrations_{os.getpid()}"
    postgres_server.create_database(name)
    try:
        url = bouncer.url(name)
        outcomes: list[object] = []
        start = threading.Barrier(3)

        def run() -> None:
            start.wait(10)
            try:
                outcomes.append(len(migrate(url)))
            except Exception as exc:
                outcomes.append(exc)

        runners = [threading.Thread(target=run) for _ in range(3)]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join(60)
        failures = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        assert not failures
        # Between them (each migration is its own transaction, so they may share the work).
        assert len(sql.migrations()) == sum(outcomes)  # type: ignore[arg-type]
        with psycopg.connect(postgres_server.database_url(name)) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM docjobs_migration ORDER BY 1")]
            assert [m.version for m in sql.migrations()] == versions
            # Through PgBouncer nothing is left holding the lock.
            assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone() == (
                0,
            )
    finally:
        bouncer.stop()
        postgres_server.drop_database(name)


def test_each_process_stays_within_the_pool_size_and_names_its_connections(
    environ: dict[str, str], database_url: str, processes: Processes, tmp_path: Path
) -> None:
    # Before: two pools of NEXT_PRIVATE_JOBS_DB_POOL_SIZE each, plus a connection per
    # consumer and one for LISTEN (about 16 per busy process at the default 10), unnamed.
    port = free_port()
    env = cli_env(
        environ,
        PORT=str(port),
        NEXT_PRIVATE_INTERNAL_WEBAPP_URL=f"http://127.0.0.1:{port}",
        NEXT_PRIVATE_JOBS_DB_POOL_SIZE=str(BUDGET),
        NEXT_PRIVATE_JOBS_POLL_INTERVAL_SECONDS="0.05",
    )
    processes.start(
        "web",
        "--actors",
        "tests.support.budget_actors",
        "--host",
        "127.0.0.1",
        env=env,
        log=tmp_path / "web.log",
    )
    processes.start(
        "worker", "tests.support.budget_actors", "--threads", "8", env=env, log=tmp_path / "worker.log"
    )
    wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=30)
    jobs = 80
    result = docjobs(
        "trigger", "test.pooled_work", '{"seconds": 0.05}', "--actors", "tests.support.budget_actors", env=env
    )
    assert 0 == result.returncode, result.stderr
    with psycopg.connect(database_url, autocommit=True) as probe:
        # Fill the queue in one statement (copies of the triggered job), so both processes get busy.
        probe.execute(
            "INSERT INTO background_job (id, queue, actor, name, version, payload, args, options, max_retries) "
            "SELECT j.id || '-' || n, j.queue, j.actor, j.name, j.version, j.payload, j.args, j.options, "
            "j.max_retries FROM background_job j, generate_series(2, %s) n WHERE j.id = %s",
            (jobs, result.stdout.strip()),
        )
        probe.execute("NOTIFY docjobs_jobs, 'default'")
        most: dict[str, int] = {}
        most_in_all = 0
        unnamed: set[str] = set()
        deadline = time.monotonic() + 60
        while _unfinished(probe):
            assert time.monotonic() < deadline, "the jobs did not finish within 60 s"
            counts = probe.execute(
                "SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1"
            ).fetchall()
            most_in_all = max(most_in_all, sum(count for _, count in counts))
            for name, count in counts:
                if APPLICATION_NAME.match(name):
                    most[name] = max(most.get(name, 0), count)
                else:
                    unnamed.add(name)
            time.sleep(0.01)
    # Two processes (web and worker), whatever their connections are called.
    assert most_in_all <= 2 * BUDGET
    assert not unnamed, f"connections without a docjobs-<role>-<host>-<pid> name: {unnamed}"
    roles = {APPLICATION_NAME.match(name).group(1) for name in most}  # type: ignore[union-attr]
    assert {"web", "worker"} == roles, most
    assert all(count <= BUDGET for count in most.values()), most
    assert jobs == _completed(database_url)


def _unfinished(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM background_job WHERE status IN ('PENDING', 'PROCESSING')"
    ).fetchone()
    return int(row[0]) if row else 0


def _completed(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM background_job WHERE status = 'COMPLETED'").fetchone()
    return int(row[0]) if row else 0


def _commit_setting(conn: psycopg.Connection[dict[str, object]]) -> tuple[object, object]:
    row = conn.execute("SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'").fetchone()
    assert row is not None
    return row["setting"], row["source"]


def test_own_writes_skip_the_wal_flush_on_a_session_and_the_app_keeps_the_servers_setting(
    make_runtime: Callable[..., Runtime],
) -> None:
    # One pooled connection for both: the store's borrow sets it, the app's undoes it.
    current = make_runtime(NEXT_PRIVATE_JOBS_DB_POOL_SIZE="1", NEXT_PRIVATE_JOBS_LISTEN="false")
    assert current.store is not None and current.database is not None
    with current.store.database.connection() as conn:
        assert ("off", "session") == _commit_setting(conn)
    with current.database.transaction() as conn:
        assert "session" != _commit_setting(conn)[1]
    with current.store.database.connection() as conn:
        assert ("off", "session") == _commit_setting(conn)


def test_behind_pgbouncer_no_connection_carries_session_settings(
    pgbouncer: PgBouncer, make_runtime: Callable[..., Runtime], database_url: str
) -> None:
    current = make_runtime(**behind(pgbouncer, database_url))
    assert current.store is not None
    with current.store.database.connection() as conn:
        assert "session" != _commit_setting(conn)[1]


def test_a_budget_with_no_room_beside_listen_is_refused_naming_the_setting(environ: dict[str, str]) -> None:
    settings = Settings.from_environ({**environ, "NEXT_PRIVATE_JOBS_DB_POOL_SIZE": "1"})
    with pytest.raises(
        errors.SettingsError, match="^NEXT_PRIVATE_JOBS_DB_POOL_SIZE=1 leaves no pooled connection"
    ):
        runtime.build(settings)
