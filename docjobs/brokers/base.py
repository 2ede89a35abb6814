"""The one provider seam: what every docjobs broker offers, and what it can do.

Shared code (the web app, the board, the CLI, health, the scheduler) talks to a
provider only through :class:`Broker`: Dramatiq's broker, plus ``enqueue`` with
``conn=``, the board's actions, the routes and services the web app mounts, and
:class:`Capabilities`, which says which of these the provider does. A member a
provider does not offer raises :class:`errors.NotSupportedError` naming it, never
silently does nothing.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self

import dramatiq
import psycopg
from dramatiq.errors import QueueJoinTimeout

from docjobs import errors
from docjobs.brokers.hooks import FastHooks

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from docjobs.brokers.history import JobHistory
    from docjobs.db.board import BoardStore, JobFilter
    from docjobs.db.pool import Database
    from docjobs.db.store import JobStore
    from docjobs.flow.store import FlowStore
    from docjobs.scheduler.table import CronTable
    from docjobs.settings import Settings

ProviderName = Literal["local", "bullmq", "inngest", "stub"]
#: How often a join polls the job table.
JOIN_POLL_SECONDS = 0.05
#: The states a board retry takes a job from.
FINISHED = ("FAILED", "CANCELLED", "COMPLETED")


@dataclass(frozen=True)
class Capabilities:
    """What a provider does; the board, web app, CLI, health and scheduler read it.

    Attributes:
        workers: Dramatiq workers consume it (``docjobs worker``, the embedded worker).
        scheduler: docjobs fires the cron table (in-process, periodiq, ``CronGuard``).
        served: The provider calls the app over HTTP to run jobs (inngest).
        transactional_send: ``enqueue(conn=)`` commits with the caller's transaction.
        pause: A queue can be paused and resumed.
        cancel: A waiting job can be cancelled or deleted.
        run_now: A delayed job can be run now.
        join: ``join`` waits for a queue to empty.
        flush: ``flush``/``flush_all`` drop waiting jobs.
        retry_in_place: A board retry reruns the same job id; else a new job is sent.
        bulk_by_filter: Bulk actions run as one change of the job table; else the
            board goes job by job.
    """

    workers: bool
    scheduler: bool
    served: bool
    transactional_send: bool
    pause: bool
    cancel: bool
    run_now: bool
    join: bool
    flush: bool
    retry_in_place: bool
    bulk_by_filter: bool


@dataclass(frozen=True)
class JobRef:
    """The board's view of a job, from its ``background_job`` row."""

    id: str
    queue: str
    actor: str
    status: str
    run_at: datetime | None
    options: Mapping[str, Any]
    payload: Mapping[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobRef:
        """The job a ``board_job`` row describes."""
        return cls(
            id=row["id"],
            queue=row["queue"],
            actor=row["actor"],
            status=row["status"],
            run_at=row["run_at"],
            options=row["options"] or {},
            payload=row["payload"] or {},
        )


class ActionRefused(errors.DocjobsError):
    """The job is not in a state for this action (the board answers 409)."""


def refusal(action: str, job: JobRef) -> str:
    """Why ``action`` cannot be done to ``job`` in its state: the states it works on."""
    allowed = {
        "retry": "a completed, failed or cancelled job",
        "cancel": "a job that has not started",
        "promote": "a delayed job",
        "delete": "a job that is not running",
    }[action]
    return f"cannot {action} job {job.id}: it is {job.status}; {action} works on {allowed}"


@dataclass(frozen=True)
class SyncedFunction:
    """One function as the provider now knows it (``docjobs inngest sync`` lists them)."""

    id: str
    triggers: tuple[str, ...]


class Service(Protocol):
    """A thread the web process starts with the app and stops with it."""

    def start(self) -> None:
        """Start; safe to call twice."""
        ...

    def stop(self) -> None:
        """Stop and wait; safe to call twice or before ``start``."""
        ...


@dataclass(frozen=True)
class SharedParts:
    """What the runtime's factory builds once, whatever the provider.

    Attributes:
        database: The app's database (``None`` on inngest without one).
        store: docjobs' own rows, on the same pool (``None`` without a database).
        middleware: The middleware stack, history first where the provider keeps one.
        history: The job history middleware (bullmq, inngest with a database).
        cron: The cron table.
        job_rows: The board's rows, on the app's database (``None`` without one).
    """

    database: Database | None
    store: JobStore | None
    middleware: list[dramatiq.Middleware]
    history: JobHistory | None
    cron: CronTable
    job_rows: BoardStore | None


class Broker(FastHooks, dramatiq.Broker, abc.ABC):
    """A docjobs provider: Dramatiq's broker, plus what the board, web app and CLI ask of it.

    Dramatiq's own members (``declare_queue``, ``consume``, ``flush``, ``join``, ...)
    are not declared again here, so a provider built on a Dramatiq broker (bullmq on
    ``RedisBroker``) keeps that broker's.
    """

    #: The provider's name, as ``NEXT_PRIVATE_JOBS_PROVIDER`` spells it.
    name: ClassVar[ProviderName]
    #: The job history middleware goes first in the stack (bullmq, inngest).
    keeps_history: ClassVar[bool] = False
    #: Who runs the jobs and fires the schedules where docjobs' workers do not (the CLI's refusal says it).
    runs_jobs: ClassVar[str] = ""
    #: The board's rows: the job table (local) or the jobs' history (elsewhere).
    job_rows: BoardStore | None = None

    @classmethod
    @abc.abstractmethod
    def capabilities_for(cls, settings: Settings) -> Capabilities:
        """What the provider does with ``settings``, known before anything is built."""

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """What this broker does (inngest without a database has no join, say)."""

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Settings, parts: SharedParts) -> Self:
        """The provider's broker over the parts the runtime's factory built.

        Raises:
            errors.SettingsError: A setting the provider needs is missing.
            dramatiq.errors.BrokerConnectionError: Its server does not answer.
        """

    @abc.abstractmethod
    def enqueue(
        self,
        message: dramatiq.Message[Any],
        *,
        delay: int | None = None,
        conn: psycopg.Connection[Any] | None = None,
    ) -> dramatiq.Message[Any]:
        """Send ``message``; with ``conn``, once that connection's transaction commits.

        Raises:
            errors.NotSupportedError: ``conn`` is given and the provider cannot honour it.
        """

    @abc.abstractmethod
    def enqueue_many(
        self,
        messages: Sequence[dramatiq.Message[Any]],
        *,
        delay: int | None = None,
        conn: psycopg.Connection[Any] | None = None,
        deduplicate: bool = True,
    ) -> int:
        """Send ``messages`` in one round trip (or one write with ``conn``).

        Args:
            deduplicate: The ids are the caller's: one whose job exists is dropped.

        Returns:
            How many were sent.
        """

    def _refuse(self, what: str) -> errors.NotSupportedError:
        return errors.NotSupportedError(f"{what} is not available on the {self.name} provider")

    def queue_depths(self) -> dict[str, int] | None:
        """Jobs due and waiting, by queue, where the provider keeps them; None: the board's rows say."""
        return None

    # The board's actions.

    def set_paused(self, queue: str, paused: bool) -> None:
        """Stop (or let) the provider start jobs of ``queue`` (the board's row is written first)."""
        raise self._refuse("pausing a queue")

    def cancel(self, job: JobRef) -> None:
        """Make sure a job that has not started never runs.

        Raises:
            ActionRefused: It started, or it is out of reach (a worker holds it).
        """
        raise self._refuse("cancelling a job")

    def delete(self, job: JobRef) -> None:
        """Delete a job that is not running (a waiting one never runs).

        Raises:
            ActionRefused: It runs, or it is out of reach (a worker holds it).
        """
        raise self._refuse("deleting a job")

    def run_now(self, job: JobRef) -> None:
        """End a delayed job's delay now.

        Raises:
            ActionRefused: It is no longer delayed.
        """
        raise self._refuse("promote")

    def retry(self, job: JobRef, payload: Mapping[str, Any] | None) -> str:
        """Run a finished job again, with ``payload`` (validated) instead of its own if given.

        Returns:
            The id of the job that runs: the same one if ``capabilities.retry_in_place``.

        Raises:
            ActionRefused: It changed state, or its stored payload no longer validates.
        """
        raise self._refuse("retrying a job")

    def bulk(self, action: Literal["retry", "delete"], where: JobFilter, ids: list[str] | None) -> int:
        """Retry or delete the jobs among ``ids``, or matching ``where``, as one change.

        Only where ``capabilities.bulk_by_filter``; the board goes job by job elsewhere.

        Returns:
            How many jobs changed.
        """
        raise self._refuse(f"bulk {action} by filter")

    # Flow control.

    def flow_store(self) -> FlowStore | None:
        """Where docjobs' workers share flow-control state; None where the provider honours
        flow control itself (Inngest) or keeps nothing to share it in (stub)."""
        return None

    # The web app.

    def routes(self) -> list[BaseRoute]:
        """The routes the provider mounts in the web app (self-trigger, Inngest's serve endpoint)."""
        return []

    def services(self) -> list[Service]:
        """The threads the web process runs beside the app (the inngest outbox relay)."""
        return []

    def sync_app(self, serve_url: str) -> list[SyncedFunction]:
        """Register the app's functions with the provider, served at ``serve_url``.

        Raises:
            errors.NotSupportedError: The provider has no app to sync.
            errors.ServiceError: The provider refused the registration or could not be reached.
        """
        raise errors.NotSupportedError(
            f"syncing the app is for NEXT_PRIVATE_JOBS_PROVIDER=inngest, not {self.name}"
        )

    @classmethod
    def worker_liveness(cls, settings: Settings) -> tuple[bool, str]:
        """``docjobs health worker``: whether a worker of this host (or any) is alive, and why.

        Raises:
            errors.NotSupportedError: The provider has no workers.
        """
        raise errors.NotSupportedError(f"the {cls.name} provider has no workers to check")

    def _rows(self) -> BoardStore:
        if self.job_rows is None:
            raise errors.NotSupportedError(
                f"the {self.name} provider has no database for the board's actions"
            )
        return self.job_rows


def join_unfinished(
    count: Callable[[str], int],
    queue_name: str,
    *,
    timeout_ms: int | None,
    before_each: Callable[[], None] | None = None,
) -> None:
    """Wait until ``count(queue_name)`` (the queue's unfinished jobs) is zero.

    Args:
        count: Counts the queue's PENDING and PROCESSING jobs.
        timeout_ms: Milliseconds to wait at most (``None``: no limit).
        before_each: Runs before each count (the history's flush, say).

    Raises:
        QueueJoinTimeout: Jobs are left at the deadline.
    """
    deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
    while True:
        if before_each is not None:
            before_each()
        if count(queue_name) == 0:
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise QueueJoinTimeout(queue_name)
        time.sleep(JOIN_POLL_SECONDS)
