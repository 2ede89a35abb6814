"""The plain-SQL floor: what psycopg alone does with docjobs' rows, measured like docjobs.

Enqueue is one prepared INSERT per call and bulk one COPY, both of the same 11 columns
docjobs writes (a time-ordered id, the JSON payload, actor, queue, ...) into
``background_job`` itself: docjobs' schema, migrated into this database, with its
indexes, so rows and index upkeep are the same and only the Python in front differs
(issue 21: the 3-column ``plain_job`` made the floor ~2x too high for sends and bulk).
The drain is ``plain_worker`` (1 process x 8 threads) claiming 1 or 50 jobs per
statement with FOR UPDATE SKIP LOCKED from the narrow ``plain_job``. Enqueues use
docjobs' default synchronous_commit (the same durability), claims and deletes run with
it off, as docjobs' claims and acks do.
"""

from __future__ import annotations

import os
import sys
import time
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
from docjobs.db.migrate import migrate
from docjobs.ids import new_job_id, new_job_ids

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
#: The columns docjobs' sends write (docjobs.db.queries.sql, job_insert and job_copy_in), into its own table.
INSERT_SAME_ROW = (
    "INSERT INTO background_job (id, queue, actor, name, version, payload, args, options, max_retries, "
    "priority, message_ts_ms) VALUES (%s, 'default', 'bench.noop', 'Noop', '1.0.0', %s, '[]', '{}', 0, 0, %s)"
)
COPY_SAME_ROWS = (
    "COPY background_job (id, queue, actor, name, version, payload, args, options, max_retries, priority, "
    "message_ts_ms) FROM STDIN"
)


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

    migrate(url)  # background_job as docjobs has it, for the sends' same rows

    def truncate_jobs() -> None:
        conn.execute("TRUNCATE background_job CASCADE")
        conn.execute("VACUUM ANALYZE background_job")

    def sends() -> float:
        truncate_jobs()

        def send_all() -> None:
            for i in range(count):
                payload = orjson.dumps({"n": i}).decode()
                conn.execute(INSERT_SAME_ROW, (new_job_id(), payload, int(time.time() * 1000)), prepare=True)

        return timed_rate(count, send_all)

    def fill() -> None:
        """The drain's jobs: one COPY into plain_job."""
        truncate()
        with conn.cursor().copy("COPY plain_job (payload) FROM STDIN") as copy:
            for i in range(count):
                copy.write_row((orjson.dumps({"n": i}).decode(),))

    def bulk() -> float:
        truncate_jobs()

        def copy_same_rows() -> None:
            # What trigger_many writes for bench.noop: time-ordered ids made here, payloads encoded here.
            ids, now_ms = new_job_ids(count), int(time.time() * 1000)
            with conn.cursor().copy(COPY_SAME_ROWS) as copy:
                for i, job_id in enumerate(ids):
                    payload = orjson.dumps({"n": i}).decode()
                    copy.write_row(
                        (job_id, "default", "bench.noop", "Noop", "1.0.0", payload, "[]", "{}", 0, 0, now_ms)
                    )

        return timed_rate(count, copy_same_rows)

    env = {**os.environ, "BENCH_PLAIN_URL": url, "PYTHONPATH": str(ROOT)}
    log = log_dir / "plain-worker.log"
    server_pid = postgres_server_pid(url)

    def command(claim: int) -> list[str]:
        return [sys.executable, "-m", "bench.baselines.plain_worker", "--claim", str(claim), "--threads", "8"]

    def drain(claim: int) -> Drain:
        fill()
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
