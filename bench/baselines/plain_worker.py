"""The plain-SQL floor's worker: threads that claim with FOR UPDATE SKIP LOCKED and delete when done.

``python -m bench.baselines.plain_worker --claim 50 --threads 8`` with ``BENCH_PLAIN_URL``
set. Each thread has its own connection and loops: claim up to ``--claim`` jobs in one
UPDATE, run them (decode the payload, call the function), delete them in one DELETE.
An idle thread sleeps until the INSERT trigger's NOTIFY (or 1 s) wakes it. Claims and
deletes run with synchronous_commit off, as docjobs' claims and acks do: losing one
only runs a job again.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import threading
import time
from typing import Any

import orjson
import psycopg

IDLE_WAKE_SECONDS = 1.0
CLAIM = """
UPDATE plain_job SET claimed_at = now()
WHERE id IN (
    SELECT id FROM plain_job WHERE claimed_at IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
)
RETURNING id, payload
"""
DELETE = "DELETE FROM plain_job WHERE id = ANY(%s)"

_probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def noop(n: int = 0) -> None:
    """Do nothing."""


def latency(sent_at: float, port: int) -> None:
    """Report how long after its send this job started, by UDP."""
    _probe.sendto(struct.pack("!d", time.time() - sent_at), ("127.0.0.1", port))


def run_job(payload: Any) -> None:
    """Decode a job's payload and call its function."""
    arguments = orjson.loads(payload) if isinstance(payload, str | bytes) else payload
    (latency if "port" in arguments else noop)(**arguments)


def consume(url: str, claim: int, wakeup: threading.Event) -> None:
    """One worker thread: claim, run, delete, until the process is stopped."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit TO off")
        while True:
            rows = conn.execute(CLAIM, (claim,), prepare=True).fetchall()
            if not rows:
                wakeup.wait(IDLE_WAKE_SECONDS)
                wakeup.clear()
                continue
            for _, payload in rows:
                run_job(payload)
            conn.execute(DELETE, ([job_id for job_id, _ in rows],), prepare=True)


def listen(url: str, wakeup: threading.Event) -> None:
    """Wake the idle threads on every NOTIFY of the INSERT trigger."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("LISTEN plain_job")
        for _ in conn.notifies():
            wakeup.set()


def main() -> None:
    """Start the listener and the worker threads; run until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claim", type=int, default=1, help="jobs claimed per statement")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    url = os.environ["BENCH_PLAIN_URL"]
    wakeup = threading.Event()
    threads = [threading.Thread(target=listen, args=(url, wakeup), daemon=True)]
    threads += [
        threading.Thread(target=consume, args=(url, args.claim, wakeup), daemon=True)
        for _ in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
