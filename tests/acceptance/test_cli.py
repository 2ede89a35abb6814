"""The command line, run as users run it: separate processes against a real PostgreSQL."""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from docjobs_devkit import PostgresServer
from docjobs_devkit.inngest import InngestServer
from docjobs_devkit.services import free_port

from docjobs.db import sql
from docjobs.runtime import Runtime
from tests.conftest import (
    events,
    inngest_overrides,
    job_row,
    wait_for,
)
from tests.support import actors
from tests.support.processes import Processes, cli_env, docjobs


def test_a_bad_setting_stops_start_up_with_one_line_naming_it(environ: dict[str, str]) -> None:
    for command in (["web"], ["worker"], ["migrate"], ["trigger", "test.record", "{}"]):
        result = docjobs(*command, env=cli_env(environ, NEXT_PRIVATE_JOBS_PROVIDER="kafka"))
        assert 2 == result.returncode, command
        expected = (
            "NEXT_PRIVATE_JOBS_PROVIDER: Input should be 'local', 'bullmq', 'inngest' or 'stub' (got 'kafka')"
        )
        assert [f"docjobs: error: {expected}"] == result.stderr.splitlines(), command
    result = docjobs("web", env=cli_env(environ, NEXT_PRIVATE_JOBS_CONCURRENCY="many"))
    assert 2 == result.returncode
    assert 1 == len(result.stderr.splitlines())
    assert result.stderr.startswith("docjobs: error: NEXT_PRIVATE_JOBS_CONCURRENCY: ")


def test_production_without_a_signing_certificate_stops_start_up(environ: dict[str, str]) -> None:
    env = cli_env(environ, NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS="")
    for command in (["worker"], ["web"]):
        result = docjobs(*command, env=env)
        assert 2 == result.returncode, command
        (line,) = result.stderr.splitlines()
        assert line.startswith(
            "docjobs: error: NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH or NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS "
            "is required in production"
        ), command


def test_an_unreachable_database_is_one_line_that_keeps_the_password_out(environ: dict[str, str]) -> None:
    env = cli_env(
        environ, NEXT_PRIVATE_DATABASE_URL=f"postgresql://docjobs:hunter2@127.0.0.1:{free_port()}/db"
    )
    result = docjobs("migrate", env=env)
    assert 3 == result.returncode
    assert 1 == len(result.stderr.splitlines())
    assert result.stderr.startswith("docjobs: error: the database is unreachable: ")
    assert "hunter2" not in result.stderr


def test_a_database_url_with_a_bad_escape_is_one_line_that_keeps_the_password_out(
    environ: dict[str, str],
) -> None:
    env = cli_env(environ, NEXT_PRIVATE_DATABASE_URL="postgresql://docjobs:pa%zzHUNTER2@127.0.0.1/db")
    for command in (["migrate"], ["web"], ["trigger", "test.record", "{}"]):
        result = docjobs(*command, env=env)
        assert 2 == result.returncode, command
        (line,) = result.stderr.splitlines()
        assert line.startswith("docjobs: error: NEXT_PRIVATE_DATABASE_URL: cannot be read by libpq"), line
        assert "HUNTER2" not in result.stderr + result.stdout


def test_migrate_runs_concurrently_and_idempotently(
    postgres_server: PostgresServer, environ: dict[str, str]
) -> None:
    url = postgres_server.create_database("cli_migrate")
    try:
        env = cli_env(environ, NEXT_PRIVATE_DATABASE_URL=url)
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "docjobs", "migrate"], env=env, stdout=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        outputs = [run.communicate(timeout=60)[0].strip() for run in runs]
        assert all(run.returncode == 0 for run in runs)
        # Each migration is its own transaction: the runs may share the work, never repeat it.
        counts = [
            re.fullmatch(r"docjobs: (\d+) migration\(s\) applied|docjobs: schema is up to date", out)
            for out in outputs
        ]
        assert all(counts), outputs
        assert len(sql.migrations()) == sum(int(match[1] or 0) for match in counts if match)
    finally:
        postgres_server.drop_database("cli_migrate")


