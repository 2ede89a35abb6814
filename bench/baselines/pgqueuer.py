"""pgqueuer (its async API, batch size 10): the best Postgres queue, the local provider's baseline.

pgqueuer runs on its own driver, asyncpg (its psycopg driver, tried first, woke the
worker only by its poll: about 1 s send-to-start at idle).

pgqueuer's connections keep the server's durability (``synchronous_commit`` on): its
enqueues, like docjobs' by default, have reached the disk when they return.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
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


def bench_pgqueuer(url: str, count: int, samples: int, repeats: int, log_dir: Path) -> Figures:
    """Single enqueues, one bulk ``enqueue`` of lists, a one-process drain and idle latency."""
    import asyncpg
    from pgqueuer import AsyncpgDriver
    from pgqueuer.queries import Queries

    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(asyncpg.connect(url))
    queries = Queries(AsyncpgDriver(connection))
    loop.run_until_complete(queries.install())

    def run(action: Callable[[], Awaitable[object]]) -> Callable[[], object]:
        return lambda: loop.run_until_complete(action())

    def unfinished() -> int:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM pgqueuer").fetchone()
        return int(row[0]) if row else 0

    def truncate() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE pgqueuer, pgqueuer_log")
            conn.execute("VACUUM ANALYZE pgqueuer")

    async def send_all(total: int) -> None:
        for i in range(total):
            await queries.enqueue("noop", orjson.dumps({"n": i}))

    payloads = [orjson.dumps({"n": i}) for i in range(count)]

    def sends() -> float:
        truncate()
        return timed_rate(count, run(lambda: send_all(count)))

    def bulk() -> float:
        truncate()
        return timed_rate(count, run(lambda: queries.enqueue(["noop"] * count, list(payloads), [0] * count)))

    env = {**os.environ, "BENCH_PGQUEUER_URL": url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bench.baselines.pgqueuer_worker"]
    log = log_dir / "pgqueuer-worker.log"
    server_pid = postgres_server_pid(url)

    def drain() -> Drain:
        bulk()
        return drain_with(command, env, log, count, unfinished, server_pid)

    def send_probe(sent_at: float, port: int) -> None:
        loop.run_until_complete(queries.enqueue("latency", orjson.dumps({"sent_at": sent_at, "port": port})))

    run(lambda: send_all(200))()  # warm up the connection
    figures = Figures()
    try:
        figures.enqueue = median_of(repeats, sends)
        figures.bulk = median_of(repeats, bulk)
        figures.take_drain(median_run(repeats, drain))
        truncate()
        figures.latency_p50, figures.latency_p99 = idle_latency(
            command, env, log, unfinished, samples, send_probe
        )
    finally:
        loop.run_until_complete(connection.close())
        loop.close()
    return figures
