"""A document's life on its owner's side: created, sent, cancelled, deleted, read."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from docjobs import jobs, runtime
from docjobs.domain._base import FlowBase
from docjobs.domain.specs import FieldSpec, Metadata, RecipientSpec, Row
from docjobs.webhooks.events import WebhookEvent


class DocumentFlows(FlowBase):
    """What a document's owner does, each step in one transaction with the jobs it enqueues."""

    def create_document(
        self,
        owner_id: int,
        title: str,
        pdf: bytes,
        recipients: Sequence[RecipientSpec],
        fields: Sequence[FieldSpec] = (),
        *,
        signing_order: str = "PARALLEL",
        subject: str | None = None,
        message: str | None = None,
        reminder_settings: dict[str, Any] | None = None,
        metadata: Metadata | None = None,
    ) -> Row:
        """A DRAFT document with its recipients and fields; fires DOCUMENT_CREATED.

        ``metadata`` (the owner's request: IP address, browser) goes into the creation's
        audit entry, as for the owner's other acts.
        """
        with self._transaction() as conn:
            data_id = self.store.insert_document_data(conn, name=f"{title}.pdf", data=pdf)
            document = self.store.insert_document(
                conn,
                envelope_id=f"envelope_{secrets.token_hex(8)}",
                owner_id=owner_id,
                title=title,
                data_id=data_id,
                signing_order=signing_order,
                subject=subject,
                message=message,
                reminder_settings=reminder_settings,
            )
            added = [
                self.store.insert_recipient(
                    conn,
                    document_id=document["id"],
                    email=spec.email,
                    name=spec.name,
                    role=spec.role,
                    token=secrets.token_urlsafe(16),
                    signing_order=spec.signing_order,
                    expires_at=spec.expires_at,
                )
                for spec in recipients
            ]
            for spec in fields:
                self.store.insert_field(
                    conn,
                    document_id=document["id"],
                    recipient_id=added[spec.recipient]["id"],
                    type=spec.type,
                    page=spec.page,
                    position_x=spec.position_x,
                    position_y=spec.position_y,
                    width=spec.width,
                    height=spec.height,
                    required=spec.required,
                    field_meta=spec.field_meta,
                )
            self._audit(
                conn,
                document["id"],
                "DOCUMENT_CREATED",
                {"title": title},
                user_id=owner_id,
                metadata=metadata,
            )
            self._webhook(conn, WebhookEvent.DOCUMENT_CREATED, document["id"])
            return self._document(conn, document["id"])

    def send_document(self, document_id: int, metadata: Metadata | None = None) -> Row:
        """DRAFT to PENDING; invite the recipients who act now; fires DOCUMENT_SENT."""
        metadata = metadata or Metadata()
        with self._transaction() as conn:
            document = self._locked(conn, document_id, expected=("DRAFT",))
            self.store.set_document_status(conn, document_id, "PENDING")
            recipients = self.store.recipients(conn, document_id)
            for recipient in self._next_to_act(document, recipients):
                self._invite(conn, document, recipient, metadata)
            self._audit(
                conn, document_id, "DOCUMENT_SENT", {}, user_id=document["owner_id"], metadata=metadata
            )
            self._webhook(conn, WebhookEvent.DOCUMENT_SENT, document_id)
            if not any(r["role"] != "CC" for r in recipients):
                # Nobody has to sign: close it at once, as the reference does.
                jobs.trigger("internal.seal-document", {"documentId": document_id}, conn=conn)
            return self._document(conn, document_id)

    def cancel(self, document_id: int, reason: str | None = None, metadata: Metadata | None = None) -> Row:
        """The owner cancels a pending document: fires DOCUMENT_CANCELLED and tells the recipients."""
        metadata = metadata or Metadata()
        with self._transaction() as conn:
            document = self._locked(conn, document_id, expected=("PENDING",))
            self.store.set_document_status(conn, document_id, "CANCELLED")
            self._audit(
                conn,
                document_id,
                "DOCUMENT_CANCELLED",
                {"reason": reason},
                user_id=document["owner_id"],
                metadata=metadata,
            )
            self._webhook(conn, WebhookEvent.DOCUMENT_CANCELLED, document_id)
            self._tell_cancelled(conn, document_id, reason, metadata)
            return self._document(conn, document_id)

    def delete(self, document_id: int) -> None:
        """The owner deletes a document; recipients who were invited to a pending one are told."""
        with self._transaction() as conn:
            document = self._locked(
                conn, document_id, expected=("DRAFT", "PENDING", "COMPLETED", "REJECTED", "CANCELLED")
            )
            recipients = self.store.recipients(conn, document_id)
            informed = [
                r for r in recipients if r["send_status"] == "SENT" and r["signing_status"] == "NOT_SIGNED"
            ]
            self.store.mark_document_deleted(conn, document_id)
            self._webhook(conn, WebhookEvent.DOCUMENT_CANCELLED, document_id)
            if document["status"] == "PENDING" and informed:
                jobs.trigger(
                    "send.document.deleted.emails",
                    {
                        "teamId": 0,
                        "documentName": document["title"],
                        "inviterName": document["owner_name"],
                        "inviterEmail": document["owner_email"],
                        "meta": None,
                        "recipients": [{"email": r["email"], "name": r["name"]} for r in informed],
                    },
                    conn=conn,
                )

    def remove_recipient_notice(self, document_id: int, email: str, name: str) -> None:
        """Tell someone they were removed from a document."""
        with self._transaction() as conn:
            document = self._document(conn, document_id)
            jobs.trigger(
                "send.recipient.removed.email",
                {
                    "envelopeId": document["envelope_id"],
                    "recipientEmail": email,
                    "recipientName": name,
                    "inviterName": document["owner_name"],
                },
                conn=conn,
            )

    # Reads.

    def document(self, document_id: int) -> Row:
        """A document with its owner's name and email."""
        with runtime.current().require_database().connection() as conn:
            return self._document(conn, document_id)

    def recipients(self, document_id: int) -> list[Row]:
        """A document's recipients in signing order."""
        with runtime.current().require_database().connection() as conn:
            return self.store.recipients(conn, document_id)
