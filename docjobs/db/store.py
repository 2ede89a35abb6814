"""The job store: the only code that runs docjobs' job queries, one store per entity.

Brokers, the scheduler and the board call these stores; none of them holds SQL.
Methods that take ``conn`` run on it (inside the caller's transaction when there is
one); the others borrow a pooled autocommit connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg

from docjobs.db import sql
from docjobs.db.claims import Claim, ClaimStore
from docjobs.db.history import HistoryStore
from docjobs.db.jobs import JobRows, NewJob, Row
from docjobs.db.outbox import DEFAULT_TAKE_LIMIT, OutboxStore
from docjobs.db.pool import Database
from docjobs.db.queues import QueueStore
from docjobs.db.tasks import TaskStore
from docjobs.db.workers import WorkerStore

__all__ = ["Claim", "JobStore", "NewJob", "Row"]


class JobStore:
    """The entity stores over one database: ``background_job`` and its companion tables.

    Attributes:
        jobs: Job rows (enqueue, lookups, retention).
        claims: Held attempts and their outcomes.
        workers: Heartbeats and the maintenance round.
        queues: Doorbells and paused queues.
        history: Job events of providers whose queue is elsewhere.
        outbox: Jobs sent in a transaction, waiting to go to such a queue.
        tasks: ``run_task``'s memoized steps.

    Args:
        database: Where the tables live.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self.jobs = JobRows(database)
        self.claims = ClaimStore(database)
        self.workers = WorkerStore(database, self.jobs)
        self.queues = QueueStore(database)
        self.history = HistoryStore(database)
        self.outbox = OutboxStore(database)
        self.tasks = TaskStore(database)
        self._q = sql.queries()

    def ping(self) -> None:
        """Raise unless the database answers."""
        with self.database.connection() as conn:
            self._q["health_ping"].execute(conn)

    # The old flat names, kept while issue 19's callers move (brokers/ is being edited
    # meanwhile); each is removed once nothing calls it.

    def insert(self, job: NewJob, *, conn: psycopg.Connection[Any] | None = None) -> bool:
        # delegate: callers move to store.jobs.insert
        return self.jobs.insert(job, conn=conn)

    def insert_many(self, jobs: Sequence[NewJob], *, conn: psycopg.Connection[Any] | None = None) -> int:
        # delegate: callers move to store.jobs.insert_many
        return self.jobs.insert_many(jobs, conn=conn)

    def copy_in(self, jobs: Sequence[NewJob], *, conn: psycopg.Connection[Any] | None = None) -> int:
        # delegate: callers move to store.jobs.copy_in
        return self.jobs.copy_in(jobs, conn=conn)

    def count_unfinished(self, queue: str) -> int:
        # delegate: callers move to store.jobs.count_unfinished
        return self.jobs.count_unfinished(queue)

    def delete_pending(self, queue: str) -> None:
        # delegate: callers move to store.jobs.delete_pending
        self.jobs.delete_pending(queue)

    def find(self, job_id: str) -> Row | None:
        # delegate: callers move to store.jobs.find
        return self.jobs.find(job_id)

    def recent(self, limit: int) -> list[Row]:
        # delegate: callers move to store.jobs.recent
        return self.jobs.recent(limit)

    def get_many(self, job_ids: Sequence[str]) -> list[Row]:
        # delegate: callers move to store.jobs.get_many
        return self.jobs.get_many(job_ids)

    def delete_finished(self, days: float, *, now: datetime | None = None) -> int:
        # delegate: callers move to store.jobs.delete_finished
        return self.jobs.delete_finished(days, now=now)

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
        # delegate: callers move to store.claims.complete_and_claim
        return self.claims.complete_and_claim(
            conn, queue=queue, done=done, limit=limit, worker=worker, lease_seconds=lease_seconds
        )

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
        # delegate: callers move to store.claims.retry
        return self.claims.retry(
            claim, delay_ms=delay_ms, retried=retried, options=options, error=error, traceback=traceback
        )

    def fail(self, claim: Claim, *, error: str | None, traceback: str | None) -> bool:
        # delegate: callers move to store.claims.fail
        return self.claims.fail(claim, error=error, traceback=traceback)

    def requeue(self, claims: Iterable[Claim]) -> None:
        # delegate: callers move to store.claims.requeue
        self.claims.requeue(claims)

    def heartbeat(
        self,
        *,
        worker: str,
        held: Sequence[str],
        queues: Sequence[str],
        concurrency: int,
        lease_seconds: float,
    ) -> None:
        # delegate: callers move to store.workers.heartbeat
        self.workers.heartbeat(
            worker=worker, held=held, queues=queues, concurrency=concurrency, lease_seconds=lease_seconds
        )

    def delete_worker(self, worker: str) -> None:
        # delegate: callers move to store.workers.delete_worker
        self.workers.delete_worker(worker)

    def maintain(
        self, *, stale_worker_seconds: float, retention_days: float, now: datetime | None = None
    ) -> list[Row] | None:
        # delegate: callers move to store.workers.maintain
        return self.workers.maintain(
            stale_worker_seconds=stale_worker_seconds, retention_days=retention_days, now=now
        )

    def notify(self, queue: str, *, conn: psycopg.Connection[Any] | None = None) -> None:
        # delegate: callers move to store.queues.notify
        self.queues.notify(queue, conn=conn)

    def listen(self, conn: psycopg.Connection[Any]) -> None:
        # delegate: callers move to store.queues.listen
        self.queues.listen(conn)

    def paused_queues(self) -> frozenset[str]:
        # delegate: callers move to store.queues.paused_queues
        return self.queues.paused_queues()

    def record_history(
        self, events: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        # delegate: callers move to store.history.record
        self.history.record(events, failures)

    def outbox_add(self, conn: psycopg.Connection[Any], entries: Sequence[tuple[str, str, bytes]]) -> None:
        # delegate: callers move to store.outbox.add
        self.outbox.add(conn, entries)

    def outbox_take(
        self,
        send: Callable[[list[Row]], None],
        *,
        ids: Sequence[str] | None = None,
        stale_seconds: float = 0.0,
        limit: int = DEFAULT_TAKE_LIMIT,
    ) -> int:
        # delegate: callers move to store.outbox.take
        return self.outbox.take(send, ids=ids, stale_seconds=stale_seconds, limit=limit)

    def task_get_or_create(self, *, task_id: str, job_id: str, actor: str, name: str) -> Row:
        # delegate: callers move to store.tasks.get_or_create
        return self.tasks.get_or_create(task_id=task_id, job_id=job_id, actor=actor, name=name)

    def task_complete(self, task_id: str, result_json: str) -> None:
        # delegate: callers move to store.tasks.complete
        self.tasks.complete(task_id, result_json)

    def task_record_failure(self, task_id: str, error: str) -> None:
        # delegate: callers move to store.tasks.record_failure
        self.tasks.record_failure(task_id, error)
