"""Who is emailed the completed document: one rule for the email job and for the sealed audit page.

The sealed PDF is made (and signed) before the completion emails go out, since they
carry it. So the seal records, in its completion entry, whom the emails are for,
from this same rule; each email then gets an ``EMAIL_SENT`` entry when it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docjobs.domain.specs import Row

#: The role an owner who is not a recipient is listed under.
OWNER_ROLE = "OWNER"


@dataclass(frozen=True)
class CompletionAudience:
    """The people the completed document is emailed to."""

    #: Whether the owner gets an email of their own (they are not one of the recipients).
    owner: bool
    #: The recipients emailed, in signing order.
    recipients: list[Row]


def completion_audience(document: Row, recipients: list[Row]) -> CompletionAudience:
    """Who gets "Signing Complete!": the owner unless a recipient, and every recipient whose address works.

    Nobody is emailed for a disabled owner's document.
    """
    if document["owner_disabled"]:
        return CompletionAudience(owner=False, recipients=[])
    owner_email = str(document["owner_email"]).lower()
    return CompletionAudience(
        owner=not any(r["email"].lower() == owner_email for r in recipients),
        recipients=[r for r in recipients if r["email_refused_at"] is None],
    )


def completion_emails(document: Row, recipients: list[Row]) -> list[dict[str, Any]]:
    """The completion emails to be sent, as the seal's completion entry records them.

    Returns:
        One ``{"name", "email", "role"}`` per email (``recipientId`` too for a
        recipient), the owner first.
    """
    audience = completion_audience(document, recipients)
    owner = [{"name": document["owner_name"], "email": document["owner_email"], "role": OWNER_ROLE}]
    return (owner if audience.owner else []) + [
        {"name": r["name"], "email": r["email"], "role": r["role"], "recipientId": r["id"]}
        for r in audience.recipients
    ]
