"""The job store: the only code that runs docjobs' job queries, one store per entity.

Brokers, the scheduler and the board call these stores; none of them holds SQL.
Methods that take ``conn`` run on it (inside the caller's transaction when there is
one); the others borrow a pooled autocommit connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from docjobs.db import sql
from docjobs.db.claims import Claim, ClaimStore
from docjobs.db.flow import FlowRows
from docjobs.db.history import HistoryStore
from docjobs.db.joblogs import JobLogStore
from docjobs.db.jobs import JobRows, NewJob, Row
from docjobs.db.outbox import OutboxStore
from docjobs.db.pool import Database
from docjobs.db.queues import QueueStore
from docjobs.db.rollups import RollupStore
from docjobs.db.tasks import TaskStore
from docjobs.db.workers import WorkerStore

__all__ = ["Claim", "JobStore", "NewJob", "Row"]


@dataclass(frozen=True)
class JobStore:
    """The entity stores over one database: ``background_job`` and its companion tables.

    Attributes:
        database: Where the tables live.
        jobs: Job rows (enqueue, lookups, retention).
        claims: Held attempts and their outcomes.
        workers: Heartbeats and the maintenance round.
        queues: Doorbells and paused queues.
        history: Job events of providers whose queue is elsewhere.
        outbox: Jobs sent in a transaction, waiting to go to such a queue.
        tasks: ``run_task``'s memoized steps.
        flow: Flow control's slots, windows and debounced sends (the local provider's).
        logs: The lines and progress jobs report (``docjobs.log_line``, ``docjobs.set_progress``).
        rollups: Finished jobs counted per bucket, for history beyond retention.
    """

    database: Database
    jobs: JobRows
    claims: ClaimStore
    workers: WorkerStore
    queues: QueueStore
    history: HistoryStore
    outbox: OutboxStore
    tasks: TaskStore
    flow: FlowRows
    logs: JobLogStore
    rollups: RollupStore

    @classmethod
    def over(cls, database: Database) -> JobStore:
        """Every entity store, on ``database``'s pool."""
        jobs = JobRows(database)
        return cls(
            database=database,
            jobs=jobs,
            claims=ClaimStore(database),
            workers=WorkerStore(database, jobs),
            queues=QueueStore(database),
            history=HistoryStore(database),
            outbox=OutboxStore(database),
            tasks=TaskStore(database),
            flow=FlowRows(database),
            logs=JobLogStore(database),
            rollups=RollupStore(database),
        )

    def ping(self, *, timeout_seconds: float | None = None) -> None:
        """Raise unless the database answers, waiting at most ``timeout_seconds`` for a connection."""
        with self.database.connection(timeout_seconds=timeout_seconds) as conn:
            sql.queries()["health_ping"].execute(conn)
