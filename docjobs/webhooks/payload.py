"""The document object webhooks carry (the reference's ``ZWebhookDocumentSchema``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Row = dict[str, Any]


def iso(moment: datetime | None) -> str | None:
    """An aware datetime as the reference prints it: ISO 8601 in UTC with milliseconds and ``Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def recipient_payload(recipient: Row, document: Row) -> dict[str, Any]:
    """One recipient as webhooks see it."""
    return {
        "id": recipient["id"],
        "envelopeId": document["envelope_id"],
        "documentId": document["id"],
        "templateId": None,
        "email": recipient["email"],
        "name": recipient["name"],
        "token": recipient["token"],
        "documentDeletedAt": iso(document["deleted_at"]),
        "expiresAt": iso(recipient["expires_at"]),
        "expirationNotifiedAt": iso(recipient["expiration_notified_at"]),
        "signedAt": iso(recipient["signed_at"]),
        "authOptions": None,
        "signingOrder": recipient["signing_order"],
        "rejectionReason": recipient["rejection_reason"],
        "role": recipient["role"],
        "readStatus": recipient["read_status"],
        "signingStatus": recipient["signing_status"],
        "sendStatus": recipient["send_status"],
    }


def document_payload(document: Row, recipients: list[Row]) -> dict[str, Any]:
    """A document and its recipients as webhooks see them.

    As in the reference, ``documentMeta.timezone`` and ``dateFormat`` are fixed
    values and ``Recipient`` repeats ``recipients`` for old receivers.
    """
    people = [recipient_payload(recipient, document) for recipient in recipients]
    return {
        "id": document["id"],
        "envelopeId": document["envelope_id"],
        "externalId": None,
        "userId": document["owner_id"],
        "authOptions": None,
        "formValues": None,
        "visibility": "EVERYONE",
        "title": document["title"],
        "status": document["status"],
        "createdAt": iso(document["created_at"]),
        "updatedAt": iso(document["updated_at"]),
        "completedAt": iso(document["completed_at"]),
        "deletedAt": iso(document["deleted_at"]),
        "teamId": None,
        "templateId": None,
        "source": "DOCUMENT",
        "documentMeta": {
            "id": document["envelope_id"],
            "subject": document["subject"],
            "message": document["message"],
            "timezone": "Etc/UTC",
            "dateFormat": "yyyy-MM-dd hh:mm a",
            "redirectUrl": None,
            "signingOrder": document["signing_order"],
            "allowDictateNextSigner": False,
            "typedSignatureEnabled": True,
            "uploadSignatureEnabled": True,
            "drawSignatureEnabled": True,
            "language": "en",
            "distributionMethod": "EMAIL",
            "emailSettings": None,
        },
        "recipients": people,
        "Recipient": people,
    }
