"""``internal.seal-document``: seal a finished document (reference §7.2).

In three steps, all inside one memoised task so a retry repeats none of it once it
succeeded: read and check the document in a short transaction (every recipient
finished or one rejected; required fields filled; CC recipients counted as
signed); build the sealed PDF outside any transaction, from the original (so a
reseal gives the same content); then, in one transaction, store it, mark the CC
recipients signed, set the document COMPLETED or REJECTED and write the audit
entry, unless the document changed meanwhile. The webhook and the completion
emails follow as memoised steps of their own.

A document the sealing refuses (``docjobs.pdf.refusal.DocumentRefused``: a PDF
behind a password, damaged or a decompression bomb, a field off its pages, a
signature image that does not decode) fails the job at once with the reason,
having written nothing; database failures and the timestamp authority's are
retried.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any

import docjobs
from docjobs import errors, jobs, queues, runtime
from docjobs.actors import _support as support
from docjobs.actors.payloads import RequestMetadata
from docjobs.domain.completion import completion_emails
from docjobs.flow import Concurrency
from docjobs.tasks import run_task
from docjobs.webhooks.events import WebhookEvent

logger = logging.getLogger("docjobs.jobs")


class DocumentNotComplete(errors.NotRetryable):
    """The document still waits for signatures (or required fields) and cannot be sealed."""


# One seal of a document at a time: a sweep's reseal and the last signer's seal of the same
# document would otherwise write its sealed PDF twice at once.
@docjobs.actor(
    "internal.seal-document",
    display_name="Seal Document",
    queue_name=queues.SEALING_QUEUE,
    concurrency=Concurrency(1, key="documentId"),
)
def seal_document(
    *,
    document_id: int,
    send_email: bool = True,
    is_resealing: bool = False,
    request_metadata: RequestMetadata | None = None,
) -> None:
    """Seal a document whose recipients all finished (or one rejected)."""
    result = run_task("seal-document", lambda: _seal(document_id, send_email, is_resealing, request_metadata))
    if result.get("skipped"):
        logger.info("Document %s is %s; nothing to seal.", document_id, result["skipped"])
        return
    rejected = bool(result["isRejected"])
    event = WebhookEvent.DOCUMENT_REJECTED if rejected else WebhookEvent.DOCUMENT_COMPLETED
    run_task("trigger-webhook", lambda: _fire(event, document_id))
    if _sends_completion_emails(send_email, is_resealing, result["statusBefore"], rejected):
        run_task(
            "send-completed-emails",
            lambda: str(
                jobs.trigger(
                    "send.document.completed.emails",
                    {"envelopeId": result["envelopeId"], "requestMetadata": _json(request_metadata)},
                ).message_id
            ),
        )


def _sends_completion_emails(
    send_email: bool, is_resealing: bool, status_before: str, rejected: bool
) -> bool:
    # As in the reference: a reseal of a document that was still pending (the sweep's
    # case) sends the completion emails its first seal never sent.
    first_completion = not is_resealing or status_before == "PENDING"
    return send_email and first_completion and not rejected


def _seal(
    document_id: int, send_email: bool, is_resealing: bool, metadata: RequestMetadata | None
) -> dict[str, Any]:
    store = support.domain()
    with support.transaction() as conn:
        if store.lock_document(conn, document_id) is None:
            raise support.JobAbandoned(f"document {document_id} does not exist")
        document = store.document(conn, document_id)
        assert document is not None
        status_before = document["status"]
        if status_before not in ("PENDING", "COMPLETED", "REJECTED") or (
            status_before != "PENDING" and not is_resealing
        ):
            return {"skipped": f"{status_before.lower()}"}
        recipients = store.recipients(conn, document_id)
        rejecter = next(
            (r for r in recipients if r["signing_status"] == "REJECTED" and r["role"] != "CC"), None
        )
        # CC recipients count as signed; they are marked so when the sealed PDF is stored.
        if rejecter is None and any(
            r["role"] != "CC" and r["signing_status"] != "SIGNED" for r in recipients
        ):
            raise DocumentNotComplete(f"document {document_id} is not complete")
        if rejecter is None and store.unfilled_required_fields(conn, document_id):
            raise DocumentNotComplete(f"document {document_id} has required fields nobody filled")
        original = store.document_data(conn, document["original_data_id"])
        assert original is not None  # a foreign key
        fields = store.fields(conn, document_id)
        audit_logs = store.audit_logs(conn, document_id)
    completion: dict[str, Any] = {"transactionId": secrets.token_urlsafe(16)}
    if rejecter is not None:
        completion.update(isRejected=True, rejectionReason=rejecter["rejection_reason"])
    if status_before != "PENDING":
        completion["isResealed"] = True  # the audit page says so, rather than "complete" twice
    if _sends_completion_emails(send_email, is_resealing, status_before, rejecter is not None):
        # The emails carry the sealed PDF, so they go out after it is signed: the entry
        # (in the PDF and in the database) records whom they are for; each email sent
        # gets an EMAIL_SENT entry of its own.
        completion["completionEmails"] = completion_emails(document, recipients)
    # The audit page shows the completion entry written below.
    entry = {
        "type": "DOCUMENT_COMPLETED",
        "data": completion,
        "created_at": datetime.now(UTC),
        "user_id": None,
        "email": None,
        "name": None,
        "ip_address": None,
        "user_agent": None,
        **support.audit_fields(metadata),
    }
    sealed = _sealed_pdf(
        document, bytes(original["data"]), recipients, fields, [*audit_logs, entry], rejecter is not None
    )
    with support.transaction() as conn:
        current = store.lock_document(conn, document_id)
        if current is None or current["status"] != status_before:
            return {"skipped": "changed while it was being sealed"}
        store.sign_cc_recipients(conn, document_id)
        suffix = "rejected" if rejecter else "signed"
        sealed_id = store.insert_document_data(conn, name=f"{document['title']}_{suffix}.pdf", data=sealed)
        store.seal_document(
            conn,
            document_id,
            status="REJECTED" if rejecter else "COMPLETED",
            data_id=sealed_id,
            qr_token=f"qr_{secrets.token_hex(8)}",
        )
        store.add_audit_log(
            conn,
            document_id=document_id,
            type="DOCUMENT_COMPLETED",
            data=completion,
            **support.audit_fields(metadata),
        )
    return {
        "envelopeId": document["envelope_id"],
        "statusBefore": status_before,
        "isRejected": rejecter is not None,
    }


def _sealed_pdf(
    document: dict[str, Any],
    original: bytes,
    recipients: list[dict[str, Any]],
    fields: list[dict[str, Any]],
    audit_logs: list[dict[str, Any]],
    rejected: bool,
) -> bytes:
    # Imported by the first seal: pikepdf, reportlab, fontTools and pyHanko are most of a
    # worker's memory, and a worker that never seals should not carry them (issue 21).
    from docjobs.pdf.seal import SealInput, SignatureSettings, seal_pdf

    current = runtime.current()
    settings = current.settings
    return seal_pdf(
        SealInput(original, document, recipients, fields, audit_logs, rejected),
        current.signing_identity(),
        SignatureSettings(
            location=settings.webapp_url,
            contact_info=settings.signing_contact_info,
            timestamp_authorities=settings.timestamp_authorities,
            legacy_subfilter=settings.legacy_signing_subfilter,
        ),
    )


def _fire(event: WebhookEvent, document_id: int) -> int:
    with support.connection() as conn:
        return support.fire_webhook(conn, event, document_id, in_transaction=False)


def _json(metadata: RequestMetadata | None) -> dict[str, Any] | None:
    return None if metadata is None else metadata.model_dump(mode="json", by_alias=True)
