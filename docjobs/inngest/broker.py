"""The inngest provider's broker: a send is an Inngest event; Inngest runs the job.

``actor.send`` / ``jobs.trigger`` post the event ``<job id>`` with the payload plus
the message id as its data and the message id as the event id, so Inngest runs a
job once however often its send is repeated. There are no consumers: Inngest calls
the app's serve endpoint (``docjobs.inngest.serve``) to run each function.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import inngest
import psycopg

from docjobs import errors
from docjobs.brokers.base import FastHooks
from docjobs.db.pool import on_commit
from docjobs.inngest.functions import MESSAGE_ID_FIELD, RUN_AT_FIELD


class InngestBroker(FastHooks, dramatiq.Broker):
    """Sends events; runs nothing itself.

    Args:
        client: The app's Inngest client (event key, origins).
        middleware: The middleware stack (send-side hooks only run here).
    """

    #: Sends made with ``conn=`` go once the transaction commits.
    supports_transactions = True

    def __init__(self, client: inngest.Inngest, *, middleware: list[dramatiq.Middleware]) -> None:
        super().__init__(middleware=middleware)
        self.client = client
        self.queues: dict[str, None] = {}

    def enqueue(
        self,
        message: dramatiq.Message[Any],
        *,
        delay: int | None = None,
        conn: psycopg.Connection[Any] | None = None,
    ) -> dramatiq.Message[Any]:
        """Send ``message`` as an event; with ``conn``, once that transaction commits."""
        self.enqueue_many([message], delay=delay, conn=conn)
        return message

    def enqueue_many(
        self,
        messages: Sequence[dramatiq.Message[Any]],
        *,
        delay: int | None = None,
        conn: psycopg.Connection[Any] | None = None,
        deduplicate: bool = True,
    ) -> int:
        """Send ``messages`` as events in one request (Inngest deduplicates by message id)."""
        run_at = datetime.now(UTC) + timedelta(milliseconds=delay) if delay else None
        for message in messages:
            self.emit_before("enqueue", message, delay)
        events = [self._event(message, run_at) for message in messages]

        def send() -> None:
            self.client.send_sync(events)
            for message in messages:
                self.emit_after("enqueue", message, delay)

        # A connection docjobs does not manage has no visible commit: send at once.
        if conn is None or not on_commit(conn, send):
            send()
        return len(messages)

    def _event(self, message: dramatiq.Message[Any], run_at: datetime | None) -> inngest.Event:
        data: dict[str, Any] = {**message.kwargs, MESSAGE_ID_FIELD: message.message_id}
        if run_at is not None:
            data[RUN_AT_FIELD] = run_at.isoformat()
        return inngest.Event(name=message.actor_name, data=data, id=message.message_id)

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
        raise errors.NotSupportedError("jobs sent to Inngest are managed by Inngest")
