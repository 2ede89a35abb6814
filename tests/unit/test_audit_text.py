"""How audit-log entries read on the sealed PDF, for the entries a signing flow test does not reach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from docjobs.pdf.audit_text import audit_lines

SEALED_AT = datetime(2026, 12, 6, 16, 2, 11, tzinfo=UTC)
DOCUMENT = {"owner_id": 3, "owner_name": "Olivia Owner", "owner_email": "olivia@example.com"}
BOB = {"id": 2, "name": "Bob Stone", "email": "bob@example.com", "role": "APPROVER"}


def entry(kind: str, data: dict[str, Any], **columns: Any) -> dict[str, Any]:
    row = {"type": kind, "data": data, "created_at": SEALED_AT + timedelta(hours=1), "user_id": None,
           "email": None, "name": None, "ip_address": None, "user_agent": None}  # fmt: skip
    return {**row, **columns}


def texts(*entries: dict[str, Any]) -> list[str]:
    return [line.text for line in audit_lines(DOCUMENT, [BOB], entries)]


def test_a_rejection_and_a_cancellation_give_the_reason_and_name_who_acted() -> None:
    assert [
        'Bob Stone <bob@example.com> rejected the document. Reason given: "Not this year."',
        'Olivia Owner <olivia@example.com> cancelled the document. Reason given: "Wrong lease."',
        'The document is closed as rejected. Reason given: "Not this year."',
    ] == texts(
        entry("DOCUMENT_RECIPIENT_REJECTED", {"recipientId": 2, "reason": "Not this year."}),
        entry("DOCUMENT_CANCELLED", {"reason": "Wrong lease."}, user_id=3),
        entry("DOCUMENT_COMPLETED", {"isRejected": True, "rejectionReason": "Not this year."}),
    )


def test_an_approver_approves_and_an_email_sent_again_says_so() -> None:
    assert [
        "Bob Stone <bob@example.com> approved the document.",
        "The request to approve the document was emailed again to Bob Stone <bob@example.com>.",
        "Olivia Owner <olivia@example.com> was emailed that Bob Stone rejected the document.",
    ] == texts(
        entry("DOCUMENT_RECIPIENT_COMPLETED", {"recipientId": 2}, email="bob@example.com", name="Bob Stone"),
        entry("EMAIL_SENT", {"emailType": "APPROVER_REQUEST", "recipientId": 2, "isResending": True,
                             "recipientEmail": "bob@example.com", "recipientName": "Bob Stone"}),
        entry("EMAIL_SENT", {"emailType": "DOCUMENT_REJECTED", "recipientId": 2, "isResending": False,
                             "recipientEmail": "olivia@example.com", "recipientName": "Bob Stone"}),
    )  # fmt: skip


def test_a_refused_email_and_an_unknown_entry_read_in_words_without_python_values() -> None:
    assert [
        "An email to bob@example.com could not be delivered (mail server code 550): mailbox unavailable.",
        "Document field inserted, by Bob Stone <bob@example.com>. field id: 12; is base64: no.",
    ] == texts(
        entry("EMAIL_REFUSED", {"recipientEmail": "bob@example.com", "code": 550, "reason": "mailbox unavailable"}),
        entry("DOCUMENT_FIELD_INSERTED", {"fieldId": 12, "isBase64": False, "extra": None}, user_id=None,
              email="bob@example.com", name="Bob Stone"),
    )  # fmt: skip


def test_only_a_persons_own_act_shows_where_it_came_from() -> None:
    lines = audit_lines(
        DOCUMENT,
        [BOB],
        [
            entry(
                "DOCUMENT_OPENED", {"recipientId": 2}, ip_address="203.0.113.7", user_agent="Firefox/128.0"
            ),
            entry("EMAIL_SENT", {"emailType": "REMINDER", "recipientId": 2}, ip_address="203.0.113.7"),
        ],
    )
    assert ["From IP address 203.0.113.7 using Firefox/128.0", None] == [line.detail for line in lines]
