"""Dramatiq's stock RedisBroker: the baseline of the bullmq provider."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.measure import Drain, Figures, drain_with, idle_latency, median_of, median_run, timed_rate

ROOT = Path(__file__).resolve().parents[2]


def bench_redis(url: str, count: int, samples: int, repeats: int, log_dir: Path) -> Figures:
    """Single sends, ``group().run()`` as its bulk, a 1 x 8 drain and idle latency."""
    import dramatiq
    import redis
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url)
    dramatiq.set_broker(broker)
    from bench import actors_dramatiq

    client = redis.Redis.from_url(url)

    def unfinished() -> int:
        return int(client.hlen("dramatiq:default.msgs"))

    def sends() -> float:
        broker.flush_all()

        def send_all() -> None:
            for i in range(count):
                actors_dramatiq.noop.send(i)

        return timed_rate(count, send_all)

    def bulk() -> float:
        broker.flush_all()
        messages = [actors_dramatiq.noop.message(i) for i in range(count)]
        return timed_rate(count, lambda: dramatiq.group(messages).run())

    env = {**os.environ, "BENCH_REDIS_URL": url, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "dramatiq", "bench.redis_broker", "bench.actors_dramatiq",
        "--processes", "1", "--threads", "8",
    ]  # fmt: skip
    log = log_dir / "redis-worker.log"

    def drain() -> Drain:
        bulk()
        return drain_with(command, env, log, count, unfinished)

    for i in range(200):
        actors_dramatiq.noop.send(i)
    figures = Figures()
    figures.enqueue = median_of(repeats, sends)
    figures.bulk = median_of(repeats, bulk)
    figures.take_drain(median_run(repeats, drain))
    broker.flush_all()
    try:
        figures.latency_p50, figures.latency_p99 = idle_latency(
            command, env, log, unfinished, samples,
            lambda sent_at, port: actors_dramatiq.latency.send(sent_at, port),
        )  # fmt: skip
    finally:
        broker.close()
    return figures
