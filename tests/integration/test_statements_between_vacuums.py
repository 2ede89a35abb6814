"""The job statements' cost does not grow with the jobs finished since the last vacuum (issue 21).

Between two vacuums of ``background_job`` (autovacuum runs at most once a minute), every
claimed job leaves a dead entry in the pending index and every finished one a dead entry
in the processing index. A statement that addresses held jobs by id but lets the planner
scan the processing index instead (its statistics say it is small) visits every one of
them. Without a vacuum, one claimer's batch statement grew from 1.4 to 19 ms over 165,000
jobs; under ``make load`` a fifth of the slow ones had that plan, and a heartbeat took
3,400 buffers for 18 jobs after 12,000 here (17,500 after 21,000). Each statement is
measured in buffers (``EXPLAIN (ANALYZE, BUFFERS)``, rolled back), which do not depend on
the machine's speed.

docjobs plans these statements at each run: a plan PostgreSQL kept would stay as it was
made, and one made while the table was small scans all of it once the table is not (under
``make load`` a kept plan scanned the table for a minute after the start, and jobs waited
24 s).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql as psql

from docjobs.db import sql
from docjobs.db.claims import Claim, Done, Ran
from docjobs.db.store import JobStore
from docjobs.runtime import Runtime
from tests.support.queries import watch_queries

WORKER = "churning-worker"
#: Jobs claimed and finished before the statements are measured, with no vacuum in between.
CHURNED = 12_000
#: Jobs sent at a time, and claimed per statement, as under ``make load``.
ROUND = 3_000
BATCH = 16
HELD = 16
#: Buffers a statement may touch per job it addresses, plus a constant (the worker row, the
#: attempt table): a lookup by id and a new row version with its index entries cost ~17.
BUFFERS_PER_JOB = 20
BUFFERS_CONSTANT = 60
PLANS = ("force_custom_plan", "force_generic_plan")
MEASURED = ("job_complete_and_claim", "job_requeue", "worker_heartbeat", "job_retry", "job_fail")


@pytest.fixture
def store(pg_runtime: Runtime, database_url: str) -> JobStore:
    assert pg_runtime.store is not None
    with psycopg.connect(database_url, autocommit=True) as conn:
        # What the table looks like within a minute of its last vacuum under load.
        conn.execute("ALTER TABLE background_job SET (autovacuum_enabled = false)")
    return pg_runtime.store


@dataclass
class Buffers:
    """Buffers each measured statement touches, by name, while ``measuring``."""

    measuring: bool = False
    touched: dict[str, list[int]] = field(default_factory=dict)


@pytest.fixture
def buffers(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Buffers]:
    """Each measured statement is run first under EXPLAIN, rolled back: with a custom plan
    (docjobs plans them at each run) and with a generic one, as PostgreSQL plans a prepared
    statement without its parameters' values."""
    seen = Buffers()
    explain = psycopg.connect(database_url)

    def measured(query: sql.Query, values: Mapping[str, Any]) -> None:
        if seen.measuring and query.name in MEASURED:
            arguments = [values[name] for name in query.parameters]
            seen.touched[query.name] = [explained(explain, query, arguments, mode) for mode in PLANS]

    watch_queries(monkeypatch, measured)
    yield seen
    explain.close()


def explained(conn: psycopg.Connection[Any], query: sql.Query, arguments: list[Any], plan: str) -> int:
    """Buffers the statement touches under ``EXPLAIN ANALYZE`` with a ``plan`` plan; rolled back."""
    numbered = iter(range(1, len(arguments) + 1))
    text = re.sub("%s", lambda _: f"${next(numbered)}", query.text)
    try:
        conn.execute(psql.SQL("SET LOCAL plan_cache_mode = {}").format(psql.Literal(plan)))
        conn.execute(psql.SQL("PREPARE measured AS {}").format(psql.SQL(text)))  # type: ignore[arg-type]
        call = psql.SQL("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE measured ({})").format(
            psql.SQL(", ").join(psql.Literal(argument) for argument in arguments)
        )
        (document,) = conn.execute(call).fetchone()  # type: ignore[misc]
    finally:
        conn.rollback()
        conn.execute("DEALLOCATE ALL")
        conn.rollback()
    return own_buffers(document[0]["Plan"])


