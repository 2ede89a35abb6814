"""docjobs' bullmq provider (Redis, job history on) as ``make bench`` measures it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.measure import Drain, Figures, drain_with, idle_latency, median_of, median_run, timed_rate

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "benchbullmq"


def bench_bullmq(
    database_url: str, redis_url: str, count: int, samples: int, repeats: int, log_dir: Path
) -> Figures:
    """Single sends, a 1 x 8 drain and idle latency, with the same jobs as the RedisBroker baseline."""
    import redis

    from docjobs import runtime
    from docjobs.settings import Settings

    environ = {
        "NEXT_PRIVATE_JOBS_PROVIDER": "bullmq",
        "NEXT_PRIVATE_REDIS_URL": redis_url,
        "NEXT_PRIVATE_REDIS_PREFIX": PREFIX,
        "NEXT_PRIVATE_DATABASE_URL": database_url,
        "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "bench-secondary-key",
        "NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH": str(log_dir / "bench-signing.p12"),
        "NEXT_PRIVATE_JOBS_LOG_LEVEL": "ERROR",
    }
    current = runtime.configure(Settings.from_environ(environ))
    from bench import actors_docjobs

    client = redis.Redis.from_url(redis_url)

    def unfinished() -> int:
        return int(client.hlen(f"{PREFIX}:default.msgs"))

    def fill() -> float:
        current.broker.flush_all()

        def send_all() -> None:
            for i in range(count):
                actors_docjobs.noop.send(n=i)

        return timed_rate(count, send_all)

    env = {**os.environ, **environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "docjobs", "worker", "bench.actors_docjobs", "--threads", "8",
    ]  # fmt: skip
    log = log_dir / "bullmq-worker.log"

    def drain() -> Drain:
        fill()
        return drain_with(command, env, log, count, unfinished)

    figures = Figures()
    try:
        figures.enqueue = median_of(repeats, fill)
        figures.take_drain(median_run(repeats, drain))
        current.broker.flush_all()
        figures.latency_p50, figures.latency_p99 = idle_latency(
            command, env, log, unfinished, samples,
            lambda sent_at, port: actors_docjobs.latency.send(sent_at=sent_at, port=port),
        )  # fmt: skip
    finally:
        runtime.reset()
    return figures
