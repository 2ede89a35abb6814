"""docjobs' local provider (a PostgreSQL table) as ``make bench`` measures it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.measure import (
    Drain,
    Figures,
    drain_with,
    idle_latency,
    median_of,
    median_run,
    postgres_server_pid,
    timed_rate,
)

ROOT = Path(__file__).resolve().parents[2]
# Sends measured with the other synchronous_commit: enough for a rate, short enough to keep the run short.
OTHER_DURABILITY_SENDS = 5000


def commit_mode(synchronous_commit: bool) -> str:
    """How the tables name a durability setting."""
    return f"synchronous_commit {'on' if synchronous_commit else 'off'}"


def local_environ(url: str, log_dir: Path) -> dict[str, str]:
    """The settings of the bench's docjobs processes on the local provider (a development certificate)."""
    from docjobs.pdf.identity import write_development_certificate

    certificate = log_dir / "bench-signing.p12"
    write_development_certificate(certificate)
    return {
        "NEXT_PRIVATE_DATABASE_URL": url,
        "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "bench-secondary-key",
        "NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH": str(certificate),
        # No web app serves the bench's workers: self-requests are refused at once.
        "NEXT_PRIVATE_INTERNAL_WEBAPP_URL": "http://127.0.0.1:9",
        "NEXT_PRIVATE_JOBS_LOG_LEVEL": "ERROR",
    }


def bench_local(
    url: str, count: int, samples: int, repeats: int, log_dir: Path
) -> tuple[dict[str, Figures], dict[str, str], bool]:
    """The ``local``, ``local_other`` (sends with the other durability) and ``local2`` rows, their
    labels, and whether docjobs' default enqueue is durable (synchronous_commit on)."""
    from docjobs import jobs, runtime
    from docjobs.settings import Settings

    environ = local_environ(url, log_dir)
    settings = Settings.from_environ(environ)
    runtime.configure(settings)
    from bench import actors_docjobs

    server_pid = postgres_server_pid(url)

    def unfinished() -> int:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM background_job WHERE status IN ('PENDING', 'PROCESSING')"
            ).fetchone()
        return int(row[0]) if row else 0

    def truncate() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE background_job CASCADE")
            conn.execute("VACUUM ANALYZE background_job")

    def sends(total: int) -> Callable[[], float]:
        def measure() -> float:
            truncate()

            def send_all() -> None:
                for i in range(total):
                    actors_docjobs.noop.send(n=i)

            return timed_rate(total, send_all)

        return measure

    payloads = [{"n": i} for i in range(count)]

    def bulk() -> float:
        truncate()
        return timed_rate(count, lambda: jobs.trigger_many("bench.noop", payloads))

    env = {**os.environ, **environ, "PYTHONPATH": str(ROOT)}
    log = log_dir / "docjobs-worker.log"

    def command(processes: int) -> list[str]:
        return [
            sys.executable, "-m", "docjobs", "worker", "bench.actors_docjobs",
            "--processes", str(processes), "--threads", "8",
        ]  # fmt: skip

    def drain(processes: int) -> Callable[[], Drain]:
        def measure() -> Drain:
            bulk()
            return drain_with(command(processes), env, log, count, unfinished, server_pid)

        return measure

    for i in range(200):  # warm up connections and prepared statements
        actors_docjobs.noop.send(n=i)
    local, other, two = Figures(), Figures(), Figures()
    try:
        local.enqueue = median_of(repeats, sends(count))
        runtime.configure(settings.replace(synchronous_commit=not settings.synchronous_commit))
        other.enqueue = median_of(repeats, sends(min(count, OTHER_DURABILITY_SENDS)))
        other.bulk = median_of(repeats, bulk)
        runtime.configure(settings)
        local.bulk = median_of(repeats, bulk)
        local.take_drain(median_run(repeats, drain(1)))
        two.take_drain(median_run(repeats, drain(2)))
        truncate()
        local.latency_p50, local.latency_p99 = idle_latency(
            command(1), env, log, unfinished, samples,
            lambda sent_at, port: actors_docjobs.latency.send(sent_at=sent_at, port=port),
        )  # fmt: skip
    finally:
        runtime.reset()
    labels = {
        "local": f"docjobs local ({commit_mode(settings.synchronous_commit)}, its default)",
        "local_other": f"docjobs local, {commit_mode(not settings.synchronous_commit)}",
        "local2": "docjobs local, 2 worker processes x 8 threads",
    }
    return {"local": local, "local_other": other, "local2": two}, labels, settings.synchronous_commit
