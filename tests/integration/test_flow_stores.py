"""The two flow-control stores (PostgreSQL, Redis), run against real servers.

Their takes must be exact when many workers take at once, and a slot held by a
worker that died must free itself.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from docjobs_devkit.services import RedisServer

from docjobs.brokers.bullmq.flow import RedisFlow
from docjobs.db.flow import FlowRows
from docjobs.db.pool import Database
from docjobs.flow.store import FlowStore
from docjobs.runtime import Runtime
from docjobs.settings import Settings


@pytest.fixture(params=["postgresql", "redis"])
def store(request: pytest.FixtureRequest, environ: dict[str, str]) -> Iterator[FlowStore]:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        client = redis.Redis.from_url(server.url)
        yield RedisFlow(client, f"flowtest{uuid.uuid4().hex[:8]}")
        client.close()
        return
    database = Database.from_settings(Settings.from_environ(environ))
    try:
        yield FlowRows(database)
    finally:
        database.close()


def running(store: FlowStore, url: str, *holders: str) -> None:
    """Make ``holders`` running jobs: on PostgreSQL a slot counts while its holder's job runs."""
    if isinstance(store, FlowRows):
        for holder in holders:
            _insert_job(url, holder, status="PROCESSING")


def test_many_takers_at_once_get_exactly_the_limit(store: FlowStore, database_url: str) -> None:
    running(store, database_url, *(f"h{n}" for n in range(12)), "late", "x")
    taken: list[str] = []
    barrier = threading.Barrier(12)

    def take(holder: str) -> None:
        barrier.wait()
        if store.take_slot("job", "k", holder, limit=3, ttl_s=60):
            taken.append(holder)

    threads = [threading.Thread(target=take, args=(f"h{n}",)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 3
    # The holder's own slot is its again (a redelivery); a freed slot goes to the next taker.
    assert store.take_slot("job", "k", taken[0], limit=3, ttl_s=60)
    assert not store.take_slot("job", "k", "late", limit=3, ttl_s=60)
    store.release_slot("job", "k", taken[0])
    assert store.take_slot("job", "k", "late", limit=3, ttl_s=60)
    # Keys and job types do not share slots.
    assert store.take_slot("job", "other", "x", limit=1, ttl_s=60)
    assert store.take_slot("other-job", "k", "x", limit=1, ttl_s=60)


def test_a_slot_whose_holder_died_frees_itself_when_it_expires(store: FlowStore, database_url: str) -> None:
    running(store, database_url, "killed-worker's job", "next")
    assert store.take_slot("job", "k", "killed-worker's job", limit=1, ttl_s=1)
    assert not store.take_slot("job", "k", "next", limit=1, ttl_s=1)
    time.sleep(1.2)
    assert store.take_slot("job", "k", "next", limit=1, ttl_s=1)


def test_a_window_counts_exactly_its_limit_then_says_how_long_to_wait(store: FlowStore) -> None:
    results: list[float | None] = []
    barrier = threading.Barrier(10)

    def take() -> None:
        barrier.wait()
        results.append(store.take_window("job", "throttle", "k", limit=4, period_s=60))

    threads = [threading.Thread(target=take) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(None) == 4
    waits = [wait for wait in results if wait is not None]
    assert len(waits) == 6 and all(0 <= wait <= 60 for wait in waits)
    # Throttles and rate limits of one job count apart.
    assert store.take_window("job", "rate_limit", "k", limit=1, period_s=60) is None


def test_a_debounced_key_keeps_the_latest_send(store: FlowStore, database_url: str) -> None:
    store.note_send("job", "k", "first", sent_ms=1_000, ttl_s=60)
    store.note_send("job", "k", "second", sent_ms=2_000, ttl_s=60)
    store.note_send("job", "k", "late note of an earlier send", sent_ms=1_500, ttl_s=60)
    if isinstance(store, FlowRows):
        # On PostgreSQL a superseding send must exist as a row (its transaction committed).
        assert not store.superseded("job", "k", "first", sent_ms=1_000)
        _insert_job(database_url, "second")
    assert store.superseded("job", "k", "first", sent_ms=1_000)
    assert not store.superseded("job", "k", "second", sent_ms=2_000)
    assert not store.superseded("job", "other", "first", sent_ms=1_000)


def _insert_job(url: str, job_id: str, *, status: str = "PENDING") -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO background_job (id, actor, name, status) VALUES (%s, 'job', 'job', %s)",
            (job_id, status),
        )


def test_on_postgresql_a_slot_counts_only_while_its_holders_job_runs(environ: dict[str, str]) -> None:
    """A release lost (the database down when the job ended, a worker killed) frees the slot as
    soon as the job is no longer PROCESSING: ended, or put back by the rescuer."""
    database = Database.from_settings(Settings.from_environ(environ))
    try:
        rows, url = FlowRows(database), environ["NEXT_PRIVATE_DATABASE_URL"]
        _insert_job(url, "holder", status="PROCESSING")
        _insert_job(url, "waiter", status="PROCESSING")
        assert rows.take_slot("job", "doc-9", "holder", limit=1, ttl_s=600)
        assert not rows.take_slot("job", "doc-9", "waiter", limit=1, ttl_s=600)
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:  # it ended; its release never came
            conn.execute("UPDATE background_job SET status = 'COMPLETED' WHERE id = 'holder'")
        assert rows.take_slot("job", "doc-9", "waiter", limit=1, ttl_s=600)
    finally:
        database.close()


def test_the_retention_job_deletes_expired_flow_control_entries(
    pg_runtime: Runtime, database_url: str
) -> None:
    import psycopg

    from docjobs.actors import maintenance

    with psycopg.connect(database_url, autocommit=True) as conn:
        for ago in ("1 hour", "-1 hour"):  # expired, live
            conn.execute("INSERT INTO flow_slot VALUES ('job', %s, 'h', now() - %s::interval)", (ago, ago))
            conn.execute(
                "INSERT INTO flow_window VALUES ('job', 'throttle', %s, now(), 1, now() - %s::interval)",
                (ago, ago),
            )
            conn.execute(
                "INSERT INTO flow_debounce VALUES ('job', %s, 'j', 1, now() - %s::interval)", (ago, ago)
            )
    maintenance.cleanup_background_jobs()
    with psycopg.connect(database_url) as conn:
        for table in ("flow_slot", "flow_window", "flow_debounce"):
            assert [("-1 hour",)] == conn.execute(f"SELECT key FROM {table}").fetchall(), table