def own_buffers(node: dict[str, Any]) -> int:
    """Buffers a plan touches, at most: each node's own count less its children's (a node's
    count includes theirs, except a data-modifying CTE's, which runs apart from the node it
    hangs under); a CTE read by a scan may count twice."""
    children = node.get("Plans", [])
    total = node["Shared Hit Blocks"] + node["Shared Read Blocks"]
    below = sum(child["Shared Hit Blocks"] + child["Shared Read Blocks"] for child in children)
    return max(total - below, 0) + sum(own_buffers(child) for child in children)


def churn(store: JobStore, database_url: str, rounds: int) -> None:
    """Jobs as under load: a round of new jobs at a time, claimed and finished by the worker's
    own statement in batches, the next round's acks riding with its claims."""
    done: list[Done] = []
    for number in range(rounds):
        send(database_url, f"round{number}-", ROUND)
        with store.database.connection() as conn:
            while True:
                rows = store.claims.complete_and_claim(
                    conn, queue="default", done=done, limit=BATCH, worker=WORKER, lease_seconds=30
                )
                now = time.monotonic()
                done = [Done(Claim(row["id"], row["attempts"]), Ran(now, now)) for row in rows]
                if not rows:
                    break


def send(database_url: str, prefix: str, count: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO background_job (id, actor, name) "
            "SELECT %s || n, 'test.record', 'Record' FROM generate_series(1, %s) AS n",
            (prefix, count),
        )


def held_jobs(store: JobStore, count: int) -> list[Claim]:
    with store.database.connection() as conn:
        rows = store.claims.complete_and_claim(
            conn, queue="default", done=[], limit=count, worker=WORKER, lease_seconds=30
        )
    assert count == len(rows)
    return [Claim(row["id"], row["attempts"]) for row in rows]


def test_statements_on_held_jobs_look_them_up_by_id_however_many_finished_since_the_last_vacuum(
    store: JobStore, database_url: str, buffers: Buffers
) -> None:
    churn(store, database_url, CHURNED // ROUND)
    send(database_url, "waiting-", ROUND)  # the queue is not empty meanwhile
    held = held_jobs(store, HELD + 2)
    buffers.measuring = True
    now = time.monotonic()
    first, second, *rest = held

    store.workers.heartbeat(
        worker=WORKER, held=[claim.id for claim in held], queues=["default"], concurrency=8, lease_seconds=30
    )
    assert store.claims.retry(first, delay_ms=60_000, retried=1, options={}, error="boom", traceback=None)
    assert store.claims.fail(second, error="boom", traceback=None)
    store.claims.requeue(rest[:2])
    with store.database.connection() as conn:
        store.claims.complete_and_claim(
            conn,
            queue="default",
            done=[Done(claim, Ran(now, now)) for claim in rest[2:]],
            limit=0,
            worker=WORKER,
            lease_seconds=30,
        )

    addressed = {
        "worker_heartbeat": len(held),
        "job_retry": 1,
        "job_fail": 1,
        "job_requeue": 2,
        "job_complete_and_claim": len(rest) - 2,
    }
    assert set(MEASURED) == set(buffers.touched)
    over = {
        name: touched
        for name, touched in buffers.touched.items()
        if max(touched) > BUFFERS_PER_JOB * addressed[name] + BUFFERS_CONSTANT
    }
    assert {} == over, f"buffers touched for {addressed} jobs, after {CHURNED} finished without a vacuum"


def test_the_batch_statement_is_planned_at_each_run(store: JobStore, database_url: str) -> None:
    send(database_url, "job-", 10)
    with store.database.connection() as conn:
        for _ in range(10):  # psycopg prepares a query from its fifth run
            store.claims.complete_and_claim(
                conn, queue="default", done=[], limit=1, worker=WORKER, lease_seconds=30
            )
        kept = conn.execute("SELECT statement FROM pg_prepared_statements").fetchall()
    assert [] == [row for row in kept if "WITH completed" in str(row)]
