"""The job store: the only code that runs docjobs' queries.

Brokers, the scheduler and the board call these methods; none of them holds SQL.
Methods that take ``conn`` run on it (inside the caller's transaction when there is
one); the others borrow a pooled autocommit connection.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import psycopg

from docjobs import redaction
from docjobs.db import sql
from docjobs.db.direct import DirectStatement
from docjobs.db.pool import Database

#: pg_try_advisory_xact_lock key of the maintenance round ("docjobs" in ASCII).
MAINTENANCE_LOCK_KEY = 0x646F636A6F6273
#: NewJob fields that job_copy_in loads (all but the delay).
_COPY_COLUMNS = 10
#: Finished jobs deleted per statement, so each transaction stays short.
RETENTION_BATCH = 5_000
#: Longest a maintenance round spends deleting finished jobs.
RETENTION_BUDGET_SECONDS = 2.0
#: What a failed attempt recorded by ``record_history`` carries.
ATTEMPT_COLUMNS = ("job_id", "attempt", "started_at", "finished_at", "outcome", "error", "traceback")
#: What a job event recorded by ``record_history`` carries.
HISTORY_COLUMNS = (
    "id",
    "queue",
    "actor",
    "name",
    "status",
    "payload",
    "args",
    "options",
    "retried",
    "attempts",
    "max_retries",
    "run_at",
    "at",
    "submitted_at",
    "started_at",
    "completed_at",
    "last_error",
    "last_traceback",
)


class NewJob(NamedTuple):
    """A job row about to be inserted. JSON columns are already encoded.

    A named tuple: bulk enqueues build tens of thousands per call, and its first ten
    fields are the COPY row as they are.
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
    delay_ms: int


class Claim(NamedTuple):
    """A held attempt: only this (id, attempts) pair may ack, nack or retry the job."""

    id: str
    attempts: int


Row = dict[str, Any]


