"""A recipient's side of a document: open it, sign it, or reject it."""

from __future__ import annotations

from docjobs import jobs
from docjobs.domain._base import FlowBase
from docjobs.domain.specs import FlowError, Metadata, Row
from docjobs.webhooks.events import WebhookEvent


class SigningFlows(FlowBase):
    """What a recipient does with their link, each step in one transaction with the jobs it enqueues."""

    def open_document(self, token: str, metadata: Metadata | None = None) -> Row:
        """A recipient opens their link; the first time, audit it and fire DOCUMENT_OPENED."""
        metadata = metadata or Metadata()
        with self._transaction() as conn:
            recipient = self._recipient(conn, token)
            if recipient["read_status"] != "OPENED":
                self.store.mark_recipient_opened(conn, recipient["id"])
                self._audit(
                    conn,
                    recipient["document_id"],
                    "DOCUMENT_OPENED",
                    {"recipientId": recipient["id"]},
                    email=recipient["email"],
                    name=recipient["name"],
                    metadata=metadata,
                )
                self._webhook(conn, WebhookEvent.DOCUMENT_OPENED, recipient["document_id"])
            return self._recipient(conn, token)

    def sign(self, token: str, values: dict[int, str] | None = None, metadata: Metadata | None = None) -> Row:
        """A recipient fills their fields and signs (the reference's complete-document-with-token)."""
        metadata = metadata or Metadata()
        with self._transaction() as conn:
            recipient = self._recipient(conn, token)
            document = self._locked(conn, recipient["document_id"], expected=("PENDING",))
            for field_id, value in (values or {}).items():
                if (
                    self.store.fill_field(
                        conn,
                        field_id,
                        recipient_id=recipient["id"],
                        custom_text=value,
                        signature_image=None,
                        typed_signature=value,
                    )
                    is None
                ):
                    raise FlowError(f"field {field_id} is not one of this recipient's")
            if self.store.sign_recipient(conn, recipient["id"]) is None:
                raise FlowError("this recipient has already signed or rejected")
            document_id = document["id"]
            self._audit(
                conn,
                document_id,
                "DOCUMENT_RECIPIENT_COMPLETED",
                {"recipientId": recipient["id"]},
                email=recipient["email"],
                name=recipient["name"],
                metadata=metadata,
            )
            self._webhook(conn, WebhookEvent.DOCUMENT_RECIPIENT_COMPLETED, document_id)
            self._webhook(conn, WebhookEvent.DOCUMENT_SIGNED, document_id)
            jobs.trigger(
                "send.recipient.signed.email",
                {"documentId": document_id, "recipientId": recipient["id"]},
                conn=conn,
            )
            recipients = self.store.recipients(conn, document_id)
            waiting = [r for r in recipients if r["role"] != "CC" and r["signing_status"] == "NOT_SIGNED"]
            if waiting:
                jobs.trigger(
                    "send.document.pending.email",
                    {"envelopeId": document["envelope_id"], "recipientId": recipient["id"]},
                    conn=conn,
                )
                for next_recipient in self._next_to_act(document, recipients):
                    if next_recipient["send_status"] == "NOT_SENT":
                        self._invite(conn, document, next_recipient, metadata)
            else:
                jobs.trigger(
                    "internal.seal-document",
                    {"documentId": document_id, "requestMetadata": metadata.payload()},
                    conn=conn,
                )
            return self._recipient(conn, token)

    def reject(self, token: str, reason: str, metadata: Metadata | None = None) -> Row:
        """A recipient rejects: emails to them and the owner, cancellations to the others, then the seal."""
        metadata = metadata or Metadata()
        with self._transaction() as conn:
            recipient = self._recipient(conn, token)
            document = self._locked(conn, recipient["document_id"], expected=("PENDING",))
            if self.store.reject_recipient(conn, recipient["id"], reason) is None:
                raise FlowError("this recipient has already signed or rejected")
            document_id = document["id"]
            self._audit(
                conn,
                document_id,
                "DOCUMENT_RECIPIENT_REJECTED",
                {"recipientId": recipient["id"], "reason": reason},
                email=recipient["email"],
                name=recipient["name"],
                metadata=metadata,
            )
            jobs.trigger(
                "send.signing.rejected.emails",
                {"documentId": document_id, "recipientId": recipient["id"]},
                conn=conn,
            )
            self._tell_cancelled(conn, document_id, reason, metadata)
            jobs.trigger(
                "internal.seal-document",
                {"documentId": document_id, "requestMetadata": metadata.payload()},
                conn=conn,
            )
            return self._recipient(conn, token)
