"""The inngest provider's broker: a send is an Inngest event; Inngest runs the job.

``actor.send`` / ``jobs.trigger`` post the event ``<job id>`` with the payload plus
the message id as its data and the message id as the event id, so Inngest runs a
job once however often its send is repeated. There are no consumers: Inngest calls
the app's serve endpoint (``docjobs.brokers.inngest.serve``) to run each function.

A send inside an app transaction (``conn=``) is written to the ``job_outbox``
table in that transaction and sent once it commits; rows whose after-commit send
failed or never ran (a crash) are sent by the web process's relay (one of
:meth:`InngestBroker.services`). Sending a row twice is harmless: Inngest
deduplicates by event id.

A job sent with an id of the caller's (``jobs.trigger(..., id=...)``) is an event
with that id: Inngest drops a second one within 24 hours, atomically. Beyond that,
while the job's row in ``background_job`` exists (with a database), the send is
dropped here before it goes out, so the id stays taken as long as on the other
providers: until retention deletes the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import dramatiq
import httpx
import inngest
import psycopg
from dramatiq.errors import BrokerConnectionError
from inngest._internal import errors as inngest_errors
from starlette.routing import BaseRoute

from docjobs import errors, registry
from docjobs.brokers.base import (
    Capabilities,
    JobRef,
    Service,
    SharedParts,
    SyncedFunction,
    join_unfinished,
)
from docjobs.brokers.elsewhere import QueueElsewhere
from docjobs.brokers.history import JobHistory
from docjobs.brokers.inngest import sync
from docjobs.brokers.inngest.client import inngest_client, signing_keys
from docjobs.brokers.inngest.events import (
    ARGS_FIELD,
    CANCEL_EVENT,
    MESSAGE_ID_FIELD,
    OPTIONS_FIELD,
    PROMOTE_EVENT,
    QUEUE_FIELD,
    RESUME_EVENT,
    RUN_AT_FIELD,
)
from docjobs.brokers.inngest.flow import HandlerFlow
from docjobs.brokers.inngest.functions import build_functions
from docjobs.brokers.inngest.outcomes import follow_up_ids
from docjobs.brokers.inngest.serve import serve_routes
from docjobs.brokers.inngest.waits import PausedQueues
from docjobs.brokers.joblogs import writer_of
from docjobs.brokers.outbox import Outbox
from docjobs.db.board import BoardStore
from docjobs.db.cron import CronLedger
from docjobs.db.store import JobStore, Row
from docjobs.defaults import INNGEST_SERVE_PATH
from docjobs.scheduler.guard import CronGuard
from docjobs.scheduler.table import CronTable
from docjobs.settings import Settings


def _capabilities(with_database: bool) -> Capabilities:
    # Without a database there is no outbox, no history to join on, no paused-queue table.
    return Capabilities(
        workers=False,
        scheduler=False,
        served=True,
        transactional_send=with_database,
        pause=with_database,
        cancel=True,
        run_now=True,
        join=with_database,
        flush=False,
        retry_in_place=False,
        bulk_by_filter=False,
    )


#: Who fired a cron slot, as the ledger names Inngest's cron triggers.
INNGEST_SENDER = "inngest"


class InngestBroker(QueueElsewhere):
    """Sends events; runs nothing itself.

    Args:
        client: The app's Inngest client (event key, origins).
        middleware: The middleware stack (send-side hooks only run here).
        settings: The settings the functions are built with (retries, app id, serve URL).
        cron: The cron table (the functions' cron triggers).
        store: Where the outbox and the job history live; without it, sending
            with ``conn=`` and ``join`` are refused.
        history: The job history the functions write (``join`` reads it).
        job_rows: The board's view of the history rows.

    Attributes:
        function_timeouts: Inngest ``timeouts`` (start, finish) of jobs' functions, by
            job id; a run that outlives them is cancelled and its job recorded
            ``timed out in Inngest``. Set before the app is built and synced. A
            delayed job's delay counts: it waits inside its run.
    """

    name = "inngest"
    keeps_history = True
    runs_jobs = "Inngest runs the jobs and fires the cron triggers by calling `docjobs web` at /api/jobs"

    def __init__(
        self,
        client: inngest.Inngest,
        *,
        middleware: list[dramatiq.Middleware],
        settings: Settings,
        cron: CronTable,
        store: JobStore | None = None,
        history: JobHistory | None = None,
        job_rows: BoardStore | None = None,
        cron_guard: CronGuard | None = None,
    ) -> None:
        super().__init__(middleware=middleware)
        self.client = client
        self.settings = settings
        self.cron = cron
        self.store = store
        self.history = history
        self.job_rows = job_rows
        self.cron_guard = cron_guard
        self.outbox = Outbox(store.outbox, self._send_rows, relayed_by="the relay") if store else None
        self.queues: dict[str, None] = {}
        self.function_timeouts: dict[str, inngest.Timeouts] = {}

    @classmethod
    def from_settings(cls, settings: Settings, parts: SharedParts) -> Self:
        """Inngest runs the jobs; this process sends events and serves the functions."""
        return cls(
            inngest_client(settings),
            middleware=parts.middleware,
            settings=settings,
            cron=parts.cron,
            store=parts.store,
            history=parts.history,
            job_rows=parts.job_rows,
            # Inngest fires the cron triggers; their runs ask the ledger as a worker's would.
            cron_guard=CronGuard(parts.cron, CronLedger(parts.database), sender=INNGEST_SENDER)
            if parts.database
            else None,
        )

    @classmethod
    def capabilities_for(cls, settings: Settings) -> Capabilities:
        return _capabilities(settings.database_url is not None)

    @property
    def capabilities(self) -> Capabilities:
        return _capabilities(self.store is not None)

    def enqueue(
        self,
        message: dramatiq.Message[Any],
        *,
        delay: int | None = None,
        conn: psycopg.Connection[Any] | None = None,
    ) -> dramatiq.Message[Any]:
        """Send ``message`` as an event; with ``conn``, once that transaction commits.

        Returns:
            The message as sent (a callback's carries its replay-safe id, a delayed one its run time).
        """
        (sent,) = self._send_or_store([message], delay, conn, deduplicate=False)
        return sent

    def enqueue_many(
        self,
        messages: Sequence[dramatiq.Message[Any]],
        *,
        delay: int | None = None,
        conn: psycopg.Connection[Any] | None = None,
        deduplicate: bool = True,
    ) -> int:
        """Send ``messages`` as events in one request, or write them to the outbox with ``conn``.

        Args:
            deduplicate: The ids are the caller's: those whose job has a row are dropped.

        Returns:
            How many were sent (or written to the outbox).
        """
        return len(self._send_or_store(messages, delay, conn, deduplicate=deduplicate))

    def _send_or_store(
        self,
        messages: Sequence[dramatiq.Message[Any]],
        delay: int | None,
        conn: psycopg.Connection[Any] | None,
        *,
        deduplicate: bool,
    ) -> list[dramatiq.Message[Any]]:
        if conn is not None and (self.store is None or self.outbox is None):
            raise errors.NotSupportedError(
                "sending inside a transaction on inngest needs NEXT_PRIVATE_DATABASE_URL (the job outbox)"
            )
        run_at = datetime.now(UTC) + timedelta(milliseconds=delay) if delay else None
        for message in messages:  # all refused before any is sent
            self._refuse_unsupported(message)
        keyed = follow_up_ids.get()
        prepared = []
        for message in messages:
            if keyed is not None:  # a callback sent by a job's outcome: the same id on a replayed call
                message = message.copy(message_id=keyed.next())
            if run_at is not None:
                message = message.copy(options={RUN_AT_FIELD: run_at.isoformat()})
            self.emit_before("enqueue", message, delay)  # the checks first: the ids are looked up next
            prepared.append(message)
        if deduplicate and self.store is not None:
            known = {row["id"] for row in self.store.jobs.get_many([m.message_id for m in prepared])}
            prepared = [message for message in prepared if message.message_id not in known]
        if conn is None:
            self._send(prepared)
        else:
            assert self.outbox is not None
            self.outbox.add(conn, [(m.message_id, m.queue_name, m.encode()) for m in prepared])
        return prepared

    def _send(self, messages: Sequence[dramatiq.Message[Any]]) -> None:
        self._send_events([self._event(message) for message in messages])
        now = datetime.now(UTC)
        for message in messages:
            run_at = message.options.get(RUN_AT_FIELD)
            delay = None
            if run_at is not None:
                delay = max(int((datetime.fromisoformat(run_at) - now).total_seconds() * 1000), 0)
            self.emit_after("enqueue", message, delay)

    def _send_events(self, events: list[inngest.Event]) -> None:
        """Post events to Inngest's event API: its refusals and outages as Dramatiq's connection error.

        Raises:
            BrokerConnectionError: Inngest refused the events or could not be reached.
        """
        try:
            self.client.send_sync(events)
        except (inngest_errors.Error, httpx.HTTPError) as exc:
            raise BrokerConnectionError(f"Inngest did not take the events: {exc}") from exc

    def _send_rows(self, rows: list[Row]) -> None:
        self._send([dramatiq.Message.decode(bytes(row["data"])) for row in rows])

    def _refuse_unsupported(self, message: dramatiq.Message[Any]) -> None:
        """Refuse what an Inngest function cannot honour, naming the option.

        Raises:
            errors.NotSupportedError: The actor has a time limit, or
                the message asks for more retries than its function has.
        """
        actor = self.actors.get(message.actor_name)
        actor_options = actor.options if actor is not None else {}
        if message.options.get("time_limit") or actor_options.get("time_limit"):
            raise errors.NotSupportedError(
                f"{message.actor_name}: time_limit is not supported by the inngest provider "
                "(Inngest cannot interrupt a running call)"
            )
        asked = message.options.get("max_retries")
        function_retries = int(actor_options.get("max_retries", self.settings.retries))
        if asked is not None and int(asked) > function_retries:
            raise errors.NotSupportedError(
                f"{message.actor_name}: max_retries={asked} is more than its actor's {function_retries}, "
                "which the inngest provider registers with Inngest"
            )

    def _event(self, message: dramatiq.Message[Any]) -> inngest.Event:
        """The event of ``message``: its payload and id, its options and positional arguments if any.

        Its timestamp is the message's, so ``max_age`` counts from when the message was built.
        """
        data: dict[str, Any] = {**message.kwargs, MESSAGE_ID_FIELD: message.message_id}
        run_at = message.options.get(RUN_AT_FIELD)
        if run_at is not None:
            data[RUN_AT_FIELD] = run_at
        options = {name: value for name, value in message.options.items() if name != RUN_AT_FIELD}
        if options:
            data[OPTIONS_FIELD] = options
        if message.args:
            data[ARGS_FIELD] = list(message.args)
        return inngest.Event(
            name=message.actor_name, data=data, id=message.message_id, ts=message.message_timestamp
        )

    # The board's actions (the history rows are written by ``QueueElsewhere``).

    def _withdraw(self, job: JobRef, action: str) -> bool:
        """Ask Inngest to cancel the job's run (each function cancels on ``CANCEL_EVENT``)."""
        self._send_events([inngest.Event(name=CANCEL_EVENT, data={MESSAGE_ID_FIELD: job.id})])
        return True

    def _promote(self, job: JobRef) -> bool:
        """End the delay of the job's run now (a delayed job waits for ``PROMOTE_EVENT``)."""
        self._send_events([inngest.Event(name=PROMOTE_EVENT, data={MESSAGE_ID_FIELD: job.id})])
        return True

    def set_paused(self, queue: str, paused: bool) -> None:
        """Let the runs held by a paused queue go on, once it is resumed in ``queue_state``.

        Functions read the paused queues from the table themselves; a run held by
        one waits for ``RESUME_EVENT`` (and looks again every minute in case it
        began waiting just after the event went out). Pausing sends nothing.
        """
        if not paused:
            self._send_events([inngest.Event(name=RESUME_EVENT, data={QUEUE_FIELD: queue})])

    # The web app.

    def functions(self) -> list[inngest.Function[Any]]:
        """The functions of every declared actor, as the app serves (and syncs) them."""
        store = self.store
        return build_functions(
            self.client,
            registry.declared().values(),
            cron=self.cron,
            default_retries=self.settings.retries,
            history=self.history,
            broker=self,
            paused=PausedQueues(store.queues.paused_queues) if store is not None else None,
            app_id=self.settings.inngest_app_id,
            cron_guard=self.cron_guard,
            timeouts=self.function_timeouts,
            log_sink=writer_of(self),
            flow=HandlerFlow(store.flow, store.history) if store is not None else None,
            queue_caps=self.settings.queue_concurrency,
        )

    def routes(self) -> list[BaseRoute]:
        """Inngest's serve endpoint: GET introspection, PUT sync, POST call."""
        settings = self.settings
        return list(
            serve_routes(
                self.client,
                self.functions(),
                path=INNGEST_SERVE_PATH,
                signing_keys=signing_keys(settings),
                # Production registers the configured URL; the dev server's request says
                # where it reached the app.
                serve_url=None if settings.is_development else settings.inngest_serve_url,
            )
        )

    def services(self) -> list[Service]:
        """With a database, the thread that sends the outbox rows a commit hook missed."""
        return [] if self.outbox is None else [self.outbox.relay_thread()]

    def sync_app(self, serve_url: str) -> list[SyncedFunction]:
        return sync.sync_app(self.client, self.functions(), serve_url)

    # What Dramatiq expects of a broker.

    def declare_queue(self, queue_name: str) -> None:
        if queue_name not in self.queues:
            self.emit_before("declare_queue", queue_name)
            self.queues[queue_name] = None
            self.emit_after("declare_queue", queue_name)

    def get_declared_queues(self) -> set[str]:
        return set(self.queues)

    def get_declared_delay_queues(self) -> set[str]:
        return set()

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> dramatiq.Consumer:
        raise errors.NotSupportedError(
            "the inngest provider has no workers: Inngest calls the app's /api/jobs endpoint to run jobs"
        )

    def flush(self, queue_name: str) -> None:
        raise errors.NotSupportedError("jobs sent to Inngest are managed by Inngest")

    def flush_all(self) -> None:
        raise errors.NotSupportedError("jobs sent to Inngest are managed by Inngest")

    def join(self, queue_name: str, *, timeout: int | None = None) -> None:
        """Wait until the job history shows no job of ``queue_name`` waiting or running.

        Inngest keeps no queue docjobs can count; the history the functions write
        can be, when they run in this process (tests, the demo) or have written it.

        Raises:
            QueueJoinTimeout: Jobs are left after ``timeout`` milliseconds.
        """
        if self.store is None or self.history is None:
            raise errors.NotSupportedError(
                "joining on inngest needs NEXT_PRIVATE_DATABASE_URL (the job history)"
            )
        join_unfinished(
            self.store.jobs.count_unfinished, queue_name, timeout_ms=timeout, before_each=self.history.flush
        )
