"""Sweeps, the per-recipient jobs they enqueue, and cleanups (reference §7.3, plus retention).

The sweeps select with the reference's rules and limits and enqueue one job per
row. The process-* jobs start by claiming their recipient with a conditional
UPDATE: a second delivery of the same job, or a job that lost a race with another,
finds nothing to claim and ends as a no-op. Cleanups delete in bounded batches.
Their cron schedules belong to the scheduler; here they run when triggered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import docjobs
from docjobs import jobs, runtime
from docjobs.actors import _support as support
from docjobs.db.flow import EXPIRE_BATCH
from docjobs.domain.reminders import next_reminder_at
from docjobs.mail import emails
from docjobs.tasks import run_task
from docjobs.webhooks.events import WebhookEvent

logger = logging.getLogger("docjobs.jobs")

SEAL_SWEEP_LIMIT = 100
EXPIRE_SWEEP_LIMIT = 1000
REMINDER_SWEEP_LIMIT = 1000


@docjobs.actor("internal.seal-document-sweep", display_name="Seal Document Sweep")
def seal_document_sweep() -> None:
    """Reseal documents everyone finished that are still PENDING (15 min to 6 h after the last signature)."""
    _sweep(
        lambda store, conn: store.unsealed_documents(conn, limit=SEAL_SWEEP_LIMIT),
        "internal.seal-document",
        lambda document_id: {"documentId": document_id, "isResealing": True},
    )


@docjobs.actor("internal.expire-recipients-sweep", display_name="Expire Recipients Sweep")
def expire_recipients_sweep() -> None:
    """Enqueue a notification for each recipient whose signing window closed."""
    _sweep(
        lambda store, conn: store.expired_recipients(conn, limit=EXPIRE_SWEEP_LIMIT),
        "internal.process-recipient-expired",
        lambda recipient_id: {"recipientId": recipient_id},
    )


@docjobs.actor("internal.process-recipient-expired", display_name="Process Recipient Expired")
def process_recipient_expired(*, recipient_id: int) -> None:
    """Claim the recipient, audit the expiry, fire RECIPIENT_EXPIRED and email the owner."""
    claim = run_task(
        "claim-recipient",
        lambda: _claim(lambda store, conn: store.claim_expired_recipient(conn, recipient_id)),
    )
    if claim is None:
        logger.info(
            "Recipient %s is not (or no longer) expiring.", recipient_id, extra={"action": "claim_missed"}
        )
        return
    document_id = int(claim["documentId"])

    def audit() -> None:
        with support.connection() as conn:
            support.domain().add_audit_log(
                conn,
                document_id=document_id,
                type="DOCUMENT_RECIPIENT_EXPIRED",
                data={
                    "recipientId": recipient_id,
                    "recipientEmail": claim["email"],
                    "recipientName": claim["name"],
                },
            )

    run_task("create-audit-log", audit)
    run_task("trigger-webhook", lambda: _fire(WebhookEvent.RECIPIENT_EXPIRED, document_id))
    run_task(
        "send-owner-email",
        lambda: _enqueue(
            "send.owner.recipient.expired.email",
            {"recipientId": recipient_id, "envelopeId": claim["envelopeId"]},
        ),
    )


@docjobs.actor("internal.send-signing-reminders-sweep", display_name="Send Signing Reminders Sweep")
def send_signing_reminders_sweep() -> None:
    """Enqueue a reminder for each recipient due one."""
    _sweep(
        lambda store, conn: store.reminder_due_recipients(conn, limit=REMINDER_SWEEP_LIMIT),
        "internal.process-signing-reminder",
        lambda recipient_id: {"recipientId": recipient_id},
    )


@docjobs.actor("internal.process-signing-reminder", display_name="Process Signing Reminder")
def process_signing_reminder(*, recipient_id: int) -> None:
    """Claim the reminder, send it, audit it, fire DOCUMENT_REMINDER_SENT, schedule the next one."""
    claim = run_task(
        "claim-recipient", lambda: _claim(lambda store, conn: store.claim_reminder(conn, recipient_id))
    )
    if claim is None:
        logger.info(
            "Recipient %s is not (or no longer) due a reminder.",
            recipient_id,
            extra={"action": "claim_missed"},
        )
        return
    document = support.load_document(int(claim["documentId"]))
    recipient = support.read(lambda store, conn: store.recipient(conn, recipient_id))
    if recipient is None or document["owner_disabled"]:
        return
    email = emails.signing_request(document, recipient, support.base_url(), reminder=True)
    if not support.send_email(
        "send-reminder-email", email, recipient_id=recipient_id, document_id=document["id"]
    ):
        return

    def record() -> None:
        now = datetime.now(UTC)
        with support.transaction() as conn:
            store = support.domain()
            support.audit_email_sent(
                conn,
                document_id=document["id"],
                email_type="REMINDER",
                recipient=recipient,
                address=recipient["email"],
            )
            upcoming = next_reminder_at(
                document["reminder_settings"],
                sent_at=recipient["sent_at"] or now,
                reminders_sent=int(recipient["reminder_count"]),
                now=now,
            )
            store.set_next_reminder(conn, recipient_id, upcoming)

    run_task("record-reminder", record)
    run_task("trigger-webhook", lambda: _fire(WebhookEvent.DOCUMENT_REMINDER_SENT, int(document["id"])))


@docjobs.actor("internal.cleanup-rate-limits", display_name="Cleanup Rate Limits")
def cleanup_rate_limits() -> None:
    """Delete rate-limit buckets older than a day, 10,000 at a time."""
    deleted = _until_short_batch(lambda store, conn: store.delete_old_rate_limits(conn))
    logger.info("Deleted %d rate-limit bucket(s).", deleted, extra={"action": "cleanup_done"})


@docjobs.actor("internal.cleanup-background-jobs", display_name="Cleanup Background Jobs")
def cleanup_background_jobs() -> None:
    """Delete finished jobs and cron firings older than ``NEXT_PRIVATE_JOBS_RETENTION_DAYS``, in batches,
    and flow-control entries that expired."""
    current = runtime.current()
    days = current.settings.retention_days
    if current.ledger is not None:
        firings = current.ledger.delete_old(days)
        logger.info("Deleted %d cron firing(s).", firings, extra={"action": "cleanup_done"})
    if current.store is None:
        return  # other providers keep their own history
    deleted = current.store.jobs.delete_finished(days)
    logger.info("Deleted %d finished job(s).", deleted, extra={"action": "cleanup_done"})
    expired = 0
    while (batch := current.store.flow.expire()) >= EXPIRE_BATCH:
        expired += batch
    expired += batch
    logger.info("Deleted %d expired flow-control entries.", expired, extra={"action": "cleanup_done"})


@docjobs.actor("internal.cleanup-webhook-calls", display_name="Cleanup Webhook Calls")
def cleanup_webhook_calls() -> None:
    """Delete webhook calls older than ``NEXT_PRIVATE_JOBS_RETENTION_DAYS``, 10,000 at a time."""
    days = runtime.current().settings.retention_days
    deleted = _until_short_batch(lambda store, conn: store.delete_old_webhook_calls(conn, days=days))
    logger.info("Deleted %d webhook call(s).", deleted, extra={"action": "cleanup_done"})


def _sweep(select: support.Reader, job_id: str, payload: Callable[[int], dict[str, object]]) -> None:
    """Enqueue ``job_id`` for every row ``select`` finds, in one round trip."""
    ids: list[int] = support.read(select)
    if ids:
        jobs.trigger_many(job_id, [payload(row_id) for row_id in ids])
    logger.info("Sweep for %s found %d row(s).", job_id, len(ids), extra={"action": "sweep_done"})


def _claim(claim: support.Reader) -> dict[str, Any] | None:
    """Run a claiming UPDATE; the claimed recipient as JSON (task results are JSON), or None."""
    row = support.read(claim)
    if row is None:
        return None
    document = support.read(lambda store, conn: store.document(conn, int(row["document_id"])))
    return {
        "documentId": row["document_id"],
        "envelopeId": document["envelope_id"] if document else None,
        "email": row["email"],
        "name": row["name"],
    }


def _fire(event: WebhookEvent, document_id: int) -> int:
    with support.connection() as conn:
        return support.fire_webhook(conn, event, document_id, in_transaction=False)


def _enqueue(job_id: str, payload: dict[str, object]) -> str:
    return str(jobs.trigger(job_id, payload).message_id)


def _until_short_batch(delete_batch: support.Reader) -> int:
    from docjobs.db.domain import CLEANUP_BATCH

    total = 0
    while True:
        deleted = int(support.read(delete_batch))
        total += deleted
        if deleted < CLEANUP_BATCH:
            return total
