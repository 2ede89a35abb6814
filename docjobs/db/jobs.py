"""Job rows: enqueue, look up, count and delete ``background_job`` rows.

Methods that take ``conn`` run on it (inside the caller's transaction when there is
one); the others borrow a pooled autocommit connection. A standalone enqueue sets its
own transaction's durability (:attr:`Database.commit_setting` of
:meth:`Database.for_enqueues`): durable unless the settings trade that for speed
(docs/reliability.md, "Which writes are durable"), whatever the borrowed session says.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

import psycopg

from docjobs.db import sql
from docjobs.db.direct import DirectStatement
from docjobs.db.documents import json_document
from docjobs.db.pool import Database
from docjobs.db.readiness import SchemaNotMigrated
from docjobs.db.rollups import RollupStore
from docjobs.logging import first_line

#: NewJob fields that job_copy_in loads (all but the delay).
_COPY_COLUMNS = 11
#: Finished jobs deleted per statement, so each transaction stays short.
RETENTION_BATCH = 5_000
#: Longest a maintenance round spends deleting finished jobs.
RETENTION_BUDGET_SECONDS = 2.0

Row = dict[str, Any]
#: The severity libpq puts before a server's message.
_SEVERITY = re.compile(r"^(?:ERROR|FATAL): +")


class NewJob(NamedTuple):
    """A job row about to be inserted. JSON columns are already encoded.

    A named tuple: bulk enqueues build tens of thousands per call, and its first
    eleven fields are the COPY row as they are. ``message_ts_ms`` is the message's
    ``message_timestamp``: Dramatiq's ``max_age`` counts from it.
    """

    id: str
    queue: str
    actor: str
    name: str
    version: str
    payload: str
    args: str
    options: str
    max_retries: int
    priority: int
    message_ts_ms: int
    delay_ms: int


class JobRows:
    """Inserts, finds and deletes ``background_job`` rows.

    Args:
        database: Where the table lives.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._enqueues = database.for_enqueues()
        self._q = sql.queries()
        # A named prepared statement is session state: behind a transaction pooler the
        # insert goes through psycopg unprepared, like every other query there.
        self._insert = None if database.transaction_pooling else DirectStatement(self._q["job_insert"])
        self._insert_ringing = (
            None if database.transaction_pooling else DirectStatement(self._q["job_insert_ringing"])
        )
        self._rollups = RollupStore(database)

    # Enqueue.

    def insert(self, job: NewJob, *, conn: psycopg.Connection[Any] | None = None, ring: bool = False) -> bool:
        """Insert a job; ``False`` when a job with its id already exists.

        Args:
            job: The row.
            conn: Insert inside this connection's transaction (else standalone, durable).
            ring: Standalone only: also NOTIFY the job's queue, at the insert's commit.

        Raises:
            SchemaNotMigrated: The database lacks docjobs' tables: run docjobs migrate.
        """
        params = _job_params(job)
        if conn is not None:
            with _migrated():
                # A failed statement would abort the caller's transaction: skip duplicates instead.
                return self._q["job_insert_unless_exists"].execute(conn, params).fetchone() is not None
        params["synchronous_commit"] = self._enqueues.commit_setting
        direct = self._insert_ringing if ring else self._insert
        # try/except rather than _migrated(): every standalone send comes this way.
        try:
            with self._enqueues.connection_as_is() as pooled:
                if direct is None:
                    self._q["job_insert_ringing" if ring else "job_insert"].execute(pooled, params)
                else:
                    direct.execute(pooled, params)
        except psycopg.errors.UniqueViolation:
            return False
        except _SCHEMA_MISSING as exc:
            raise _not_migrated(exc) from None
        return True

    def insert_many(self, jobs: Sequence[NewJob], *, conn: psycopg.Connection[Any] | None = None) -> int:
        """Insert jobs in one statement; returns how many were new (existing ids are skipped).

        Raises:
            SchemaNotMigrated: The database lacks docjobs' tables: run docjobs migrate.
        """
        # One JSON document, not twelve arrays: psycopg adapts arrays element by element,
        # in Python (~4 ms per call of 55 jobs under load, issue 21).
        params: dict[str, Any] = {"jobs": json_document(jobs).decode(), "synchronous_commit": None}
        with _migrated():
            if conn is not None:
                return len(self._q["job_insert_many"].execute(conn, params).fetchall())
            # One statement, one round trip (``trigger(id=...)`` comes this way), as durable
            # as standalone enqueues whatever the borrowed session says.
            params["synchronous_commit"] = self._enqueues.commit_setting
            with self._enqueues.connection_as_is() as pooled:
                return len(self._q["job_insert_many"].execute(pooled, params).fetchall())

    def copy_in(self, jobs: Sequence[NewJob], *, conn: psycopg.Connection[Any] | None = None) -> int:
        """Insert jobs with new ids and no delay through COPY; returns how many.

        COPY cannot skip existing ids: a duplicate fails the whole batch, so only
        ids docjobs generated may come this way.

        Raises:
            SchemaNotMigrated: The database lacks docjobs' tables: run docjobs migrate.
        """
        with _migrated():
            if conn is not None:
                return self._copy_in(conn, jobs)
            with self._standalone_transaction() as pooled:
                return self._copy_in(pooled, jobs)

    @contextmanager
    def _standalone_transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled transaction as durable as standalone enqueues, whatever its session says
        (COPY needs a transaction anyway: the setting costs one round trip per batch)."""
        with self._enqueues.connection_as_is() as pooled, pooled.transaction():
            durability = {"synchronous_commit": self._enqueues.commit_setting}
            self._q["job_insert_durability"].execute(pooled, durability)
            yield pooled

    def _copy_in(self, conn: psycopg.Connection[Any], jobs: Sequence[NewJob]) -> int:
        with conn.cursor() as cursor, cursor.copy(self._q["job_copy_in"].text) as copy:
            for job in jobs:
                copy.write_row(job[:_COPY_COLUMNS])
        return len(jobs)

    # A queue's jobs.

    def count_unfinished(self, queue: str) -> int:
        """How many jobs of ``queue`` are PENDING or PROCESSING."""
        with self.database.connection() as conn:
            row = self._q["queue_count_unfinished"].execute(conn, {"queue": queue}).fetchone()
        return int(row["unfinished"]) if row else 0

    def delete_pending(self, queue: str) -> None:
        """Drop the PENDING jobs of ``queue``."""
        with self.database.connection() as conn:
            self._q["queue_delete_pending"].execute(conn, {"queue": queue})

    # Lookups.

    def find(self, job_id: str) -> Row | None:
        """A job's actor and status, or ``None``."""
        with self.database.connection() as conn:
            return self._q["job_find"].execute(conn, {"id": job_id}).fetchone()

    def recent(self, limit: int) -> list[Row]:
        """Progress columns of the newest ``limit`` jobs, oldest first."""
        with self.database.connection() as conn:
            rows: list[Row] = self._q["job_list_recent"].execute(conn, {"limit": limit}).fetchall()
        return rows

    def get_many(self, job_ids: Sequence[str]) -> list[Row]:
        """Progress columns (status, attempts, times) of several jobs."""
        with self.database.connection() as conn:
            return self._q["job_get_many"].execute(conn, {"ids": list(job_ids)}).fetchall()

    # Retention.

    def delete_finished(self, days: float, *, now: datetime | None = None) -> int:
        """Delete finished jobs older than ``days``, in short batches.

        Each batch is its own transaction; it stops when a batch comes back short
        or :data:`RETENTION_BUDGET_SECONDS` is spent (the next round goes on). The
        history rollups count the finished jobs first: a job they have not counted
        is never deleted (see :mod:`docjobs.db.rollups`).

        Returns:
            How many jobs were deleted.
        """
        self._rollups.roll_up(now=now)
        return self._delete_in_batches("job_delete_finished", {"now": now, "days": days})

    def _delete_in_batches(self, query: str, params: dict[str, Any]) -> int:
        deadline = time.monotonic() + RETENTION_BUDGET_SECONDS
        deleted = 0
        with self.database.connection() as conn:
            while True:
                count = self._q[query].execute(conn, {**params, "limit": RETENTION_BATCH}).rowcount
                deleted += max(count, 0)
                if count < RETENTION_BATCH or time.monotonic() > deadline:
                    return deleted


