"""What deleting job logs with their jobs adds to a retention batch (``job_delete_finished``).

Times the query as it was before job logs (from git, commit ``37c313e``) and as it is,
over 100,000 finished jobs, without logs and with a tenth of them holding 10 lines::

    PYTHONPATH=.:devkit python -m bench.joblog_retention
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psycopg
from docjobs_devkit import FAST_SETTINGS, PostgresServer

from docjobs.db import sql
from docjobs.db.migrate import migrate

JOBS = 100_000
BATCH = 1_000
BEFORE_JOB_LOGS = "37c313e"

_JOBS = """INSERT INTO background_job (id, actor, name, status, completed_at)
SELECT 'j' || g, 'a', 'a', 'COMPLETED', now() - interval '10 days' FROM generate_series(1, %s) g"""
_HEADS = """INSERT INTO background_job_progress (job_id, lines, updated_at)
SELECT 'j' || g, 10, now() - interval '10 days' FROM generate_series(1, %s, 10) g"""
_LINES = """INSERT INTO background_job_log (job_id, seq, attempt, line)
SELECT 'j' || g, s, 1, 'a line of text' FROM generate_series(1, %s, 10) g, generate_series(1, 10) s"""


def main() -> None:
    repo = Path(__file__).resolve().parent.parent
    before = subprocess.run(
        ["git", "-C", str(repo), "show", f"{BEFORE_JOB_LOGS}:docjobs/db/queries.sql"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    queries = {
        "before": sql.parse_queries(before)["job_delete_finished"],
        "now": sql.queries()["job_delete_finished"],
    }
    server = PostgresServer(settings=FAST_SETTINGS).start()
    try:
        url = server.create_database("joblog_retention")
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            for logs in (False, True):
                for name, query in queries.items():
                    conn.execute(
                        "TRUNCATE background_job, background_job_log, background_job_progress CASCADE"
                    )
                    conn.execute(_JOBS, (JOBS,))
                    if logs:
                        conn.execute(_HEADS, (JOBS,))
                        conn.execute(_LINES, (JOBS,))
                    conn.execute("VACUUM ANALYZE")
                    batches, started = 0, time.perf_counter()
                    while query.execute(conn, {"now": None, "days": 1, "limit": BATCH}).rowcount == BATCH:
                        batches += 1
                    per_batch_ms = (time.perf_counter() - started) / (batches + 1) * 1000
                    (left,) = conn.execute("SELECT count(*) FROM background_job_log").fetchone() or (0,)
                    shape = "a tenth with 10 lines" if logs else "no logs"
                    print(f"{name:>6}, {shape}: {per_batch_ms:.1f} ms a batch of {BATCH}; {left} lines left")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
