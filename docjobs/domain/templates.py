"""Templates: made once, turned into documents by a bulk send or by a signer's direct link (issue 22).

A document made from a template shares the template's stored PDF (sealing writes a
new one, so the template's stays as it was) and copies its title, subject, message,
signing order and recipients, each recipient's email and name replaceable by number.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

from docjobs import jobs
from docjobs.db.pool import Connection
from docjobs.domain.bulk_send import RecipientValues
from docjobs.domain.documents import DocumentFlows
from docjobs.domain.specs import FlowError, Metadata, RecipientSpec, Row
from docjobs.webhooks.events import WebhookEvent

#: The ``document.source`` of a document made by a bulk send, and by a direct link.
SOURCE_TEMPLATE = "TEMPLATE"
SOURCE_DIRECT_LINK = "TEMPLATE_DIRECT_LINK"
#: The template recipient a direct link's signer becomes.
DIRECT_LINK_RECIPIENT = 1


class TemplateFlows(DocumentFlows):
    """What a template's owner, a bulk send and a direct link's signer do, one transaction each."""

    def create_template(
        self,
        owner_id: int,
        team_id: int,
        title: str,
        pdf: bytes,
        recipients: Sequence[RecipientSpec],
        *,
        signing_order: str = "PARALLEL",
        subject: str | None = None,
        message: str | None = None,
        direct_link: bool = False,
    ) -> Row:
        """A template whose recipients are numbered 1, 2, ... in the order given.

        Args:
            direct_link: Give it an enabled direct link (``direct_link_token``); its
                signer becomes recipient 1.
        """
        with self._transaction() as conn:
            data_id = self.store.insert_document_data(conn, name=f"{title}.pdf", data=pdf)
            template = self.store.insert_template(
                conn,
                team_id=team_id,
                owner_id=owner_id,
                title=title,
                data_id=data_id,
                signing_order=signing_order,
                subject=subject,
                message=message,
                direct_link_token=secrets.token_urlsafe(16) if direct_link else None,
            )
            for position, spec in enumerate(recipients, start=1):
                self.store.insert_template_recipient(
                    conn,
                    template_id=template["id"],
                    position=position,
                    email=spec.email,
                    name=spec.name,
                    role=spec.role,
                    signing_order=spec.signing_order,
                )
            return template

    def create_document_from_template(
        self,
        template_id: int,
        *,
        owner_id: int,
        recipients: Mapping[int, RecipientValues],
        request_key: str | None = None,
        metadata: Metadata | None = None,
    ) -> Row:
        """A DRAFT document from a template; fires DOCUMENT_CREATED.

        Args:
            owner_id: Who the document belongs to (who asked for it).
            recipients: Replaces the email and name of the template's recipients, by number.
            request_key: Names the request; run again with the same key, this returns
                the document the first run made and creates nothing.

        Raises:
            FlowError: The template does not exist.
        """
        with self._transaction() as conn:
            return self._from_template(
                conn,
                template_id,
                owner_id=owner_id,
                recipients=recipients,
                source=SOURCE_TEMPLATE,
                request_key=request_key,
                metadata=metadata or Metadata(),
            )

    def send_document_once(self, document_id: int, metadata: Metadata | None = None) -> Row:
        """Send a DRAFT document; one sent already (by an earlier run) is left as it is."""
        try:
            return self.send_document(document_id, metadata)
        except FlowError:
            document = self.document(document_id)
            if document["status"] == "DRAFT" or document["deleted_at"] is not None:
                raise
            return document

    def use_direct_link(self, token: str, *, email: str, name: str, metadata: Metadata | None = None) -> Row:
        """A signer opens a template's direct link and signs: the document is made, signed and sent on.

        The signer becomes recipient 1 and signs at once; the others are invited in
        signing order (or, if nobody is left, the document is sealed), and the template's
        owner, who owns the document, is told.

        Returns:
            The signer's recipient row.

        Raises:
            FlowError: No template has this enabled direct link.
        """
        metadata = metadata or Metadata()
        with self._transaction() as conn:
            template = self.store.template_by_direct_link(conn, token)
            if template is None:
                raise FlowError("no template has this direct link, or it is disabled")
            created = self._from_template(
                conn,
                template["id"],
                owner_id=template["owner_id"],
                recipients={DIRECT_LINK_RECIPIENT: RecipientValues(email, name)},
                source=SOURCE_DIRECT_LINK,
                request_key=None,
                metadata=metadata,
            )
            document_id = created["id"]
            self.store.set_document_status(conn, document_id, "PENDING")
            document = self._document(conn, document_id)
            # Recipient 1 is the first the document got (its order may put others first).
            signer = min(self.store.recipients(conn, document_id), key=lambda r: int(r["id"]))
            self.store.sign_recipient(conn, signer["id"])
            self._audit(
                conn,
                document_id,
                "DOCUMENT_RECIPIENT_COMPLETED",
                {"recipientId": signer["id"], "directTemplate": True},
                email=email,
                name=name,
                metadata=metadata,
            )
            self._webhook(conn, WebhookEvent.DOCUMENT_SIGNED, document_id)
            jobs.trigger(
                "send.document.created.from.direct.template.email",
                {"envelopeId": document["envelope_id"], "recipientId": signer["id"]},
                conn=conn,
            )
            recipients = self.store.recipients(conn, document_id)
            waiting = self._next_to_act(document, recipients)
            for recipient in waiting:
                self._invite(conn, document, recipient, metadata)
            if not waiting:
                jobs.trigger(
                    "internal.seal-document",
                    {"documentId": document_id, "requestMetadata": metadata.payload()},
                    conn=conn,
                )
            signed = self.store.recipient(conn, signer["id"])
            assert signed is not None
            return signed

    def _from_template(
        self,
        conn: Connection,
        template_id: int,
        *,
        owner_id: int,
        recipients: Mapping[int, RecipientValues],
        source: str,
        request_key: str | None,
        metadata: Metadata,
    ) -> Row:
        document = self.store.insert_document_from_template(
            conn,
            template_id=template_id,
            envelope_id=f"envelope_{secrets.token_hex(8)}",
            owner_id=owner_id,
            source=source,
            request_key=request_key,
        )
        if document is None:
            made = self.store.document_id_by_request_key(conn, request_key) if request_key else None
            if made is None:
                raise FlowError(f"template {template_id} does not exist")
            return self._document(conn, made)
        for recipient in self.store.template_recipients(conn, template_id):
            given = recipients.get(int(recipient["position"]))
            self.store.insert_recipient(
                conn,
                document_id=document["id"],
                email=given.email if given else recipient["email"],
                name=given.name if given else recipient["name"],
                role=recipient["role"],
                token=secrets.token_urlsafe(16),
                signing_order=recipient["signing_order"],
                expires_at=None,
            )
        self._audit(
            conn,
            document["id"],
            "DOCUMENT_CREATED",
            {"title": document["title"], "templateId": template_id, "source": source},
            user_id=owner_id,
            metadata=metadata,
        )
        self._webhook(conn, WebhookEvent.DOCUMENT_CREATED, document["id"])
        return self._document(conn, document["id"])
