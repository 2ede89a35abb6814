"""Fan-out: one ``internal.execute-webhook`` job per enabled webhook subscribed to an event."""

from __future__ import annotations

from typing import Any

import psycopg

from docjobs import jobs
from docjobs.db.domain import DomainStore
from docjobs.webhooks.events import WebhookEvent

EXECUTE_WEBHOOK = "internal.execute-webhook"


def trigger_webhook(
    conn: psycopg.Connection[Any],
    *,
    event: WebhookEvent,
    user_id: int,
    data: Any,
    store: DomainStore,
    in_transaction: bool = True,
) -> int:
    """Enqueue a delivery per subscribed webhook of ``user_id``.

    Args:
        conn: Where to look the webhooks up; with ``in_transaction``, the jobs are
            enqueued in its transaction too, so they exist only if it commits.
        data: The event's payload (the document object, for document events).

    Returns:
        How many deliveries were enqueued.
    """
    webhooks = store.webhooks_for_event(conn, user_id=user_id, event=event.value)
    if not webhooks:
        return 0
    payloads = [{"event": event.value, "webhookId": webhook["id"], "data": data} for webhook in webhooks]
    jobs.trigger_many(EXECUTE_WEBHOOK, payloads, conn=conn if in_transaction else None)
    return len(payloads)
