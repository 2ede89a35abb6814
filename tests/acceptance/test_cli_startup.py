"""Start-up errors that name their cause (issue 20): each command run as users run it.

A long-running command (``docjobs web|worker|scheduler``, plain ``dramatiq`` and
``periodiq`` on ``docjobs.runtime:broker``) checks its servers at start: what no retry
fixes is one line and exit 2; a server that is down is waited for with a capped
exponential backoff, one log line per step, and the process starts when it answers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from docjobs_devkit import FAST_SETTINGS, PostgresServer, RedisServer
from docjobs_devkit.services import free_port

from docjobs.db import sql
from docjobs.db.migrate import migrate
from tests.conftest import events, job_row, wait_for
from tests.support.actors import EVENTS_TABLE
from tests.support.pg_hba import role_with_password
from tests.support.processes import Processes, cli_env, docjobs

#: A start-up wait's log line: "... ; retrying in 0.5 s."
RETRY_LINE = re.compile(r"retrying in ([\d.]+) s\.")
#: How many backoff steps a test watches (0.5, 1, 2 s: the gaps grow).
WATCHED_STEPS = 3
PERIODIQ = str(Path(sys.executable).parent / "periodiq")


def run(command: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def dramatiq_command(broker: str = "docjobs.runtime:broker") -> list[str]:
    return [sys.executable, "-m", "dramatiq", broker, "docjobs.actors", "--processes", "1", "--threads", "1"]


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("docjobs: error: ")]


@pytest.fixture
def unmigrated_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"unmigrated_{os.getpid()}_{time.monotonic_ns()}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


def test_an_unmigrated_database_stops_every_long_running_command_in_one_line(
    environ: dict[str, str], unmigrated_url: str
) -> None:
    env = cli_env(environ, NEXT_PRIVATE_DATABASE_URL=unmigrated_url)
    known = len(sql.migrations())
    expected = (
        f"docjobs: error: the database has no docjobs schema (0 of {known} migrations applied): "
        "run docjobs migrate"
    )
    for command in (["web", "--port", str(free_port())], ["worker"], ["scheduler"]):
        # Before: the consumer logged CRITICAL `relation "background_job" does not exist` every 3 s, for ever.
        result = docjobs(*command, env=env, timeout=30)
        assert (2, [expected]) == (result.returncode, result.stderr.splitlines()), command
    for command in (
        dramatiq_command(),
        dramatiq_command("docjobs.runtime"),
        [PERIODIQ, "docjobs.runtime:broker"],
    ):
        result = run(command, env, timeout=30)
        assert 2 == result.returncode, command
        assert [expected] == error_lines(result.stderr), command
        assert "Traceback" not in result.stderr, command


UNMIGRATED_SENDER = """
import sys

import docjobs
from docjobs import jobs


@docjobs.actor("app.unmigrated")
def unmigrated(*, note: str = "") -> None:
    pass


if sys.argv[1] == "send":
    unmigrated.send(note="x")
else:
    jobs.trigger("app.unmigrated", {"note": "x"})
