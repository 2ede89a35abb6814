"""A process follows a database that comes back after a long outage within seconds (outside trial, issue 21).

psycopg_pool retries a lost connection with a delay that doubles until its reconnect
time-out (300 s by default): after a 3-minute outage the web app and both workers stayed
down about 72 s after PostgreSQL was back.
"""

from __future__ import annotations

import signal
import time

from docjobs_devkit import PostgresServer

from docjobs.db.pool import RECONNECT_SERIES_SECONDS, Database
from docjobs.db.store import JobStore

#: Long enough for psycopg_pool's default delays (1, 2, 4, 8, 16, 32 s) to pass 30 s.
OUTAGE_SECONDS = 35.0
#: A borrow waits this long while the server is down, then the caller tries again later.
BORROW_SECONDS = 1.0


def test_a_process_reconnects_within_seconds_of_a_long_outage_ending() -> None:
    server = PostgresServer().start()
    database = Database(server.create_database("outage"), max_size=2, name="reconnect")
    store = JobStore.over(database)
    try:
        store.ping()
        assert server.process is not None
        server.process.send_signal(signal.SIGINT)  # fast shutdown: every session is cut
        server.process.wait(30)
        server.process = None
        down_until = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < down_until:  # a consumer keeps trying, as Dramatiq's does
            assert not _answers(store)
            time.sleep(0.5)
        server.restart()
        back_at = time.monotonic()
        deadline = back_at + 30
        while not _answers(store):
            assert time.monotonic() < deadline, "no connection 30 s after the database came back"
            time.sleep(0.2)
        lag = time.monotonic() - back_at
        assert lag < RECONNECT_SERIES_SECONDS, f"connected {lag:.1f} s after the database came back"
    finally:
        database.close()
        server.stop()


def _answers(store: JobStore) -> bool:
    try:
        store.ping(timeout_seconds=BORROW_SECONDS)
    except Exception:  # noqa: BLE001 - any failure: not yet
        return False
    return True
