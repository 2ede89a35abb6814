"""The inngest provider's broker: a send is an Inngest event; Inngest runs the job.

``actor.send`` / ``jobs.trigger`` post the event ``<job id>`` with the payload plus
the message id as its data and the message id as the event id, so Inngest runs a
job once however often its send is repeated. There are no consumers: Inngest calls
the app's serve endpoint (``docjobs.brokers.inngest.serve``) to run each function.

A send inside an app transaction (``conn=``) is written to the ``job_outbox``
table in that transaction and sent once it commits; rows whose after-commit send
failed or never ran (a crash) are sent by the web process's relay
(:class:`OutboxRelay`). Sending a row twice is harmless: Inngest deduplicates by
event id.

A job sent with an id of the caller's (``jobs.trigger(..., id=...)``) is an event
with that id: Inngest drops a second one within 24 hours, atomically. Beyond that,
while the job's row in ``background_job`` exists (with a database), the send is
dropped here before it goes out, so the id stays taken as long as on the other
providers: until retention deletes the row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import httpx
import inngest
import psycopg
from dramatiq.errors import BrokerConnectionError, QueueJoinTimeout
from inngest._internal import errors as inngest_errors

from docjobs import errors
from docjobs.brokers.base import FastHooks
from docjobs.brokers.history import JobHistory
from docjobs.brokers.inngest.functions import (
    CANCEL_EVENT,
    MESSAGE_ID_FIELD,
    PROMOTE_EVENT,
    QUEUE_FIELD,
    RESUME_EVENT,
    RUN_AT_FIELD,
)
from docjobs.db.pool import on_commit
from docjobs.db.store import JobStore, Row

logger = logging.getLogger(__name__)

#: An outbox row older than this missed its after-commit send: the relay sends it.
OUTBOX_STALE_SECONDS = 5.0
#: How often the relay looks for such rows.
RELAY_INTERVAL_SECONDS = 5.0
#: How often ``join`` looks at the job history.
JOIN_POLL_SECONDS = 0.05


class InngestBroker(FastHooks, dramatiq.Broker):
    """Sends events; runs nothing itself.

    Args:
        client: The app's Inngest client (event key, origins).
        middleware: The middleware stack (send-side hooks only run here).
        store: Where the outbox and the job history live; without it, sending
            with ``conn=`` and ``join`` are refused.
        history: The job history the functions write (``join`` reads it).
    """

    #: Sends made with ``conn=`` go once the transaction commits.
    supports_transactions = True

    def __init__(
        self,
        client: inngest.Inngest,
        *,
        middleware: list[dramatiq.Middleware],
        store: JobStore | None = None,
        history: JobHistory | None = None,
    ) -> None:
        super().__init__(middleware=middleware)
        self.client = client
        self.store = store
        self.history = history
        self.queues: dict[str, None] = {}

    def enqueue(
        self,
        message: dramatiq.Message[Any],
        *,
        delay: int | None = None,
        conn: psycopg.Connection[Any] | None = None,
    ) -> dramatiq.Message[Any]:
        """Send ``message`` as an event; with ``conn``, once that transaction commits."""
        self.enqueue_many([message], delay=delay, conn=conn, deduplicate=False)
        return message

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
        if conn is not None and self.store is None:
            raise errors.NotSupportedError(
                "sending inside a transaction on inngest needs NEXT_PRIVATE_DATABASE_URL (the job outbox)"
            )
        run_at = datetime.now(UTC) + timedelta(milliseconds=delay) if delay else None
        prepared = []
        for message in messages:
            if run_at is not None:
                message = message.copy(options={RUN_AT_FIELD: run_at.isoformat()})
            self.emit_before("enqueue", message, delay)  # the checks first: the ids are looked up next
            prepared.append(message)
        if deduplicate and self.store is not None:
            known = {row["id"] for row in self.store.get_many([m.message_id for m in prepared])}
            prepared = [message for message in prepared if message.message_id not in known]
        if conn is None:
            self._send(prepared)
            return len(prepared)
        assert self.store is not None
        entries = [(m.message_id, m.queue_name, m.encode()) for m in prepared]
        self.store.outbox_add(conn, entries)
        ids = [m.message_id for m in prepared]
        # On a connection docjobs does not manage the commit is invisible: the relay sends them.
        on_commit(conn, lambda: self._relay_after_commit(ids))
        return len(prepared)

    def relay(self, ids: Sequence[str] | None = None) -> int:
        """Send outbox rows: ``ids``, or those their after-commit send missed.

        Returns:
            How many jobs were sent.
        """
        if self.store is None:
            return 0
        return self.store.outbox_take(self._send_rows, ids=ids, stale_seconds=OUTBOX_STALE_SECONDS)

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

    def _relay_after_commit(self, ids: list[str]) -> None:
        try:
            self.relay(ids)
        except Exception as exc:  # noqa: BLE001 - the commit stands; the rows wait for the relay
            logger.warning("%d job(s) wait in the outbox for the relay to send them: %s", len(ids), exc)

    def _event(self, message: dramatiq.Message[Any]) -> inngest.Event:
        data: dict[str, Any] = {**message.kwargs, MESSAGE_ID_FIELD: message.message_id}
        run_at = message.options.get(RUN_AT_FIELD)
        if run_at is not None:
            data[RUN_AT_FIELD] = run_at
        return inngest.Event(name=message.actor_name, data=data, id=message.message_id)

    def cancel_run(self, message_id: str) -> None:
        """Ask Inngest to cancel the run of this job (each function cancels on ``CANCEL_EVENT``)."""
        self._send_events([inngest.Event(name=CANCEL_EVENT, data={MESSAGE_ID_FIELD: message_id})])

    def promote_run(self, message_id: str) -> None:
        """End the delay of this job's run now (a delayed job waits for ``PROMOTE_EVENT``)."""
        self._send_events([inngest.Event(name=PROMOTE_EVENT, data={MESSAGE_ID_FIELD: message_id})])

    def set_paused(self, queue_name: str, paused: bool) -> None:
        """Let the runs held by a paused queue go on, once it is resumed in ``queue_state``.

        Functions read the paused queues from the table themselves; a run held by
        one waits for ``RESUME_EVENT`` (and looks again every minute in case it
        began waiting just after the event went out). Pausing sends nothing.
        """
        if not paused:
            self._send_events([inngest.Event(name=RESUME_EVENT, data={QUEUE_FIELD: queue_name})])

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
        deadline = time.monotonic() + (timeout / 1000 if timeout is not None else float("inf"))
        while True:
            self.history.flush()
            if self.store.count_unfinished(queue_name) == 0:
                return
            if time.monotonic() >= deadline:
                raise QueueJoinTimeout(queue_name)
            time.sleep(JOIN_POLL_SECONDS)


class OutboxRelay:
    """Sends the outbox rows no after-commit send took, every few seconds, from a daemon thread.

    Args:
        broker: The inngest broker.
        interval_seconds: Time between two rounds (default ``RELAY_INTERVAL_SECONDS``).
    """

    def __init__(self, broker: InngestBroker, interval_seconds: float | None = None) -> None:
        self.broker = broker
        self.interval = RELAY_INTERVAL_SECONDS if interval_seconds is None else interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="docjobs-inngest-relay", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.broker.relay()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive a bad round
                logger.warning("Sending the job outbox failed, retrying in %.1f s: %s", self.interval, exc)