"""


def test_app_code_sending_to_an_unmigrated_database_ends_its_traceback_with_run_docjobs_migrate(
    environ: dict[str, str], unmigrated_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "send_unmigrated.py"
    script.write_text(UNMIGRATED_SENDER)
    env = cli_env(environ, NEXT_PRIVATE_DATABASE_URL=unmigrated_url)
    expected = (
        "docjobs.db.readiness.SchemaNotMigrated: the database lacks docjobs' schema "
        '(relation "background_job" does not exist): run docjobs migrate'
    )
    for way in ("send", "trigger"):
        result = run([sys.executable, str(script), way], env)
        assert 1 == result.returncode, result.stderr
        lines = result.stderr.splitlines()
        # Before: psycopg.errors.UndefinedTable: relation "background_job" does not exist, and no hint.
        assert expected == lines[-1], result.stderr
        assert "UndefinedTable" not in result.stderr
        assert 1 == sum("run docjobs migrate" in line for line in lines), result.stderr


@pytest.mark.parametrize("command", ["worker", "web"])
def test_a_process_started_before_its_database_waits_with_backoff_then_runs_jobs(
    command: str, environ: dict[str, str], processes: Processes, tmp_path: Path
) -> None:
    server = PostgresServer(settings=FAST_SETTINGS).start()
    try:
        url = server.create_database("late")
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(EVENTS_TABLE)
        # Down before the process starts: nothing listens on its port ("fast" shutdown).
        assert server.process is not None
        server.process.send_signal(signal.SIGINT)
        server.process.wait(30)
        server.process = None
        port = free_port()
        url_with_password = f"postgresql://postgres:hunter2@127.0.0.1:{server.port}/late"
        env = cli_env(
            environ,
            NEXT_PRIVATE_DATABASE_URL=url_with_password,
            PORT=str(port),
            NEXT_PRIVATE_INTERNAL_WEBAPP_URL=f"http://127.0.0.1:{port}",
        )
        log = tmp_path / f"{command}.log"
        arguments = ["--actors", "tests.support.actors", "--host", "127.0.0.1"] if command == "web" else []
        modules = ["tests.support.actors"] if command == "worker" else []
        processes.start(command, *modules, *arguments, env=env, log=log)
        seen = _retry_lines(log, WATCHED_STEPS)
        assert all("is unreachable: Connection refused" in line for line, _, _ in seen), seen
        assert all(f"127.0.0.1:{server.port}" in line for line, _, _ in seen), seen
        delays = [delay for _, delay, _ in seen]
        assert [0.5, 1.0, 2.0] == delays
        # Each step waited at least its stated delay (one line per step, not one every 3 s).
        for (_, delay, at), (_, _, next_at) in zip(seen, seen[1:], strict=False):
            assert next_at - at >= delay * 0.9, seen
        server.restart()
        trigger = docjobs(
            "trigger", "test.record", '{"key": "late"}', "--actors", "tests.support.actors", env=env
        )
        assert 0 == trigger.returncode, trigger.stderr
        job_id = trigger.stdout.strip()
        wait_for(lambda: job_row(url, job_id)["status"] == "COMPLETED", timeout=60)
        assert 1 == len(events(url, "late"))
        text = log.read_text()
        assert "hunter2" not in text
        assert "Traceback" not in text
    finally:
        processes.stop_all()
        server.stop()


def test_a_bullmq_worker_started_before_redis_waits_with_backoff_then_runs_jobs(
    bullmq_environ: dict[str, str], database_url: str, processes: Processes, tmp_path: Path
) -> None:
    redis_server = RedisServer()
    redis_server.port = free_port()  # where it will start, later
    try:
        env = cli_env(bullmq_environ, NEXT_PRIVATE_REDIS_URL=redis_server.url)
        log = tmp_path / "worker.log"
        processes.start("worker", "tests.support.actors", env=env, log=log)
        # Before: a 33-line traceback, and exit 3.
        seen = _retry_lines(log, WATCHED_STEPS)
        assert all("Redis is unreachable" in line and "Connection refused" in line for line, _, _ in seen), (
            seen
        )
        assert [0.5, 1.0, 2.0] == [delay for _, delay, _ in seen]
        redis_server.start()
        trigger = docjobs(
            "trigger", "test.record", '{"key": "redis"}', "--actors", "tests.support.actors", env=env
        )
        assert 0 == trigger.returncode, trigger.stderr
        wait_for(lambda: events(database_url, "redis") != [], timeout=60)
        assert "Traceback" not in log.read_text()
    finally:
        processes.stop_all()
        redis_server.stop()


def _retry_lines(log: Path, count: int) -> list[tuple[str, float, float]]:
    """The first ``count`` start-up retry lines of ``log``: each line, its delay, when it was seen."""
    seen: list[tuple[str, float, float]] = []

    def more() -> bool:
        lines = [line for line in log.read_text().splitlines() if RETRY_LINE.search(line)]
        for line in lines[len(seen) :]:
            match = RETRY_LINE.search(line)
            assert match is not None
            seen.append((line, float(match[1]), time.monotonic()))
        return len(seen) >= count

    wait_for(more, timeout=30, interval=0.02)
    return seen[:count]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("nobody@127.0.0.1:{port}/{db}", 'role "nobody" does not exist'),
        ("postgres@127.0.0.1:{port}/nodb", 'database "nodb" does not exist'),
    ],
)
def test_a_wrong_role_or_database_is_said_at_once_in_libpqs_words(
    environ: dict[str, str], postgres_server: PostgresServer, path: str, reason: str
) -> None:
    db = environ["NEXT_PRIVATE_DATABASE_URL"].rsplit("/", 1)[1]
    url = "postgresql://" + path.format(port=postgres_server.port, db=db)
    env = cli_env(environ, NEXT_PRIVATE_DATABASE_URL=url)
    for command in (
        ["trigger", "test.record", '{"key": "x"}', "--actors", "tests.support.actors"],
        ["worker"],
        ["web"],
    ):
        # Before: 10-12 s, then "pool initialization incomplete after 10.0 sec" (trigger),
        # or a retry every 3 s for ever (web, worker).
        result = docjobs(*command, env=env, timeout=30)
        assert 2 == result.returncode, (command, result.stderr)
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"docjobs: error: the database at 127.0.0.1:{postgres_server.port} refused"), (
            line
        )
        assert reason in line and "NEXT_PRIVATE_DATABASE_URL" in line, line


def test_a_missing_password_or_ssl_the_server_lacks_stops_start_up_in_one_line(
    environ: dict[str, str], postgres_server: PostgresServer
) -> None:
    db = environ["NEXT_PRIVATE_DATABASE_URL"].rsplit("/", 1)[1]
    where = f"127.0.0.1:{postgres_server.port}"
    with role_with_password(postgres_server, db) as without_password:
        cases = {
            without_password: (
                f"docjobs: error: cannot connect to the database at {where}: the server asks for a password "
                "and NEXT_PRIVATE_DATABASE_URL has none (fe_sendauth: no password supplied) "
                "(check NEXT_PRIVATE_DATABASE_URL)"
            ),
            f"{environ['NEXT_PRIVATE_DATABASE_URL']}?sslmode=require": (
                f"docjobs: error: cannot connect to the database at {where}: server does not support SSL, "
                "but SSL was required (check NEXT_PRIVATE_DATABASE_URL)"
            ),
        }
        for url, expected in cases.items():
            env = cli_env(environ, NEXT_PRIVATE_DATABASE_URL=url)
            for command in (["worker"], ["web", "--port", str(free_port())]):
                # Before: "the database at ... is unreachable: fe_sendauth: no password supplied;
                # retrying in 0.5 s", and so on for ever.
                result = docjobs(*command, env=env, timeout=30)
                assert (2, [expected]) == (result.returncode, result.stderr.splitlines()), command


def test_a_redis_url_redis_refuses_stops_start_up_in_one_line(bullmq_environ: dict[str, str]) -> None:
    locked = RedisServer().start()
    try:
        redis.Redis.from_url(locked.url).config_set("requirepass", "not-given")
        port = bullmq_environ["NEXT_PRIVATE_REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
        cases = {
            f"redis://127.0.0.1:{port}/99": (
                "docjobs: error: NEXT_PRIVATE_REDIS_URL: Redis has no database 99 (DB index is out of range; "
                "its `databases` setting says how many there are, 16 by default)"
            ),
            locked.url: "docjobs: error: Redis needs a password: NEXT_PRIVATE_REDIS_URL has none",
        }
        for url, expected in cases.items():
            env = cli_env(bullmq_environ, NEXT_PRIVATE_REDIS_URL=url)
            for command in (["worker"], ["web", "--port", str(free_port())]):
                # Before: a 52-line traceback and exit 1 (database 99); Redis's HELLO wording (no password).
                result = docjobs(*command, env=env, timeout=30)
                assert (2, [expected]) == (result.returncode, result.stderr.splitlines()), command
    finally:
        locked.stop()


def test_a_malformed_database_url_is_a_settings_error_without_the_password(environ: dict[str, str]) -> None:
    env = cli_env(
        environ, NEXT_PRIVATE_DATABASE_URL="postgresql://docjobs:hunter2@127.0.0.1:1/db?sslmode=bogus"
    )
    trigger = ["trigger", "test.record", '{"key": "x"}', "--actors", "tests.support.actors"]
    for command in (["migrate"], trigger, ["web"], ["worker"]):
        result = docjobs(*command, env=env, timeout=30)
        # Before: exit 3, "the database is unreachable: connection is bad: invalid sslmode value".
        assert 2 == result.returncode, (command, result.stderr)
        assert ['docjobs: error: NEXT_PRIVATE_DATABASE_URL: invalid sslmode value: "bogus"'] == (
            result.stderr.splitlines()
        ), command
        assert "hunter2" not in result.stdout + result.stderr


def test_dramatiq_and_periodiq_say_a_bad_setting_in_one_line(environ: dict[str, str]) -> None:
    env = cli_env(environ, NEXT_PRIVATE_JOBS_PROVIDER="kafka")
    expected = "docjobs: error: NEXT_PRIVATE_JOBS_PROVIDER: Input should be 'local', 'bullmq', 'inngest' or 'stub' (got 'kafka')"
    for command in (
        dramatiq_command(),
        dramatiq_command("docjobs.runtime"),
        [PERIODIQ, "docjobs.runtime:broker"],
    ):
        result = run(command, env, timeout=30)
        # Before: a 31-line traceback (exit 1), the one clear line at its end.
        assert 2 == result.returncode, (command, result.stderr)
        assert [expected] == error_lines(result.stderr), command
        assert "Traceback" not in result.stderr, command


def test_every_missing_production_secret_is_named_in_one_line(environ: dict[str, str]) -> None:
    local = cli_env(
        environ, NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY="", NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS=""
    )
    for command in (["worker"], ["web"]):
        result = docjobs(*command, env=local, timeout=30)
        assert 2 == result.returncode, command
        (line,) = result.stderr.splitlines()
        # Before: only NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY; the certificate came after it was set.
        assert "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY is required in production" in line, line
        assert "NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS is required in production" in line, line
    inngest = cli_env(environ, NEXT_PRIVATE_JOBS_PROVIDER="inngest")
    result = docjobs("web", env=inngest, timeout=30)
    assert 2 == result.returncode
    (line,) = result.stderr.splitlines()
    assert "INNGEST_SIGNING_KEY and INNGEST_EVENT_KEY are required in production" in line, line


def test_commands_that_need_no_secret_do_not_ask_for_one(environ: dict[str, str]) -> None:
    bare = cli_env(
        environ,
        NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY="",
        NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS="",
        PORT=str(free_port()),
    )
    migrated = docjobs("migrate", env=bare, timeout=30)
    assert (0, "docjobs: schema is up to date\n", "") == (
        migrated.returncode,
        migrated.stdout,
        migrated.stderr,
    )
    health = docjobs("health", "web", env=bare, timeout=30)
    # Unhealthy (nothing serves on PORT), not a missing key: exit 1, the check's own line.
    assert 1 == health.returncode, health.stderr
    assert health.stdout.startswith("web: http://127.0.0.1:") and "does not answer" in health.stdout
    inngest = cli_env(environ, NEXT_PRIVATE_JOBS_PROVIDER="inngest")
    worker = docjobs("worker", env=inngest, timeout=30)
    assert 2 == worker.returncode
    (line,) = worker.stderr.splitlines()
    assert line.startswith(
        "docjobs: error: docjobs worker has nothing to do with NEXT_PRIVATE_JOBS_PROVIDER=inngest"
    )
