"""``internal.execute-webhook``: one delivery, retried with backoff, recorded per attempt.

Unlike the reference, the webhook is looked up again before every attempt: once it
is disabled or deleted, the job ends without retrying (the reference kept retrying
disabled webhooks, issue #2313). A URL the SSRF guard refuses fails the job at once.
"""

from __future__ import annotations

import logging
from typing import Any

from dramatiq.middleware import CurrentMessage

import docjobs
from docjobs import errors, queues, runtime
from docjobs.actors import _support as support
from docjobs.actors.payloads import RequestMetadata
from docjobs.webhooks.events import WebhookEvent

logger = logging.getLogger("docjobs.jobs")


class WebhookDeliveryFailed(errors.DocjobsError):
    """The webhook endpoint did not answer with a 2xx status."""


class WebhookUrlForbidden(errors.NotRetryable):
    """The webhook URL points at a private address."""


@docjobs.actor("internal.execute-webhook", display_name="Execute Webhook", queue_name=queues.WEBHOOK_QUEUE)
def execute_webhook(
    *, event: WebhookEvent, webhook_id: str, data: Any, request_metadata: RequestMetadata | None = None
) -> None:
    """Deliver ``data`` for ``event`` to one webhook.

    Raises:
        WebhookDeliveryFailed: The endpoint failed; the job is retried.
        WebhookUrlForbidden: The SSRF guard refused the URL; no retry.
    """
    webhook = support.read(lambda store, conn: store.webhook(conn, webhook_id))
    if webhook is None or not webhook["enabled"]:
        logger.info(
            "Webhook %s is %s; not delivering.",
            webhook_id,
            "deleted" if webhook is None else "disabled",
            extra={"action": "webhook_skipped"},
        )
        return
    # Imported by the first delivery: httpx is ~10 MiB a worker without webhooks need not carry.
    from docjobs.webhooks import delivery

    outcome = delivery.attempt(
        url=webhook["webhook_url"],
        secret=webhook["secret"],
        event=event.value,
        payload=data,
        bypass_hosts=runtime.current().settings.webhook_ssrf_bypass,
    )
    if outcome.cut_short is not None:
        logger.info(
            "Webhook %s answered more than docjobs reads: %s.",
            webhook_id,
            outcome.cut_short,
            extra={"action": "webhook_response_cut", "webhook_id": webhook_id},
        )
    message = CurrentMessage.get_current_message()
    with support.connection() as conn:
        support.domain().add_webhook_call(
            conn,
            webhook_id=webhook_id,
            job_id=message.message_id if message else None,
            status=outcome.status,
            url=webhook["webhook_url"],
            event=event.value,
            request_body=outcome.request_body,
            response_code=outcome.response_code,
            response_headers=outcome.response_headers,
            response_body=outcome.response_body,
        )
    if not outcome.retryable:
        raise WebhookUrlForbidden(str(outcome.response_body))
    if not outcome.succeeded:
        raise WebhookDeliveryFailed(f"Webhook execution failed with status {outcome.response_code}")
