"""``internal.seal-document``: close a finished document (reference §7.2).

Everything around the PDF is here: the completeness checks, CC recipients counted
as signed, the sealed copy stored and the document COMPLETED or REJECTED with its
audit entry in one transaction, then the webhook and the completion emails, each
memoised so a retry repeats none of them. Resealing starts from the original PDF.

The PDF pipeline itself (fields drawn, certificate and audit pages, PAdES
signature) is the sealing issue's; until it lands the sealed copy is the original
PDF, stored under the sealed name.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import docjobs
from docjobs import errors, jobs
from docjobs.actors import _support as support
from docjobs.actors.payloads import RequestMetadata
from docjobs.tasks import run_task
from docjobs.webhooks.events import WebhookEvent

logger = logging.getLogger("docjobs.jobs")


class DocumentNotComplete(errors.NotRetryable):
    """The document still waits for signatures (or required fields) and cannot be sealed."""


@docjobs.actor("internal.seal-document", display_name="Seal Document")
def seal_document(
    *,
    document_id: int,
    send_email: bool = True,
    is_resealing: bool = False,
    request_metadata: RequestMetadata | None = None,
) -> None:
    """Seal a document whose recipients all finished (or one rejected)."""
    result = run_task("seal-document", lambda: _seal(document_id, is_resealing, request_metadata))
    if result.get("skipped"):
        logger.info("Document %s is %s; nothing to seal.", document_id, result["skipped"])
        return
    rejected = bool(result["isRejected"])
    event = WebhookEvent.DOCUMENT_REJECTED if rejected else WebhookEvent.DOCUMENT_COMPLETED
    run_task("trigger-webhook", lambda: _fire(event, document_id))
    # As in the reference: a reseal of a document that was still pending (the sweep's
    # case) sends the completion emails its first seal never sent.
    first_completion = not is_resealing or result["statusBefore"] == "PENDING"
    if send_email and first_completion and not rejected:
        run_task(
            "send-completed-emails",
            lambda: str(
                jobs.trigger(
                    "send.document.completed.emails",
                    {"envelopeId": result["envelopeId"], "requestMetadata": _json(request_metadata)},
                ).message_id
            ),
        )


def _seal(document_id: int, is_resealing: bool, metadata: RequestMetadata | None) -> dict[str, Any]:
    store = support.domain()
    with support.transaction() as conn:
        locked = store.lock_document(conn, document_id)
        if locked is None:
            raise support.JobAbandoned(f"document {document_id} does not exist")
        document = store.document(conn, document_id)
        assert document is not None
        status_before = document["status"]
        if status_before not in ("PENDING", "COMPLETED", "REJECTED") or (
            status_before != "PENDING" and not is_resealing
        ):
            return {"skipped": f"{status_before.lower()}"}
        store.sign_cc_recipients(conn, document_id)
        recipients = store.recipients(conn, document_id)
        rejecter = next(
            (r for r in recipients if r["signing_status"] == "REJECTED" and r["role"] != "CC"), None
        )
        if rejecter is None and any(r["signing_status"] != "SIGNED" for r in recipients):
            raise DocumentNotComplete(f"document {document_id} is not complete")
        if rejecter is None and store.unfilled_required_fields(conn, document_id):
            raise DocumentNotComplete(f"document {document_id} has required fields nobody filled")
        original = store.document_data(conn, document["original_data_id"])
        assert original is not None  # a foreign key
        suffix = "rejected" if rejecter else "signed"
        sealed_id = store.insert_document_data(
            conn, name=f"{document['title']}_{suffix}.pdf", data=bytes(original["data"])
        )
        status = "REJECTED" if rejecter else "COMPLETED"
        store.seal_document(
            conn, document_id, status=status, data_id=sealed_id, qr_token=f"qr_{secrets.token_hex(8)}"
        )
        data: dict[str, Any] = {"transactionId": secrets.token_urlsafe(16)}
        if rejecter is not None:
            data.update(isRejected=True, rejectionReason=rejecter["rejection_reason"])
        store.add_audit_log(
            conn,
            document_id=document_id,
            type="DOCUMENT_COMPLETED",
            data=data,
            **support.audit_fields(metadata),
        )
    return {
        "envelopeId": document["envelope_id"],
        "statusBefore": status_before,
        "isRejected": rejecter is not None,
    }


def _fire(event: WebhookEvent, document_id: int) -> int:
    with support.connection() as conn:
        return support.fire_webhook(conn, event, document_id, in_transaction=False)


def _json(metadata: RequestMetadata | None) -> dict[str, Any] | None:
    return None if metadata is None else metadata.model_dump(mode="json", by_alias=True)
