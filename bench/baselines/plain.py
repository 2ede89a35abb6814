"""The plain-SQL floor: what psycopg alone does with one table, measured like docjobs.

Enqueue is one prepared INSERT per call, bulk is one COPY, and the drain is
``plain_worker`` (1 process x 8 threads) claiming 1 or 50 jobs per statement with
FOR UPDATE SKIP LOCKED. Enqueues use docjobs' default synchronous_commit (the same
durability), claims and deletes run with it off, as docjobs' claims and acks do.
"""

from __future__ import annotations

import os
import sys
from functools import partial
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
SCHEMA = """
CREATE TABLE IF NOT EXISTS plain_job (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload jsonb NOT NULL,
    claimed_at timestamptz
);
CREATE OR REPLACE FUNCTION plain_job_notify() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_notify('plain_job', ''); RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER plain_job_inserted AFTER INSERT ON plain_job
    FOR EACH STATEMENT EXECUTE FUNCTION plain_job_notify();
"""
INSERT = "INSERT INTO plain_job (payload) VALUES (%s)"


def bench_plain(
    url: str, count: int, samples: int, repeats: int, log_dir: Path, synchronous_commit: bool
) -> dict[str, Figures]:
    """The ``plain1`` row (enqueue, bulk, claim 1) and the ``plain50`` row (claim 50)."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(SCHEMA)
    conn.execute(f"SET synchronous_commit TO {'on' if synchronous_commit else 'off'}")

    def unfinished() -> int:
        row = conn.execute("SELECT count(*) FROM plain_job").fetchone()
        return int(row[0]) if row else 0

    def truncate() -> None:
        conn.execute("TRUNCATE plain_job")
        conn.execute("VACUUM ANALYZE plain_job")

    def sends() -> float:
        truncate()

        def send_all() -> None:
            for i in range(count):
                conn.execute(INSERT, (orjson.dumps({"n": i}).decode(),), prepare=True)

        return timed_rate(count, send_all)

    def bulk() -> float:
        truncate()

        def copy_all() -> None:
            with conn.cursor().copy("COPY plain_job (payload) FROM STDIN") as copy:
                for i in range(count):
                    copy.write_row((orjson.dumps({"n": i}).decode(),))

        return timed_rate(count, copy_all)

    env = {**os.environ, "BENCH_PLAIN_URL": url, "PYTHONPATH": str(ROOT)}
    log = log_dir / "plain-worker.log"
    server_pid = postgres_server_pid(url)

    def command(claim: int) -> list[str]:
        return [sys.executable, "-m", "bench.baselines.plain_worker", "--claim", str(claim), "--threads", "8"]

    def drain(claim: int) -> Drain:
        bulk()
        return drain_with(command(claim), env, log, count, unfinished, server_pid)

    def send_probe(sent_at: float, port: int) -> None:
        conn.execute(INSERT, (orjson.dumps({"sent_at": sent_at, "port": port}).decode(),), prepare=True)

    one, fifty = Figures(), Figures()
    try:
        one.enqueue = median_of(repeats, sends)
        one.bulk = median_of(repeats, bulk)
        for claim, figures in ((1, one), (50, fifty)):
            figures.take_drain(median_run(repeats, partial(drain, claim)))
            truncate()
            figures.latency_p50, figures.latency_p99 = idle_latency(
                command(claim), env, log, unfinished, samples, send_probe
            )
    finally:
        conn.close()
    return {"plain1": one, "plain50": fifty}