def test_trigger_prints_the_job_id_and_refuses_a_bad_payload(
    environ: dict[str, str], database_url: str
) -> None:
    env = cli_env(environ)
    good = docjobs("trigger", "test.record", '{"key": "cli"}', "--actors", "tests.support.actors", env=env)
    assert 0 == good.returncode, good.stderr
    assert "cli" == job_row(database_url, good.stdout.strip())["payload"]["key"]
    bad = docjobs("trigger", "test.record", '{"key": 5}', "--actors", "tests.support.actors", env=env)
    assert 2 == bad.returncode
    assert bad.stderr.startswith("docjobs: error: test.record: key: Input should be a valid string")
    not_json = docjobs("trigger", "test.record", "{key", "--actors", "tests.support.actors", env=env)
    assert 2 == not_json.returncode
    assert "not valid JSON" in not_json.stderr
    # Each refused in one line, before anything is written: no traceback.
    refused = {
        ("[" * 10_000 + "]" * 10_000,): "the payload is refused: ",
        ('{"key": NaN}',): "the payload is refused: not valid JSON",
        ('{"key": "x"}', "--delay", "nan"): "delay must be between 0 and",
        ('{"key": "x"}', "--delay", "inf"): "delay must be between 0 and",
        ('{"key": "x"}', "--delay", "1e300"): "delay must be between 0 and",
        ('{"key": "x"}', "--delay", "-1"): "delay must be between 0 and",
        ('{"key": "x"}', "--id", "seal-73\nforged"): "holds a control or other unprintable character",
    }
    for arguments, says in refused.items():
        result = docjobs("trigger", "test.record", *arguments, "--actors", "tests.support.actors", env=env)
        assert 2 == result.returncode, (arguments, result.stderr)
        (line,) = result.stderr.splitlines()
        assert line.startswith("docjobs: error: ") and says in line, (arguments, line)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM background_job").fetchone() == (1,)


def test_a_job_sent_to_the_web_app_runs_through_the_self_request(
    environ: dict[str, str], database_url: str, processes: Processes, tmp_path: Path
) -> None:
    port = free_port()
    env = cli_env(
        environ,
        PORT=str(port),
        NEXT_PRIVATE_INTERNAL_WEBAPP_URL=f"http://127.0.0.1:{port}",
        # Only the self-request can wake the web app's worker quickly.
        NEXT_PRIVATE_JOBS_LISTEN="false",
        NEXT_PRIVATE_JOBS_POLL_INTERVAL_SECONDS="60",
    )
    # A job waiting before the web app starts: its worker's first claim takes it, and once
    # it has run, the worker sleeps until the poll (60 s) or a wake-up.
    first = docjobs("trigger", "test.record", '{"key": "first"}', "--actors", "tests.support.actors", env=env)
    assert 0 == first.returncode, first.stderr
    processes.start(
        "web", "--actors", "tests.support.actors", "--host", "127.0.0.1", env=env, log=tmp_path / "web.log"
    )
    wait_for(lambda: job_row(database_url, first.stdout.strip())["status"] == "COMPLETED", timeout=30)
    sent = time.monotonic()
    result = docjobs(
        "trigger", "test.record", '{"key": "via-web"}', "--actors", "tests.support.actors", env=env
    )
    assert 0 == result.returncode, result.stderr
    job_id = result.stdout.strip()
    wait_for(lambda: job_row(database_url, job_id)["status"] == "COMPLETED", timeout=20)
    assert time.monotonic() - sent < 15  # far below the 60 s poll
    (ran,) = events(database_url, "via-web")
    assert ran["pid"] != os.getpid()


