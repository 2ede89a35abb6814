"""The bullmq provider's command line, as separate processes against real Redis and PostgreSQL."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psycopg
import redis
from docjobs_devkit.services import free_port

from docjobs import runtime
from docjobs.runtime import Runtime
from docjobs.settings import Settings
from tests.conftest import events, wait_for
from tests.support import actors
from tests.support.processes import Processes, cli_env, docjobs

HEARTBEAT_TIMEOUT = "2"


def test_a_killed_workers_job_runs_again_within_the_heartbeat_timeout(
    make_runtime: Callable[..., Runtime],
    bullmq_environ: dict[str, str],
    database_url: str,
    processes: Processes,
    tmp_path: Path,
) -> None:
    settings = {**bullmq_environ, "NEXT_PRIVATE_JOBS_LEASE_SECONDS": HEARTBEAT_TIMEOUT}
    # As many jobs held as threads, so each worker gets two of the four.
    env = cli_env(settings, dramatiq_queue_prefetch="2")
    first = processes.start(
        "worker", "tests.support.actors", "--threads", "2", env=env, log=tmp_path / "a.log"
    )
    processes.start("worker", "tests.support.actors", "--threads", "2", env=env, log=tmp_path / "b.log")
    runtime.configure(Settings.from_environ(settings))
    # Both workers are consuming: each one's consumer beats in Redis on its first fetch.
    heartbeats = redis.Redis.from_url(settings["NEXT_PRIVATE_REDIS_URL"])
    key = f"{settings['NEXT_PRIVATE_REDIS_PREFIX']}:__heartbeats__"
    wait_for(lambda: heartbeats.zcard(key) >= 2, timeout=30)
    heartbeats.close()
    for index in range(4):
        actors.sleep_job.send(key=f"killed{index}", seconds=3.0)
    victim_start = wait_for(
        lambda: next(
            (e for e in events(database_url) if e["kind"] == "started" and _in(first, e["pid"])), None
        ),
        timeout=30,
    )
    os.kill(victim_start["pid"], signal.SIGKILL)
    os.killpg(first.pid, signal.SIGKILL)
    killed_at = _database_now(database_url)
    wait_for(lambda: len([e for e in events(database_url) if e["kind"] == "finished"]) >= 4, timeout=30)
    finished = {e["key"] for e in events(database_url) if e["kind"] == "finished"}
    assert {f"killed{index}" for index in range(4)} == finished
    # The victim's job started again elsewhere within the heartbeat timeout, one keeper
    # round, and the 3 s the other worker may still be busy (plus slack for this machine).
    (rerun,) = [e for e in events(database_url, victim_start["key"]) if e["kind"] == "started"][1:]
    assert rerun["pid"] != victim_start["pid"]
    recovered_after = (rerun["at"] - killed_at).total_seconds()
    assert recovered_after < float(HEARTBEAT_TIMEOUT) + 0.5 + 3.0 + 2.0, recovered_after


def _database_now(url: str) -> datetime:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _in(process: object, pid: int) -> bool:
    """Whether ``pid`` is the process or one of its children (dramatiq forks workers)."""
    try:
        return os.getpgid(pid) == process.pid  # type: ignore[attr-defined]
    except ProcessLookupError:
        return False


def test_bullmq_without_a_url_or_with_an_unreachable_one_stops_start_up(
    bullmq_environ: dict[str, str],
) -> None:
    missing = docjobs("web", env=cli_env({**bullmq_environ, "NEXT_PRIVATE_REDIS_URL": ""}))
    assert 2 == missing.returncode
    assert missing.stderr.startswith(
        "docjobs: error: NEXT_PRIVATE_REDIS_URL is required with NEXT_PRIVATE_JOBS_PROVIDER=bullmq"
    )
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    # A one-shot command says so and exits 3; `docjobs web` and `docjobs worker` wait for Redis
    # with backoff instead (tests/acceptance/test_cli_startup.py).
    for command in (["trigger", "internal.cleanup-rate-limits", "{}"],):
        unreachable = docjobs(*command, env=cli_env({**bullmq_environ, "NEXT_PRIVATE_REDIS_URL": url}))
        assert 3 == unreachable.returncode, unreachable.stderr
        (line,) = unreachable.stderr.splitlines()
        assert "Redis is unreachable" in line and "database" not in line, line
        assert "hunter2" not in line
    bad = docjobs("web", env=cli_env({**bullmq_environ, "NEXT_PRIVATE_REDIS_URL": "http://redis:6379"}))
    assert 2 == bad.returncode
    assert bad.stderr.startswith("docjobs: error: NEXT_PRIVATE_REDIS_URL: ")
