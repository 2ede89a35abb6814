"""How each audit-log entry reads on the sealed PDF: one sentence a signer or a court understands.

An entry becomes one :class:`AuditLine`: its number in the log, its time, a
sentence naming who did what ("Alice Smith <alice@example.com> signed the
document."), any sentences that belong to it (the seal's completion entry lists the
completion emails it is followed by) and, for what a person did, the IP address and
browser it came from (for the completion, its transaction id).

Entries are numbered 1, 2, 3... in the order the log holds them (time, then the
order they were written): entries written in one transaction share their time to
the microsecond, so the number, not the time, is what proves their order. Times
are shown to the millisecond. Raw event names, ids and Python's spelling of values never reach
the page: an entry of a type not known here reads as its type in words, with its
details as "key: value" pairs.

The IP address and browser are shown only for a person's own act (created, sent,
opened, signed, rejected, cancelled): on an email the service sent, they belong to
whoever's request caused it, and would read as the addressee's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from docjobs.domain.completion import OWNER_ROLE

Row = Mapping[str, Any]

ROLE_NAMES = {OWNER_ROLE: "owner", "SIGNER": "signer", "APPROVER": "approver", "VIEWER": "viewer", "CC": "CC"}
#: What finishing means for each role.
FINISHED_VERB = {"SIGNER": "signed", "APPROVER": "approved", "VIEWER": "viewed"}

# Entries written by a person's own request, whose IP address and browser are theirs.
_PERSONAL = frozenset({
    "DOCUMENT_CREATED", "DOCUMENT_SENT", "DOCUMENT_OPENED", "DOCUMENT_RECIPIENT_COMPLETED",
    "DOCUMENT_RECIPIENT_REJECTED", "DOCUMENT_CANCELLED",
})  # fmt: skip


@dataclass(frozen=True)
class AuditLine:
    """One event as the audit page shows it."""

    #: The entry's place in the log, from 1: what the certificate refers to.
    number: int
    at: datetime
    text: str
    #: Further sentences of the same entry (the completion emails it announces).
    more: tuple[str, ...] = ()
    #: A smaller line below: where a person's act came from ("From IP address ... using
    #: ..."), or the completion's transaction id; ``None`` when there is nothing to add.
    detail: str | None = None


def utc_time(moment: datetime) -> str:
    """``2026-12-06 16:02:11 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def utc_time_ms(moment: datetime) -> str:
    """``2026-12-06 16:02:11.042 UTC``: to the millisecond (truncated, never rounded up)."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%d %H:%M:%S}.{utc.microsecond // 1000:03d} UTC"


def person(name: str | None, email: str | None) -> str:
    """``Name <email>``, or whichever of the two is known."""
    if name and email:
        return f"{name} <{email}>"
    return name or email or "someone"


def role_name(role: str | None) -> str:
    """A role in words: signer, approver, viewer, CC, owner."""
    return ROLE_NAMES.get(role or "", (role or "recipient").lower())


def audit_lines(document: Row, recipients: Sequence[Row], entries: Sequence[Row]) -> list[AuditLine]:
    """The audit page's lines for ``entries`` (oldest first) of ``document`` (with ``owner_*`` columns).

    One line per entry, numbered from 1 in the order given.
    """
    context = _Context(document, {r["id"]: r for r in recipients})
    lines: list[AuditLine] = []
    for number, entry in enumerate(entries, start=1):
        first, *more = context.describe(entry)
        lines.append(AuditLine(number, entry["created_at"], first, tuple(more), _detail(entry)))
    return lines


def _client_text(ip_address: str | None, user_agent: str | None) -> str | None:
    """``From IP address 203.0.113.7 using Mozilla/5.0 ...``, or ``None`` when neither is known."""
    if ip_address and user_agent:
        return f"From IP address {ip_address} using {user_agent}"
    if ip_address:
        return f"From IP address {ip_address}"
    return f"Using {user_agent}" if user_agent else None


def _detail(entry: Row) -> str | None:
    if entry["type"] in _PERSONAL:
        return _client_text(entry["ip_address"], entry["user_agent"])
    transaction = (
        (entry["data"] or {}).get("transactionId") if entry["type"] == "DOCUMENT_COMPLETED" else None
    )
    return f"Transaction ID {transaction}" if transaction else None


@dataclass(frozen=True)
class _Context:
    document: Row
    recipients: Mapping[Any, Row]

    def owner(self) -> str:
        return person(self.document.get("owner_name"), self.document.get("owner_email"))

    def actor(self, entry: Row) -> str:
        """Who wrote the entry: its name and email, else the recipient or the account it names."""
        if entry["name"] or entry["email"]:
            return person(entry["name"], entry["email"])
        if entry["user_id"] is not None and entry["user_id"] == self.document.get("owner_id"):
            return self.owner()
        if entry["user_id"] is not None:
            return f"the account with id {entry['user_id']}"
        recipient = self.recipients.get((entry["data"] or {}).get("recipientId"))
        return person(recipient["name"], recipient["email"]) if recipient is not None else "someone"

    def addressee(self, data: Row, address: str | None) -> str:
        """The person an email went to: the owner, the recipient it names, or the bare address."""
        owner_email = self.document.get("owner_email")
        if address and owner_email and address.lower() == str(owner_email).lower():
            return self.owner()
        if address and address == data.get("recipientEmail") and data.get("recipientName"):
            return person(data["recipientName"], address)
        recipient = self.recipients.get(data.get("recipientId"))
        if recipient is not None and (address is None or address == recipient["email"]):
            return person(recipient["name"], recipient["email"])
        return person(None, address)

    def subject_name(self, data: Row) -> str:
        """The recipient an email or entry is about, by name (their email when nameless)."""
        recipient = self.recipients.get(data.get("recipientId"))
        name = data.get("recipientName") or (recipient["name"] if recipient else None)
        email = data.get("recipientEmail") or (recipient["email"] if recipient else None)
        return name or email or "a recipient"

    def describe(self, entry: Row) -> list[str]:
        kind = entry["type"]
        data: Row = entry["data"] or {}
        actor = self.actor(entry)
        match kind:
            case "DOCUMENT_CREATED":
                return [f"{actor} created the document."]
            case "DOCUMENT_SENT":
                return [f"{actor} sent the document for signing."]
            case "DOCUMENT_OPENED":
                return [f"{actor} opened the document."]
            case "DOCUMENT_RECIPIENT_COMPLETED":
                recipient = self.recipients.get(data.get("recipientId"))
                verb = FINISHED_VERB.get(recipient["role"] if recipient else "SIGNER", "signed")
                return [f"{actor} {verb} the document."]
            case "DOCUMENT_RECIPIENT_REJECTED":
                return [f"{actor} rejected the document{_reason(data.get('reason'))}"]
            case "DOCUMENT_RECIPIENT_EXPIRED":
                who = person(data.get("recipientName"), data.get("recipientEmail"))
                return [f"The time {who} had to sign ran out."]
            case "DOCUMENT_CANCELLED":
                return [f"{actor} cancelled the document{_reason(data.get('reason'))}"]
            case "DOCUMENT_COMPLETED":
                return self._completed(data)
            case "EMAIL_SENT":
                return [self._email(data, data.get("recipientEmail") or entry["email"])]
            case "EMAIL_REFUSED":
                code = f" (mail server code {data['code']})" if data.get("code") else ""
                why = f": {data['reason']}" if data.get("reason") else ""
                to = person(None, data.get("recipientEmail") or entry["email"])
                return [f"An email to {to} could not be delivered{code}{why}."]
            case _:
                return [_unknown(kind, actor, data)]

    def _completed(self, data: Row) -> list[str]:
        if data.get("isResealed"):
            lines = ["The document was sealed again, from its original and the same signatures."]
        elif data.get("isRejected"):
            lines = [f"The document is closed as rejected{_reason(data.get('rejectionReason'))}"]
        elif all(r["role"] in ("SIGNER", "CC") for r in self.recipients.values()):
            lines = ["Every recipient has signed: the document is complete."]
        else:
            lines = ["Every recipient has signed, approved or viewed it as asked: the document is complete."]
        for email in data.get("completionEmails") or ():
            lines.append(
                f"The completed document is to be emailed to {person(email.get('name'), email.get('email'))} "
                f"({role_name(email.get('role'))})."
            )
        return lines

    def _email(self, data: Row, address: str | None) -> str:
        to = self.addressee(data, address)
        about = self.subject_name(data)
        again = " again" if data.get("isResending") else ""
        match data.get("emailType"):
            case "SIGNING_REQUEST":
                return f"The request to sign was emailed{again} to {to}."
            case "APPROVER_REQUEST" | "VIEWER_REQUEST" as kind:
                action = "approve" if kind == "APPROVER_REQUEST" else "view"
                return f"The request to {action} the document was emailed{again} to {to}."
            case "CC_REQUEST":
                return f"A copy of the document was emailed{again} to {to}."
            case "REMINDER":
                return f"A reminder was emailed to {to}."
            case "RECIPIENT_SIGNED":
                return f"{to} was emailed that {about} signed."
            case "DOCUMENT_PENDING":
                return f"{to} was emailed that others have yet to sign."
            case "DOCUMENT_COMPLETED":
                return f"The completed document was emailed to {to} ({self._role_of(data, address)})."
            case "RECIPIENT_REJECTED":
                return f"{to} was emailed a confirmation of their rejection."
            case "DOCUMENT_REJECTED":
                return f"{to} was emailed that {about} rejected the document."
            case "DOCUMENT_CANCELLED":
                return f"{to} was emailed that the document was cancelled."
            case "RECIPIENT_REMOVED":
                return f"{to} was emailed that they were removed from the document."
            case "RECIPIENT_EXPIRED":
                return f"{to} was emailed that the time {about} had to sign ran out."
            case None:
                return f"An email was sent to {to}."
            case other:
                return f"An email ({_words(str(other))}) was sent to {to}."

    def _role_of(self, data: Row, address: str | None) -> str:
        owner_email = self.document.get("owner_email")
        if data.get("recipientRole"):
            return role_name(data["recipientRole"])
        if address and owner_email and address.lower() == str(owner_email).lower():
            return role_name(OWNER_ROLE)
        return "recipient"


def _reason(reason: object) -> str:
    """The full stop, then ``Reason given: "..."`` when there is one."""
    return f'. Reason given: "{reason}"' if reason else "."


def _words(name: str) -> str:
    """``SOME_EVENT_NAME`` or ``someKey`` in words: ``some event name``, ``some key``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ")
    return " ".join(spaced.split()).lower()


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return "; ".join(f"{_words(str(k))} {_value(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, list | tuple):
        return ", ".join(_value(item) for item in value if item is not None)
    return str(value)


def _unknown(kind: str, actor: str, data: Row) -> str:
    details = "; ".join(f"{_words(key)}: {_value(value)}" for key, value in data.items() if value is not None)
    sentence = f"{_words(kind).capitalize()}, by {actor}."
    return f"{sentence} {details}." if details else sentence
