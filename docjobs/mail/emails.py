"""What each email of the signing service says: subjects, text and links as in the reference.

Each function takes domain rows (dicts) and the public base URL and returns an
:class:`~docjobs.mail.message.Email`; rendering and sending happen elsewhere.
A person's name mentioned in a text goes through :func:`display`, so it stays one
line there as it does in the headers (where :func:`~docjobs.mail.message.render`
cleans every value again).
"""

from __future__ import annotations

from typing import Any

from docjobs.mail import headers
from docjobs.mail.message import Attachment, Email, Link

Row = dict[str, Any]

#: What a recipient is asked to do, by role.
ACTION_VERBS = {"SIGNER": "sign", "APPROVER": "approve", "VIEWER": "view", "CC": "view"}


def verb(role: str) -> str:
    """The verb of a recipient's role: sign, approve or view."""
    return ACTION_VERBS.get(role, "sign")


def display(person: Row, *, name_key: str = "name", email_key: str = "email") -> str:
    """A person's name on one line, or their email address when they have none."""
    return headers.display_name(str(person.get(name_key) or "")) or headers.display_name(person[email_key])


def signing_request(document: Row, recipient: Row, base_url: str, *, reminder: bool = False) -> Email:
    """The invitation to sign (and, with ``reminder``, its reminder)."""
    action = verb(recipient["role"])
    own_document = recipient["email"].lower() == document["owner_email"].lower()
    if document.get("subject"):
        subject = str(document["subject"])
    elif own_document:
        subject = f"Please {action} your document"
    else:
        subject = f"Please {action} this document"
    if reminder:
        subject = (
            f"Reminder: {document['subject']}"
            if document.get("subject")
            else f'Reminder: Please {action} the document "{document["title"]}"'
        )
    inviter = display(document, name_key="owner_name", email_key="owner_email")
    paragraphs = [f'{inviter} has invited you to {action} "{document["title"]}".']
    if document.get("message"):
        paragraphs.append(str(document["message"]))
    return Email(
        to_address=recipient["email"],
        to_name=recipient["name"],
        subject=subject,
        heading=f"{'Reminder: ' if reminder else ''}{inviter} invited you to {action} a document",
        paragraphs=tuple(paragraphs),
        action=Link(f"{action.capitalize()} document", f"{base_url}/sign/{recipient['token']}"),
        links=(Link("Report this email", f"{base_url}/report/{recipient['token']}"),),
        headers={
            "X-Documenso-Sender-User-Id": str(document["owner_id"]),
            "X-Documenso-Envelope-Id": str(document["envelope_id"]),
        },
    )


def recipient_signed(document: Row, signer: Row, base_url: str) -> Email:
    """Tells the owner that a recipient signed."""
    who = display(signer)
    return Email(
        to_address=document["owner_email"],
        to_name=document["owner_name"] or "",
        subject=f'{who} has signed "{document["title"]}"',
        heading=f'{who} has signed "{document["title"]}"',
        paragraphs=(f"{who} ({signer['email']}) has completed their part of the document.",),
        action=Link("View document", f"{base_url}/documents/{document['envelope_id']}"),
    )


def document_pending(document: Row, recipient: Row, base_url: str) -> Email:
    """Tells a recipient who just signed that others still have to."""
    return Email(
        to_address=recipient["email"],
        to_name=recipient["name"],
        subject="Waiting for others to complete signing.",
        heading="Waiting for others to complete signing.",
        paragraphs=(
            f'You have signed "{document["title"]}". We will email you a copy once everyone has signed.',
        ),
        action=Link("View document", f"{base_url}/sign/{recipient['token']}"),
    )


def document_completed(document: Row, recipient: Row | None, pdf: Attachment, base_url: str) -> Email:
    """ "Signing Complete!" with the sealed PDF, to a recipient or (``recipient`` None) the owner."""
    if recipient is None:
        to_address, to_name = document["owner_email"], document["owner_name"] or ""
        action = Link("View document", f"{base_url}/documents/{document['envelope_id']}")
        links: tuple[Link, ...] = ()
    else:
        to_address, to_name = recipient["email"], recipient["name"]
        action = Link("Download document", f"{base_url}/sign/{recipient['token']}/complete")
        links = (
            (Link("Report this email", f"{base_url}/report/{recipient['token']}"),)
            if recipient["role"] == "CC"
            else ()
        )
    return Email(
        to_address=to_address,
        to_name=to_name,
        subject="Signing Complete!",
        heading=f'"{document["title"]}" was signed by everyone',
        paragraphs=("Everyone has signed. The completed document is attached to this email.",),
        action=action,
        links=links,
        attachments=(pdf,),
    )


