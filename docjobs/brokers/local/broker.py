"""The ``local`` provider as a Dramatiq broker: a PostgreSQL table is the queue.

Enqueue inserts a ``background_job`` row (inside the caller's transaction when a
connection is given) and then announces it (``announcer.py``). Consumers also poll,
so a lost wake-up delays a job by at most the poll interval. The board's actions
are row updates (``board.py``).

Delays are server side (``run_at``), so no delay queues are declared and Dramatiq's
worker never holds delayed messages in memory. A retry that Dramatiq's Retries
middleware re-enqueues is an update of the same row, fenced by the attempt.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

import dramatiq
import orjson
import psycopg
from dramatiq import Message
from dramatiq.errors import QueueNotFound

from docjobs import secrets, signatures
from docjobs.brokers.base import Capabilities, SharedParts, join_unfinished
from docjobs.brokers.local import health
from docjobs.brokers.local.announcer import Announcer
from docjobs.brokers.local.board import QueueInTable
from docjobs.brokers.local.consumer import ClaimedMessage, LocalConsumer, RunClock, describe_failure
from docjobs.brokers.local.consumers import ClaimSettings, ConsumerRegistry, HeldJobs
from docjobs.brokers.local.maintenance import Maintainer, WorkerServices
from docjobs.brokers.local.selftrigger import SelfTrigger
from docjobs.brokers.local.unreachable import database_unreachable
from docjobs.brokers.local.wakeups import Listener
from docjobs.db.board import BoardStore
from docjobs.db.flow import FlowRows
from docjobs.db.store import JobStore, NewJob
from docjobs.settings import Settings

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

logger = logging.getLogger(__name__)

#: Options that only mean something inside one delivery, never stored with the job.
_TRANSIENT_OPTIONS = frozenset({"traceback", "eta", "redis_message_id", "retries"})


#: Display name, version, priority and retries of an actor's jobs.
_ActorDefaults = tuple[str, str, int, int]


def _json(value: Any) -> str:
    # orjson is several times faster; the standard library takes what it refuses
    # (integers beyond 64 bits), so both give the same JSON.
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


#: The table is the queue: every action is a row update, and a send can join the app's transaction.
CAPABILITIES = Capabilities(
    workers=True,
    scheduler=True,
    served=False,
    transactional_send=True,
    pause=True,
    cancel=True,
    run_now=True,
    join=True,
    flush=True,
    retry_in_place=True,
    bulk_by_filter=True,
)


class LocalBroker(QueueInTable):
    """A Dramatiq broker over ``background_job``.

    Args:
        store: The job store.
        middleware: Dramatiq middleware (``None`` for Dramatiq's defaults).
        poll_interval_seconds: The longest a consumer sleeps without a wake-up.
        lease_seconds: How long a claim lasts without a heartbeat.
        max_retries: Retries recorded on rows whose actor sets none.
        listen: Whether consumers LISTEN for doorbells (off behind PgBouncer).
        self_trigger: The web app's wake-up client, or ``None`` for none.
        retention_days: Finished jobs are deleted after this many days.
        job_rows: The board's view of the job table (its actions).
        self_trigger_key: Verifies the self-trigger requests this process serves
            (``None``: it serves none).
        queue_concurrency: The most jobs of a queue a consumer holds at once, by queue.
    """

    name = "local"

    def __init__(
        self,
        store: JobStore,
        *,
        middleware: list[dramatiq.Middleware] | None = None,
        poll_interval_seconds: float = 1.0,
        lease_seconds: float = 30.0,
        max_retries: int = 3,
        listen: bool = True,
        self_trigger: SelfTrigger | None = None,
        retention_days: float = 30.0,
        job_rows: BoardStore | None = None,
        self_trigger_key: bytes | None = None,
        queue_concurrency: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(middleware=middleware)
        self.queue_concurrency = dict(queue_concurrency or {})
        self.store = store
        self.job_rows = job_rows
        self._self_trigger_key = self_trigger_key
        self.claim_settings = ClaimSettings(
            worker_id=uuid.uuid4().hex,
            lease_seconds=lease_seconds,
            poll_interval_seconds=poll_interval_seconds,
            retention_days=retention_days,
        )
        self.worker_id = self.claim_settings.worker_id
        self.max_retries = max_retries
        self.queues: dict[str, None] = {}
        self.consumers = ConsumerRegistry()
        self.announcer = Announcer(store, self.consumers, listen=listen, self_trigger=self_trigger)
        self.doorbell = self.announcer.doorbell
        self._listener = Listener(store, self.wake) if listen else None
        self.held_jobs = HeldJobs()
        self.add_middleware(WorkerServices(self._maintainer))
        self.add_middleware(RunClock())  # when each job really ran, for the rows (issue 20)

    @classmethod
    def from_settings(cls, settings: Settings, parts: SharedParts) -> Self:
        """The job table of the app's database as the queue."""
        assert parts.database is not None and parts.store is not None  # Settings requires a database
        key = secrets.secondary_key(settings)
        return cls(
            parts.store,
            middleware=parts.middleware,
            poll_interval_seconds=settings.poll_interval_seconds,
            lease_seconds=settings.lease_seconds,
            max_retries=settings.retries,
            listen=parts.database.listens,
            self_trigger=SelfTrigger(
                settings.self_trigger_url,
                key,
                workers_listen=parts.database.listens,
                live_workers=functools.partial(
                    parts.store.workers.count_alive, within_seconds=settings.lease_seconds
                ),
            ),
            retention_days=settings.retention_days,
            job_rows=parts.job_rows,
            self_trigger_key=key,
            queue_concurrency=settings.queue_concurrency,
        )

    @classmethod
    def capabilities_for(cls, settings: Settings) -> Capabilities:
        return CAPABILITIES

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    @classmethod
    def worker_liveness(cls, settings: Settings) -> tuple[bool, str]:
        """A worker process on this host heartbeat within one lease."""
        return health.check_worker(settings)

    def routes(self) -> list[BaseRoute]:
        """The signed self-trigger endpoint that wakes this process's consumers."""
        if self._self_trigger_key is None:
            return []
        # Imported by the web app that mounts it: a worker process needs no Starlette (issue 21).
        from starlette.routing import Route

        from docjobs.brokers.local.endpoint import SelfTriggerEndpoint

        endpoint = SelfTriggerEndpoint(self, signatures.SignatureVerifier(self._self_trigger_key))
        return [Route("/api/jobs/{actor}/{job_id}", endpoint.handle, methods=["POST"])]

    # Queues and consumers.

    def declare_queue(self, queue_name: str) -> None:
        if queue_name not in self.queues:
            self.emit_before("declare_queue", queue_name)
            self.queues[queue_name] = None
            self.emit_after("declare_queue", queue_name)

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 30000) -> LocalConsumer:
        if queue_name not in self.queues:
            raise QueueNotFound(queue_name)
        if self._listener is not None:
            self._listener.start()
        return LocalConsumer(
            self.store,
            queue_name,
            prefetch,
            timeout,
            consumers=self.consumers,
            held=self.held_jobs,
            settings=self.claim_settings,
            cap=self.queue_concurrency.get(queue_name),
        )

    def _maintainer(self, concurrency: int) -> Maintainer:
        return Maintainer(
            self.store,
            self.claim_settings,
            held=self.held_jobs,
            consumers=self.consumers,
            queues=self.get_declared_queues,
            doorbell=self.doorbell,
            concurrency=concurrency,
        )

    def held(self) -> list[str]:
        """The jobs this process holds: claimed and not yet acked, nacked or requeued."""
        return self.held_jobs.held()

    def wake(self, queue_name: str | None = None) -> None:
        """Wake this process's consumers of a queue (of every queue when ``None``)."""
        self.consumers.wake(queue_name)

    def flow_store(self) -> FlowRows:
        """Flow control's state in the job database (its own-writes view, as claims)."""
        return self.store.flow

    # Enqueue.

    def enqueue(
        self, message: Message[Any], *, delay: int | None = None, conn: psycopg.Connection[Any] | None = None
    ) -> Message[Any]:
        """Store a message as a PENDING job, or reschedule a failed attempt.

        Args:
            message: The message; its ``message_id`` is the job id, and a second
                message with the same id is dropped (deduplication).
            delay: Milliseconds before the job may start.
            conn: Insert inside this connection's transaction; the job becomes
                visible, and consumers are woken, only when it commits.

        Raises:
            QueueNotFound: The message's queue was never declared.
            BrokerConnectionError: The database could not be reached.
        """
        if message.queue_name not in self.queues:
            raise QueueNotFound(message.queue_name)
        self.emit_before("enqueue", message, delay)
        if isinstance(message, ClaimedMessage):
            self._retry(message, delay or 0)
        else:
            job = self._new_job(message, delay)
            # A standalone send due a doorbell rings it in its own INSERT (see Doorbell).
            doorbell = self.doorbell if conn is None and not delay else None
            rung_at = doorbell.take_inline(message.queue_name) if doorbell is not None else None
            try:
                inserted = self.store.jobs.insert(job, conn=conn, ring=rung_at is not None)
                if conn is not None and inserted:
                    self._wake_after_commit(conn, message, delay)
            except psycopg.OperationalError as exc:
                raise database_unreachable(exc) from exc
            if conn is None and inserted:
                if doorbell is not None and rung_at is not None:
                    doorbell.rang_inline(message.queue_name, rung_at)
                rung = rung_at is not None
                self.announce(message.queue_name, message.actor_name, message.message_id, delay, rung=rung)
            if not inserted:
                logger.debug("Job %s already exists; nothing enqueued.", message.message_id)
        self.emit_after("enqueue", message, delay)
        return message

    def enqueue_many(
        self,
        messages: Sequence[Message[Any]],
        *,
        delay: int | None = None,
        conn: psycopg.Connection[Any] | None = None,
        deduplicate: bool = True,
    ) -> int:
        """Store many messages in one statement.

        Args:
            deduplicate: ``False`` promises the ids are new (generated by docjobs);
                without a delay the rows then go in through COPY, the fastest path.

        Returns:
            How many jobs were inserted; ids that already existed are skipped.
        """
        for queue in {message.queue_name for message in messages}:
            if queue not in self.queues:
                raise QueueNotFound(queue)
        new_jobs = self._checked_new_jobs(messages, delay)
        try:
            if deduplicate or delay:
                inserted = self.store.jobs.insert_many(new_jobs, conn=conn)
            else:
                inserted = self.store.jobs.copy_in(new_jobs, conn=conn)
            if conn is not None and inserted:
                self._wake_after_commit(conn, messages[-1], delay)
        except psycopg.OperationalError as exc:
            raise database_unreachable(exc) from exc
        if conn is None and inserted:
            for queue in {m.queue_name for m in messages}:
                last = next(m for m in reversed(messages) if m.queue_name == queue)
                self.announce(queue, last.actor_name, last.message_id, delay)
        if self.implements("after_enqueue"):
            for message in messages:
                self.emit_after("enqueue", message, delay)
        return inserted

    def _checked_new_jobs(self, messages: Sequence[Message[Any]], delay: int | None) -> list[NewJob]:
        """The rows of a batch, past the send-time hooks: once per batch where a middleware can.

        A middleware with ``before_enqueue_many`` (``MessageLimits``) checks the batch in one
        pass, measuring the JSON the rows carry (``encoded``: each message's kwargs and args
        as written, ``None`` where orjson refused them and the row took the fallback).
        The others get ``before_enqueue`` per message first, as from ``emit_before``: they may
        still change a message before its row is encoded.

        Raises:
            MiddlewareError: A middleware refused the batch (``PayloadRefused``); nothing is built.
        """
        batch_hooks = self._implementers("before_enqueue_many")
        for middleware in self._implementers("before_enqueue"):
            if middleware in batch_hooks:
                continue
            for message in messages:
                self._emit_to(middleware, "before_enqueue", message, delay)
        defaults: dict[str, _ActorDefaults] = {}
        new_jobs: list[NewJob] = []
        encoded: list[tuple[str, str] | None] = []
        for message in messages:
            try:
                kwargs = orjson.dumps(message.kwargs).decode("utf-8")
                args = orjson.dumps(message.args).decode("utf-8") if message.args else "[]"
            except orjson.JSONEncodeError:  # the standard library's fallback; the check sees why
                new_jobs.append(self._new_job(message, delay, defaults))
                encoded.append(None)
                continue
            new_jobs.append(self._new_job(message, delay, defaults, encoded=(kwargs, args)))
            encoded.append((kwargs, args))
        for middleware in batch_hooks:
            self._emit_to(middleware, "before_enqueue_many", messages, delay, encoded=encoded)
        return new_jobs

    def _new_job(
        self,
        message: Message[Any],
        delay: int | None,
        defaults: dict[str, _ActorDefaults] | None = None,
        *,
        encoded: tuple[str, str] | None = None,
    ) -> NewJob:
        known = defaults.get(message.actor_name) if defaults is not None else None
        if known is None:
            known = self._actor_defaults(message.actor_name)
            if defaults is not None:
                defaults[message.actor_name] = known
        name, version, priority, max_retries = known
        options = message.options
        if options:
            options = {k: v for k, v in options.items() if k not in _TRANSIENT_OPTIONS}
            if options.get("max_retries") is not None:
                max_retries = int(options["max_retries"])
        if encoded is None:
            encoded = (_json(message.kwargs), _json(list(message.args)) if message.args else "[]")
        # Positional, in NewJob's field order: half the cost of keywords, per row of a bulk send.
        return NewJob(
            message.message_id,
            message.queue_name,
            message.actor_name,
            name,
            version,
            encoded[0],
            encoded[1],
            _json(options) if options else "{}",
            max_retries,
            priority,
            message.message_timestamp,
            max(int(delay or 0), 0),
        )

    def _actor_defaults(self, actor_name: str) -> _ActorDefaults:
        actor = self.actors.get(actor_name)
        if actor is None:
            return actor_name, "1.0.0", 0, self.max_retries
        max_retries = actor.options.get("max_retries")
        return (
            getattr(actor, "display_name", actor_name),
            getattr(actor, "version", "1.0.0"),
            actor.priority,
            self.max_retries if max_retries is None else int(max_retries),
        )

    def _retry(self, message: ClaimedMessage, delay_ms: int) -> None:
        error, trace = describe_failure(message)
        options = {k: v for k, v in message.options.items() if k not in _TRANSIENT_OPTIONS}
        try:
            self.store.claims.retry(
                message.claim,
                delay_ms=delay_ms,
                retried=int(message.options.get("retries", 0)),
                options=options,
                error=error,
                traceback=trace,
                ran=message.ran(),
            )
        except psycopg.OperationalError as exc:
            raise database_unreachable(exc) from exc
        self.announce(message.queue_name, message.actor_name, message.message_id, delay_ms)

    def _wake_after_commit(
        self, conn: psycopg.Connection[Any], message: Message[Any], delay: int | None
    ) -> None:
        self.announcer.after_commit(conn, message.queue_name, message.actor_name, message.message_id, delay)

    def announce(
        self, queue: str, actor: str, job_id: str, delay_ms: int | None = None, *, rung: bool = False
    ) -> None:
        """Tell whoever consumes ``queue`` that ``job_id`` is there (see ``Announcer``;
        ``rung``: its INSERT carried the doorbell's NOTIFY)."""
        self.announcer.announce(queue, actor, job_id, delay_ms, rung=rung)

    # Housekeeping Dramatiq expects of a broker.

    def flush(self, queue_name: str) -> None:
        self.store.jobs.delete_pending(queue_name)

    def flush_all(self) -> None:
        for queue_name in self.queues:
            self.flush(queue_name)

    def join(self, queue_name: str, *, timeout: int | None = None) -> None:
        """Wait until ``queue_name`` has no PENDING or PROCESSING job.

        Args:
            timeout: Milliseconds to wait at most.

        Raises:
            QueueJoinTimeout: The queue was still busy at the deadline.
        """
        join_unfinished(self.store.jobs.count_unfinished, queue_name, timeout_ms=timeout)

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        self.announcer.close()

    def get_declared_queues(self) -> set[str]:
        return set(self.queues)

    def get_declared_delay_queues(self) -> set[str]:
        return set()