class JobStore:
    """Reads and writes ``background_job`` and its companion tables.

    Args:
        database: Where the tables live.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._q = sql.queries()
        # A named prepared statement is session state: behind a transaction pooler the
        # insert goes through psycopg unprepared, like every other query there.
        self._insert = None if database.transaction_pooling else DirectStatement(self._q["job_insert"])

    # Enqueue.

    def insert(self, job: NewJob, *, conn: psycopg.Connection[Any] | None = None) -> bool:
        """Insert a job; ``False`` when a job with its id already exists."""
        params = _job_params(job)
        if conn is not None:
            # A failed statement would abort the caller's transaction: skip duplicates instead.
            return self._q["job_insert_unless_exists"].execute(conn, params).fetchone() is not None
        try:
            with self.database.connection() as pooled:
                if self._insert is None:
                    self._q["job_insert"].execute(pooled, params)
                else:
                    self._insert.execute(pooled, params)
        except psycopg.errors.UniqueViolation:
            return False
        return True

    def insert_many(self, jobs: Sequence[NewJob], *, conn: psycopg.Connection[Any] | None = None) -> int:
        """Insert jobs in one statement; returns how many were new (existing ids are skipped)."""
        params = {
            "ids": [job.id for job in jobs],
            "queues": [job.queue for job in jobs],
            "actors": [job.actor for job in jobs],
            "names": [job.name for job in jobs],
            "versions": [job.version for job in jobs],
            "payloads": [job.payload for job in jobs],
            "args": [job.args for job in jobs],
            "options": [job.options for job in jobs],
            "max_retries": [job.max_retries for job in jobs],
            "priorities": [job.priority for job in jobs],
            "delays_ms": [job.delay_ms for job in jobs],
        }
        if conn is not None:
            return len(self._q["job_insert_many"].execute(conn, params).fetchall())
        with self.database.connection() as pooled:
            return len(self._q["job_insert_many"].execute(pooled, params).fetchall())

    def copy_in(self, jobs: Sequence[NewJob], *, conn: psycopg.Connection[Any] | None = None) -> int:
        """Insert jobs with new ids and no delay through COPY; returns how many.

        COPY cannot skip existing ids: a duplicate fails the whole batch, so only
        ids docjobs generated may come this way.
        """
        if conn is not None:
            return self._copy_in(conn, jobs)
        with self.database.connection() as pooled, pooled.transaction():
            return self._copy_in(pooled, jobs)

    def _copy_in(self, conn: psycopg.Connection[Any], jobs: Sequence[NewJob]) -> int:
        with conn.cursor() as cursor, cursor.copy(self._q["job_copy_in"].text) as copy:
            for job in jobs:
                copy.write_row(job[:_COPY_COLUMNS])
        return len(jobs)

    def notify(self, queue: str, *, conn: psycopg.Connection[Any] | None = None) -> None:
        """Ring a queue's doorbell; inside a transaction it rings at commit, never on rollback."""
        if conn is not None:
            self._q["queue_notify"].execute(conn, {"queue": queue})
            return
        with self.database.connection() as pooled:
            self._q["queue_notify"].execute(pooled, {"queue": queue})

    def listen(self, conn: psycopg.Connection[Any]) -> None:
        """Subscribe a dedicated connection to queue doorbells."""
        self._q["queue_listen"].execute(conn)

    def paused_queues(self) -> frozenset[str]:
        """The queues paused on the board."""
        with self.database.connection() as conn:
            return frozenset(row["queue"] for row in self._q["queue_paused"].execute(conn))

    def count_unfinished(self, queue: str) -> int:
        """How many jobs of ``queue`` are PENDING or PROCESSING."""
        with self.database.connection() as conn:
            row = self._q["queue_count_unfinished"].execute(conn, {"queue": queue}).fetchone()
        return int(row["unfinished"]) if row else 0

    def delete_pending(self, queue: str) -> None:
        """Drop the PENDING jobs of ``queue``."""
        with self.database.connection() as conn:
            self._q["queue_delete_pending"].execute(conn, {"queue": queue})

    # Consume.

    def complete_and_claim(
        self,
        conn: psycopg.Connection[Any],
        *,
        queue: str,
        done: Sequence[Claim],
        limit: int,
        worker: str,
        lease_seconds: float,
    ) -> list[Row]:
        """Complete acked claims and claim up to ``limit`` due jobs, in one statement.

        Returns:
            The claimed rows in queue order.
        """
        rows = (
            self._q["job_complete_and_claim"]
            .execute(
                conn,
                {
                    "done_ids": [claim.id for claim in done],
                    "done_attempts": [claim.attempts for claim in done],
                    "queue": queue,
                    "limit": limit,
                    "worker": worker,
                    "lease_seconds": lease_seconds,
                },
            )
            .fetchall()
        )
        # UPDATE ... RETURNING does not keep the claim's order.
        rows.sort(key=lambda row: (row["priority"], row["seq"]))
        return rows

    def retry(
        self,
        claim: Claim,
        *,
        delay_ms: int,
        retried: int,
        options: dict[str, Any],
        error: str | None,
        traceback: str | None,
    ) -> bool:
        """Schedule another attempt; ``False`` when ``claim`` no longer holds the job."""
        with self.database.connection() as conn:
            row = (
                self._q["job_retry"]
                .execute(
                    conn,
                    {
                        "id": claim.id,
                        "attempts": claim.attempts,
                        "delay_ms": delay_ms,
                        "retried": retried,
                        "options": json.dumps(options),
                        "error": _masked(error),
                        "traceback": _masked(traceback),
                    },
                )
                .fetchone()
            )
        return row is not None

    def fail(self, claim: Claim, *, error: str | None, traceback: str | None) -> bool:
        """Mark the job FAILED; ``False`` when ``claim`` no longer holds the job."""
        with self.database.connection() as conn:
            row = (
                self._q["job_fail"]
                .execute(
                    conn,
                    {
                        "id": claim.id,
                        "attempts": claim.attempts,
                        "error": _masked(error),
                        "traceback": _masked(traceback),
                    },
                )
                .fetchone()
            )
        return row is not None

    def requeue(self, claims: Iterable[Claim]) -> None:
        """Give claimed, unprocessed jobs back to the queue."""
        claims = list(claims)
        if not claims:
            return
        with self.database.connection() as conn:
            self._q["job_requeue"].execute(
                conn,
                {"ids": [claim.id for claim in claims], "attempts": [claim.attempts for claim in claims]},
            )

    # Liveness and maintenance.

    def heartbeat(
        self,
        *,
        worker: str,
        held: Sequence[str],
        queues: Sequence[str],
        concurrency: int,
        lease_seconds: float,
    ) -> None:
        """Record the worker as alive and extend the leases of the jobs it still holds.

        Only ``held`` jobs are extended: a job whose outcome this worker failed to
        write is not, so its lease runs out and the rescuer returns it.
        """
        with self.database.connection() as conn:
            self._q["worker_heartbeat"].execute(
                conn,
                {
                    "worker": worker,
                    "held": list(held),
                    "hostname": socket.gethostname(),
                    "pid": os.getpid(),
                    "queues": list(queues),
                    "concurrency": concurrency,
                    "lease_seconds": lease_seconds,
                },
            )

    def delete_worker(self, worker: str) -> None:
        """Forget a worker that stopped cleanly."""
        with self.database.connection() as conn:
            self._q["worker_delete"].execute(conn, {"worker": worker})

    def maintain(
        self, *, stale_worker_seconds: float, retention_days: float, now: datetime | None = None
    ) -> list[Row] | None:
        """Run one maintenance round unless another process is running one.

        Under an advisory lock, in one transaction: rescue jobs whose lease expired
        and forget silent workers. Then, still only in the process that won the
        round, apply retention (see :meth:`delete_finished`).

        Returns:
            The rescued jobs, or ``None`` when another process holds the round.
        """
        with self.database.connection() as conn:
            with conn.transaction():
                lock = self._q["maintenance_try_lock"].execute(conn, {"key": MAINTENANCE_LOCK_KEY}).fetchone()
                if lock is None or not lock["locked"]:
                    return None
                rescued: list[Row] = self._q["job_rescue_expired"].execute(conn, {"now": now}).fetchall()
                self._q["worker_delete_stale"].execute(
                    conn, {"now": now, "stale_seconds": stale_worker_seconds}
                )
        self.delete_finished(retention_days, now=now)
        return rescued

    def delete_finished(self, days: float, *, now: datetime | None = None) -> int:
        """Delete finished jobs older than ``days``, in short batches.

        Each batch is its own transaction; it stops when a batch comes back short
        or :data:`RETENTION_BUDGET_SECONDS` is spent (the next round goes on).

        Returns:
            How many jobs were deleted.
        """
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

    # Lookups.

    def ping(self) -> None:
        """Raise unless the database answers."""
        with self.database.connection() as conn:
            self._q["health_ping"].execute(conn)

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

    def record_history(
        self, events: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        """Apply job events (one per job, see ``HISTORY_COLUMNS``) and failed attempts in one statement.

        Each failure (``ATTEMPT_COLUMNS``) must belong to a job among ``events``.
        """
        params = {column: [event[column] for event in events] for column in HISTORY_COLUMNS}
        for column in ATTEMPT_COLUMNS:
            params[f"failure_{column}"] = [failure[column] for failure in failures]
        for column in ("last_error", "last_traceback", "failure_error", "failure_traceback"):
            params[column] = [_masked(text) for text in params[column]]
        with self.database.connection() as conn:
            self._q["job_record_history"].execute(conn, params)

    # The outbox of providers whose queue is elsewhere.

    def outbox_add(self, conn: psycopg.Connection[Any], entries: Sequence[tuple[str, str, bytes]]) -> None:
        """Write ``(id, queue, data)`` entries in the caller's transaction."""
        self._q["job_outbox_add"].execute(
            conn,
            {
                "id": [entry[0] for entry in entries],
                "queue": [entry[1] for entry in entries],
                "data": [entry[2] for entry in entries],
            },
        )

    def outbox_take(
        self,
        send: Callable[[list[Row]], None],
        *,
        ids: Sequence[str] | None = None,
        stale_seconds: float = 0.0,
        limit: int = 1000,
    ) -> int:
        """Remove outbox rows and ``send`` them, oldest first; if ``send`` raises, they stay.

        Args:
            send: Gets the rows (``id``, ``queue``, ``data``) inside the transaction.
            ids: These rows; else rows older than ``stale_seconds``, at most ``limit``.

        Returns:
            How many rows were sent.
        """
        with self.database.transaction() as conn:
            if ids is not None:
                cursor = self._q["job_outbox_take"].execute(conn, {"ids": list(ids)})
            else:
                cursor = self._q["job_outbox_take_stale"].execute(
                    conn, {"seconds": stale_seconds, "limit": limit}
                )
            rows: list[Row] = sorted(cursor.fetchall(), key=lambda row: row["created_at"])
            if rows:
                send(rows)
        return len(rows)

    # Tasks.

    def task_get_or_create(self, *, task_id: str, job_id: str, actor: str, name: str) -> Row:
        """A task's status, result and failure count, creating it on first use."""
        with self.database.connection() as conn:
            cursor = self._q["task_get_or_create"].execute(
                conn, {"id": task_id, "job_id": job_id, "actor": actor, "name": name}
            )
            row: Row | None = cursor.fetchone()
        assert row is not None  # the statement inserts or finds the row
        return row

    def task_complete(self, task_id: str, result_json: str) -> None:
        """Store a task's JSON result."""
        with self.database.connection() as conn:
            self._q["task_complete"].execute(conn, {"id": task_id, "result": result_json})

    def task_record_failure(self, task_id: str, error: str) -> None:
        """Count a failed run of a task and keep its error line."""
        with self.database.connection() as conn:
            self._q["task_record_failure"].execute(conn, {"id": task_id, "error": _masked(error)})


def _masked(text: str | None) -> str | None:
    """An error or traceback as the board may show it: an exception's text can hold a secret."""
    return None if text is None else redaction.redact(text)


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
        "delay_ms": job.delay_ms,
    }