def rejection_confirmed(document: Row, recipient: Row, base_url: str) -> Email:
    """Confirms to a recipient that they rejected the document."""
    return Email(
        to_address=recipient["email"],
        to_name=recipient["name"],
        subject=f'Document "{document["title"]}" - Rejection Confirmed',
        heading="You have rejected this document",
        paragraphs=(f'You rejected "{document["title"]}". Its owner has been told.',),
        quote=recipient.get("rejection_reason") or None,
        action=Link("View document", f"{base_url}/sign/{recipient['token']}"),
    )


def rejected_to_owner(document: Row, recipient: Row, base_url: str) -> Email:
    """Tells the owner that a recipient rejected the document."""
    who = display(recipient)
    return Email(
        to_address=document["owner_email"],
        to_name=document["owner_name"] or "",
        subject=f'Document "{document["title"]}" - Rejected by {who}',
        heading=f"{who} has rejected the document",
        paragraphs=(f'{who} ({recipient["email"]}) rejected "{document["title"]}".',),
        quote=recipient.get("rejection_reason") or None,
        action=Link("View document", f"{base_url}/documents/{document['envelope_id']}"),
    )


def document_cancelled(document: Row, recipient: Row, reason: str | None) -> Email:
    """Tells a recipient that the owner cancelled the document."""
    inviter = display(document, name_key="owner_name", email_key="owner_email")
    return Email(
        to_address=recipient["email"],
        to_name=recipient["name"],
        subject=f'Document "{document["title"]}" Cancelled',
        heading=f'"{document["title"]}" was cancelled',
        paragraphs=(f'{inviter} has cancelled "{document["title"]}". You no longer need to act on it.',),
        quote=reason or None,
    )


def document_deleted(
    *,
    document_name: str,
    inviter_name: str | None,
    inviter_email: str,
    recipient_email: str,
    recipient_name: str,
) -> Email:
    """Tells a recipient that a document they were invited to was deleted."""
    inviter = display({"name": inviter_name, "email": inviter_email})
    return Email(
        to_address=recipient_email,
        to_name=recipient_name,
        subject="Document Cancelled",
        heading=f'"{document_name}" was cancelled',
        paragraphs=(f'{inviter} has deleted "{document_name}". You no longer need to act on it.',),
    )


def recipient_removed(
    *, document_title: str, recipient_email: str, recipient_name: str, inviter_name: str | None
) -> Email:
    """Tells a person they were removed from a document."""
    inviter = headers.display_name(inviter_name)
    by = f" by {inviter}" if inviter else ""
    return Email(
        to_address=recipient_email,
        to_name=recipient_name,
        subject="You have been removed from a document",
        heading="You have been removed from a document",
        paragraphs=(f'You were removed from "{document_title}"{by}. You no longer need to act on it.',),
    )


def owner_recipient_expired(document: Row, recipient: Row, base_url: str) -> Email:
    """Tells the owner that a recipient's signing window closed."""
    who = display(recipient)
    return Email(
        to_address=document["owner_email"],
        to_name=document["owner_name"] or "",
        subject=f'Signing window expired for "{who}" on "{document["title"]}"',
        heading="A signing window has expired",
        paragraphs=(f'{who} ({recipient["email"]}) did not sign "{document["title"]}" before it expired.',),
        action=Link("View document", f"{base_url}/documents/{document['envelope_id']}"),
    )


def signup_confirmation(user: Row, token: str, base_url: str) -> Email:
    """Asks a new user to confirm their email address."""
    return Email(
        to_address=user["email"],
        to_name=user["name"] or "",
        subject="Please confirm your email",
        heading="Confirm your email address",
        paragraphs=(
            "Welcome! Confirm your email address to start using your account. The link expires in an hour.",
        ),
        action=Link("Confirm email", f"{base_url}/verify-email/{token}"),
    )


def password_reset_success(user: Row, base_url: str) -> Email:
    """Confirms a password change."""
    return Email(
        to_address=user["email"],
        to_name=user["name"] or "",
        subject="Password Reset Success!",
        heading="Your password was changed",
        paragraphs=(
            "Your password has been reset. If you did not do this, reset it again and contact support.",
        ),
        action=Link("Sign in", f"{base_url}/signin"),
    )


def admin_user_created(user: Row, token: str, base_url: str) -> Email:
    """Welcomes a user an admin created, with a link to set their password."""
    return Email(
        to_address=user["email"],
        to_name=user["name"] or "",
        subject="Welcome to Documenso",
        heading="An account was created for you",
        paragraphs=("Set your password to start using your account. The link expires in 24 hours.",),
        action=Link("Set password", f"{base_url}/reset-password/{token}"),
    )
