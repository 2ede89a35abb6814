"""The board's history page over a full week of rollups: how long the rollup and the page take.

Fills a database with finished jobs spread evenly over the last 7 days (20 job types,
each on one of 3 queues, so most 5-minute buckets hold a row for most job types: the
rollup's worst shape), times the first rollup of them all and the compaction of the
buckets older than a day into hours, then serves the board in development mode
and times ``/history`` and ``/api/history`` at 24 h and 7 days from the
``Server-Timing`` header (the median of several requests after one warm-up, with the
history's cache off). Run alone with ``python bench/history.py [JOBS]`` (100,000 by default).
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import httpx
import psycopg

JOBS = 100_000
REQUESTS = 7
TYPES = 20

FILL = """
INSERT INTO background_job (id, queue, actor, name, status, retried, run_at, submitted_at, started_at,
                            completed_at)
SELECT 'h' || n, (ARRAY['default', 'emails', 'webhooks'])[1 + mod(mod(n, %(types)s), 3)],
       'bench.job-' || mod(n, %(types)s),
       'job', CASE WHEN mod(n, 50) = 0 THEN 'FAILED' ELSE 'COMPLETED' END, mod(n, 7) / 6,
       done - interval '1.5 s', done - interval '1.5 s', done - interval '1 s', done
FROM (SELECT n, now() - interval '10 minutes' - (n::float / %(jobs)s) * interval '7 days' AS done
      FROM generate_series(1, %(jobs)s) AS n) AS spread
"""

PAGES = [
    ("history page, 24 h", "/history?window=24h"),
    ("history page, 7 days", "/history?window=7d"),
    ("history API, 24 h", "/api/history?window=24h"),
    ("history API, 7 days", "/api/history?window=7d"),
]


def bench_history(url: str, jobs: int) -> dict[str, Any]:
    """Fill ``url``'s database with ``jobs`` finished jobs, roll them up, time the pages."""
    from docjobs_devkit.http import serve

    from docjobs import runtime
    from docjobs.settings import Settings
    from docjobs.web.app import create_app
    from docjobs.web.board import history

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FILL, {"jobs": jobs, "types": TYPES})
        conn.execute("VACUUM ANALYZE background_job")
    settings = Settings.from_environ(
        {
            "NEXT_PRIVATE_DATABASE_URL": url,
            "NODE_ENV": "development",
            "NEXT_PRIVATE_JOBS_DATA_DIR": "/tmp/docjobs-bench",
        }
    )
    current = runtime.configure(settings)
    history.CACHE_SECONDS = 0.0  # every request reads the rollups
    try:
        assert current.store is not None
        started = time.perf_counter()
        rounds = 0
        while True:  # a call stops after its budget; the next goes on
            done = current.store.rollups.roll_up()
            rounds += 1
            if done.folded == 0:
                break
        rollup_seconds = time.perf_counter() - started
        started = time.perf_counter()
        hours = current.store.rollups.compact()
        compact_seconds = time.perf_counter() - started
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE background_job_rollup")
            row = conn.execute(
                "SELECT count(*), sum(completed + failed) FROM background_job_rollup"
            ).fetchone()
        assert row is not None
        pages = {}
        with serve(create_app(current, embedded_worker=False, embedded_scheduler=False)) as base:
            with httpx.Client(base_url=f"{base}/api/jobs/board", timeout=60) as client:
                for name, path in PAGES:
                    timings = []
                    for attempt in range(REQUESTS + 1):
                        answer = client.get(path)
                        answer.raise_for_status()
                        if attempt:
                            timings.append(float(answer.headers["server-timing"].split("dur=")[1]))
                    pages[name] = statistics.median(timings)
    finally:
        runtime.reset()
    return {
        "jobs": jobs,
        "counted": int(row[1] or 0),
        "rollup_rows": int(row[0]),
        "rollup_seconds": rollup_seconds,
        "rollup_calls": rounds,
        "compact_seconds": compact_seconds,
        "hours": hours,
        "rolled_until": done.rolled_until,
        "pages_ms": pages,
    }


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"{figures['jobs']:,} jobs over 7 days rolled up in {figures['rollup_seconds']:.1f} s "
        f"({figures['rollup_calls']} calls), the buckets older than a day merged into "
        f"{figures['hours']:,} hour rows in {figures['compact_seconds']:.1f} s: "
        f"{figures['rollup_rows']:,} rows ({figures['counted']:,} jobs counted); server time, "
        f"median of {REQUESTS} requests:",
        "",
        f"| {'page':<24} | {'ms':>7} |",
        f"|{'-' * 26}|{'-' * 8}:|",
    ]
    lines += [f"| {name:<24} | {ms:>7.1f} |" for name, ms in figures["pages_ms"].items()]
    return "\n".join(lines)


def main() -> int:
    from docjobs_devkit import PostgresServer

    from docjobs.db.migrate import migrate

    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else JOBS
    postgres = PostgresServer().start()
    try:
        url = postgres.create_database("history")
        migrate(url)
        print(report(bench_history(url, jobs)))
    finally:
        postgres.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
