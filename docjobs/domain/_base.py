"""What every flow stands on: the domain store, one transaction, and the steps several flows share."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from docjobs import jobs, runtime
from docjobs.db.domain import DomainStore
from docjobs.db.pool import Connection
from docjobs.domain.specs import FlowError, Metadata, Row
from docjobs.webhooks.events import WebhookEvent
from docjobs.webhooks.payload import document_payload
from docjobs.webhooks.trigger import trigger_webhook


@dataclass
class FlowBase:
    """The flows' common ground, over the runtime's database."""

    store: DomainStore = field(default_factory=DomainStore)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with runtime.current().require_database().transaction() as conn:
            yield conn

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
        if user_id is not None and email is None and name is None:
            # The entry keeps the name and email the account had when it acted: a reader
            # of the audit log (a signer, a court) needs who acted, not an id.
            user = self.store.user(conn, user_id)
            if user is not None:
                email, name = user["email"], user["name"]
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