def test_a_worker_killed_mid_job_leaves_the_job_to_another_worker(
    make_runtime: Callable[..., Runtime],
    environ: dict[str, str],
    database_url: str,
    processes: Processes,
    tmp_path: Path,
) -> None:
    lease = {"NEXT_PRIVATE_JOBS_LEASE_SECONDS": "1.5"}
    env = cli_env(environ, **lease)
    first = processes.start(
        "worker", "tests.support.actors", "--threads", "2", env=env, log=tmp_path / "a.log"
    )
    make_runtime(**lease)
    message = actors.sleep_job.send(key="killed", seconds=2.0)
    started = wait_for(lambda: events(database_url, "killed"), timeout=30)
    victim = started[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    processes.start("worker", "tests.support.actors", "--threads", "2", env=env, log=tmp_path / "b.log")
    row = wait_for(
        lambda: (r := job_row(database_url, message.message_id))["status"] == "COMPLETED" and r, timeout=40
    )
    runs = events(database_url, "killed")
    assert ["started", "started", "finished"] == [event["kind"] for event in runs]
    assert victim == runs[0]["pid"] != runs[1]["pid"] == runs[2]["pid"]
    assert 2 == row["attempts"]
    assert 1 == row["retried"]
    assert "stopped heartbeating" in row["last_error"]


def test_worker_and_scheduler_say_inngest_runs_the_jobs(tmp_path: Path) -> None:
    env = cli_env(
        {"NODE_ENV": "development", "NEXT_PRIVATE_JOBS_PROVIDER": "inngest"},
        NEXT_PRIVATE_JOBS_DATA_DIR=str(tmp_path),
    )
    for command in ("worker", "scheduler"):
        result = docjobs(command, env=env)
        assert 2 == result.returncode, result.stderr
        assert "Inngest runs the jobs" in result.stderr


def test_docjobs_inngest_sync_registers_the_configured_serve_url_by_default(
    environ: dict[str, str], inngest_emulator: InngestServer
) -> None:
    settings = {
        **environ,
        **inngest_overrides(
            inngest_emulator,
            NEXT_PUBLIC_WEBAPP_URL="https://sign.example.com",
            NEXT_PUBLIC_BASE_PATH="/sign",
            INNGEST_SERVE_ORIGIN="https://jobs.example.com:8443",
        ),
    }
    result = docjobs("inngest", "sync", env=cli_env(settings))
    assert 0 == result.returncode, result.stderr
    (registration,) = inngest_emulator.registrations
    assert "https://jobs.example.com:8443/sign/api/jobs" == registration["url"]


def test_inngest_sync_registers_every_function_and_reports_it(
    environ: dict[str, str], inngest_emulator: InngestServer
) -> None:
    settings = {**environ, **inngest_overrides(inngest_emulator)}
    url = "https://sign.example.com/api/jobs"
    result = docjobs("inngest", "sync", "--url", url, env=cli_env(settings))
    assert 0 == result.returncode, result.stderr
    (registration,) = inngest_emulator.registrations
    assert url == registration["url"]
    ids = {function["id"] for function in registration["functions"]}
    assert {"documenso-app-internal.seal-document", "documenso-app-internal.cleanup-rate-limits"} <= ids
    lines = result.stdout.splitlines()
    assert f"Synced documenso-app at {url}: {len(ids)} functions" == lines[0]
    assert any(
        "documenso-app-internal.cleanup-rate-limits" in line
        and "event internal.cleanup-rate-limits, cron */15 * * * *" in line
        for line in lines
    )
    wrong = {**settings, "INNGEST_SIGNING_KEY": "signkey-test-" + "00" * 32}
    refused = docjobs("inngest", "sync", "--url", url, env=cli_env(wrong))
    assert 2 == refused.returncode
    assert "Inngest refused the sync" in refused.stderr and "00" * 32 not in refused.stderr


def test_admin_create_user_makes_an_admin_who_can_sign_in(environ: dict[str, str], database_url: str) -> None:
    env = cli_env(environ)
    run = functools.partial(
        subprocess.run, [sys.executable, "-m", "docjobs", "admin", "create-user", "Root@Example.com"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    short = run(input="too short\n")
    assert 2 == short.returncode
    assert "at least 12 characters; nothing was changed" in short.stderr
    made = run(input="a password long enough\n")
    assert 0 == made.returncode, made.stderr
    assert "root@example.com" in made.stdout and "ADMIN" in made.stdout
    assert "a password long enough" not in made.stdout + made.stderr
    with psycopg.connect(database_url) as conn:
        roles, password_hash = conn.execute(
            "SELECT roles, password_hash FROM \"user\" WHERE email = 'root@example.com'"
        ).fetchone()
    assert "ADMIN" in roles
    assert password_hash.startswith("$argon2id$")
