"""What the signing service's server code does around the jobs: send, open, sign, reject, cancel, delete.

Each flow runs in one transaction and enqueues its jobs and webhooks inside it,
so they exist exactly when the change they announce does (the reference enqueues
after or outside its transactions; its issue #1732 shows jobs running before the
write they depend on). The demo and the tests drive the service through these.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from docjobs import errors, jobs, runtime
from docjobs.db.domain import DomainStore
from docjobs.db.pool import Connection
from docjobs.webhooks.events import WebhookEvent
from docjobs.webhooks.payload import document_payload
from docjobs.webhooks.trigger import trigger_webhook

Row = dict[str, Any]


class FlowError(errors.DocjobsError, ValueError):
    """The action does not apply to the document or recipient in its current state."""


@dataclass(frozen=True)
class RecipientSpec:
    """A recipient to add to a new document."""

    email: str
    name: str = ""
    role: str = "SIGNER"
    signing_order: int | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class FieldSpec:
    """A field for a recipient (by index in the recipient list), at page percentages."""

    recipient: int
    type: str
    page: int = 1
    position_x: float = 10.0
    position_y: float = 10.0
    width: float = 20.0
    height: float = 5.0
    required: bool = True
    field_meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class Metadata:
    """Who acts: recorded in the audit log and passed to the jobs."""

    ip_address: str | None = None
    user_agent: str | None = None

    def payload(self) -> dict[str, str] | None:
        values = {"ipAddress": self.ip_address, "userAgent": self.user_agent}
        present = {key: value for key, value in values.items() if value is not None}
        return present or None

    def columns(self) -> dict[str, str | None]:
        return {"ip_address": self.ip_address, "user_agent": self.user_agent}


@dataclass
class Flows:
    """The flows, over the runtime's database."""

    store: DomainStore = field(default_factory=DomainStore)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with runtime.current().require_database().transaction() as conn:
            yield conn

    # Accounts.

    def create_user(
        self, email: str, name: str | None = None, *, roles: Sequence[str] = ("USER",), verified: bool = True
    ) -> Row:
        with self._transaction() as conn:
            return self.store.insert_user(conn, email=email, name=name, roles=roles, verified=verified)

    def sign_up(self, email: str, name: str | None = None) -> Row:
        """Create an unverified user and send the confirmation email."""
        with self._transaction() as conn:
            user = self.store.insert_user(conn, email=email, name=name, roles=("USER",), verified=False)
            jobs.trigger("send.signup.confirmation.email", {"email": email}, conn=conn)
        return user

    def admin_create_user(self, email: str, name: str | None = None) -> Row:
        """An admin creates a user: welcome email with a link to set a password."""
        with self._transaction() as conn:
            user = self.store.insert_user(conn, email=email, name=name, roles=("USER",), verified=True)
            jobs.trigger("send.admin.user.created.email", {"userId": user["id"]}, conn=conn)
        return user

    def reset_password(self, user_id: int) -> None:
        """Record a password change (the hashing is not docjobs' business) and confirm it by email."""
        with self._transaction() as conn:
            jobs.trigger("send.password.reset.success.email", {"userId": user_id}, conn=conn)

    def add_webhook(
        self, user_id: int, url: str, events: Sequence[WebhookEvent], *, secret: str | None = None
    ) -> Row:
        with self._transaction() as conn:
            return self.store.insert_webhook(
                conn,
                webhook_id=f"wh_{secrets.token_hex(8)}",
                user_id=user_id,
                url=url,
                events=[event.value for event in events],
                secret=secret,
            )

    # Documents.

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
    ) -> Row:
        """A DRAFT document with its recipients and fields; fires DOCUMENT_CREATED."""
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
            self._audit(conn, document["id"], "DOCUMENT_CREATED", {"title": title}, user_id=owner_id)
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

    # Helpers.

    def _document(self, conn: Connection, document_id: int) -> Row:
        document = self.store.document(conn, document_id)
        if document is None:
            raise FlowError(f"document {document_id} does not exist")
        return document

    def _locked(self, conn: Connection, document_id: int, *, expected: Sequence[str]) -> Row:
        locked = self.store.lock_document(conn, document_id)
        if locked is None:
            raise FlowError(f"document {document_id} does not exist")
        document = self._document(conn, document_id)
        if document["status"] not in expected or document["deleted_at"] is not None:
            raise FlowError(f"document {document_id} is {document['status']}, not {' or '.join(expected)}")
        return document

    def _recipient(self, conn: Connection, token: str) -> Row:
        recipient = self.store.recipient_by_token(conn, token)
        if recipient is None:
            raise FlowError("no recipient has this token")
        return recipient

    def _next_to_act(self, document: Row, recipients: list[Row]) -> list[Row]:
        actors = [r for r in recipients if r["role"] != "CC" and r["signing_status"] == "NOT_SIGNED"]
        if document["signing_order"] == "SEQUENTIAL":
            return actors[:1]
        return actors

    def _invite(self, conn: Connection, document: Row, recipient: Row, metadata: Metadata) -> None:
        jobs.trigger(
            "send.signing.requested.email",
            {
                "userId": document["owner_id"],
                "documentId": document["id"],
                "recipientId": recipient["id"],
                "requestMetadata": metadata.payload(),
            },
            conn=conn,
        )

    def _audit(
        self,
        conn: Connection,
        document_id: int,
        type: str,  # noqa: A002 - the column's name
        data: dict[str, Any],
        *,
        user_id: int | None = None,
        email: str | None = None,
        name: str | None = None,
        metadata: Metadata | None = None,
    ) -> None:
        self.store.add_audit_log(
            conn,
            document_id=document_id,
            type=type,
            data=data,
            user_id=user_id,
            email=email,
            name=name,
            **(metadata or Metadata()).columns(),
        )

    def _tell_cancelled(
        self, conn: Connection, document_id: int, reason: str | None, metadata: Metadata
    ) -> None:
        jobs.trigger(
            "send.document.cancelled.emails",
            {"documentId": document_id, "cancellationReason": reason, "requestMetadata": metadata.payload()},
            conn=conn,
        )

    def _webhook(self, conn: Connection, event: WebhookEvent, document_id: int) -> None:
        document = self._document(conn, document_id)
        data = document_payload(document, self.store.recipients(conn, document_id))
        trigger_webhook(conn, event=event, user_id=int(document["owner_id"]), data=data, store=self.store)