@contextmanager
def _migrated() -> Iterator[None]:
    """Say ``run docjobs migrate`` where a send meets a database without docjobs' tables.

    Every send of the local provider (``actor.send``, ``jobs.trigger``, from any script)
    inserts here: psycopg's ``UndefinedTable`` would end an app's traceback with
    ``relation "background_job" does not exist`` and no hint of the cure.
    """
    try:
        yield
    except _SCHEMA_MISSING as exc:
        raise _not_migrated(exc) from None


#: What a statement meets in a database without docjobs' tables (or an older schema).
_SCHEMA_MISSING = (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn)


def _not_migrated(exc: psycopg.Error) -> SchemaNotMigrated:
    # The server's own words (a prepared statement's error text also carries "ERROR:  ").
    reason = exc.diag.message_primary or _SEVERITY.sub("", first_line(exc))
    return SchemaNotMigrated(f"the database lacks docjobs' schema ({reason}): run docjobs migrate")


def _job_params(job: NewJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "queue": job.queue,
        "actor": job.actor,
        "name": job.name,
        "version": job.version,
        "payload": job.payload,
        "args": job.args,
        "options": job.options,
        "max_retries": job.max_retries,
        "priority": job.priority,
        "message_ts_ms": job.message_ts_ms,
        "delay_ms": job.delay_ms,
    }
