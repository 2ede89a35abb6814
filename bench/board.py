"""The board over 1,000,000 ``background_job`` rows: server time of its pages and API.

Fills a database with a million jobs shaped like a busy service's history (mostly
completed, some failed, cancelled, waiting and scheduled, over several queues and
job types), serves the board in development mode, and times each page from the
``Server-Timing`` header the board sets (the server's time, not the network's):
the median of several requests after one warm-up. Run alone with
``python bench/board.py``, or as part of ``make bench``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
ROWS = 1_000_000
REQUESTS = 7
#: The issue's target for a jobs list page, server time.
TARGET_MS = 200.0

FILL = """
WITH spec AS (
    SELECT n, %(rows)s - n AS age, n > %(rows)s - 2000 AS waiting FROM generate_series(1, %(rows)s) AS n
)
INSERT INTO background_job (id, queue, actor, name, status, payload, attempts, run_at, submitted_at,
                            started_at, completed_at, last_error)
SELECT '01' || lpad(to_hex(n), 6, '0') || '-0000-7000-8000-000000000000',
       (ARRAY['default', 'emails', 'webhooks'])[1 + mod(n, 3)],
       (ARRAY['send.signing.requested.email', 'internal.execute-webhook', 'internal.seal-document',
              'send.document.completed.emails', 'internal.process-signing-reminder'])[1 + mod(n, 5)],
       'job',
       CASE WHEN waiting THEN 'PENDING' WHEN mod(n, 50) = 0 THEN 'FAILED'
            WHEN mod(n, 200) = 1 THEN 'CANCELLED' ELSE 'COMPLETED' END,
       jsonb_build_object('documentId', n, 'recipientEmail', 'user' || n || '@example.com'),
       1,
       now() - age * interval '50 milliseconds'
           + CASE WHEN waiting AND mod(n, 2) = 0 THEN interval '1 hour' ELSE interval '0' END,
       now() - age * interval '50 milliseconds',
       now() - age * interval '50 milliseconds',
       CASE WHEN NOT waiting THEN now() - age * interval '50 milliseconds' + interval '20 milliseconds' END,
       CASE WHEN mod(n, 50) = 0 AND NOT waiting THEN 'TimeoutError: the SMTP server did not answer' END
FROM spec
"""

#: (what, path): the pages an admin opens, and their JSON twins.
PAGES = [
    ("jobs list, newest", "/jobs"),
    ("jobs list, failed", "/jobs?state=failed"),
    ("jobs list, queue + job filter", "/jobs?queue=emails&job=send.signing.requested.email"),
    ("jobs list, page 2000 (keyset)", "/jobs?before={middle}"),
    ("jobs list, scheduled", "/jobs?state=scheduled"),
    ("jobs API, failed", "/api/jobs?state=failed"),
    ("job page", "/jobs/{middle}"),
    ("payload search (no index)", "/jobs?q=user777777@"),
    ("overview (counts, charts)", "/"),
]


def fill(url: str, rows: int = ROWS) -> float:
    """Insert ``rows`` jobs; returns the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FILL, {"rows": rows})
        conn.execute("VACUUM ANALYZE background_job")
    return time.perf_counter() - started


def measure(base: str, middle: str) -> dict[str, float]:
    """Median server milliseconds of each page."""
    figures = {}
    with httpx.Client(base_url=f"{base}/api/jobs/board", timeout=60) as client:
        for name, path in PAGES:
            url = path.format(middle=middle)
            timings = []
            for attempt in range(REQUESTS + 1):
                answer = client.get(url)
                answer.raise_for_status()
                if attempt:  # the first warms the caches and the plan
                    timings.append(float(answer.headers["server-timing"].split("dur=")[1]))
            figures[name] = statistics.median(timings)
    return figures


def bench_board(url: str) -> dict[str, Any]:
    """Fill ``url``'s database and time the board over it."""
    from docjobs_devkit.http import serve

    from docjobs import runtime
    from docjobs.settings import Settings
    from docjobs.web.app import create_app

    seconds = fill(url)
    middle = f"01{ROWS // 2:06x}-0000-7000-8000-000000000000"
    settings = Settings.from_environ(
        {
            "NEXT_PRIVATE_DATABASE_URL": url,
            "NODE_ENV": "development",
            "NEXT_PRIVATE_JOBS_DATA_DIR": "/tmp/docjobs-bench",
        }
    )
    current = runtime.configure(settings)
    try:
        with serve(create_app(current, embedded_worker=False, embedded_scheduler=False)) as base:
            pages = measure(base, middle)
    finally:
        runtime.reset()
    return {"rows": ROWS, "fill_seconds": seconds, "pages_ms": pages}


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"board over {figures['rows']:,} background_job rows (filled in {figures['fill_seconds']:.0f} s), "
        f"server time, median of {REQUESTS} requests:",
        "",
        f"| {'page':<32} | {'ms':>8} | jobs list < {TARGET_MS:.0f} ms |",
        f"|{'-' * 34}|{'-' * 9}:|{'-' * 21}|",
    ]
    for name, ms in figures["pages_ms"].items():
        verdict = ("yes" if ms < TARGET_MS else "NO") if name.startswith("jobs list") else "-"
        lines.append(f"| {name:<32} | {ms:>8.1f} | {verdict:<19} |")
    return "\n".join(lines)


def main() -> int:
    from docjobs_devkit import PostgresServer

    from docjobs.db.migrate import migrate

    postgres = PostgresServer().start()
    try:
        url = postgres.create_database("board")
        migrate(url)
        figures = bench_board(url)
    finally:
        postgres.stop()
    print(report(figures))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
