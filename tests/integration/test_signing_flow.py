"""A whole signing flow through the local provider: invitations, signatures, webhooks, completion."""

from __future__ import annotations

import json
from collections import Counter

import psycopg
import pytest
from docjobs_devkit.http import Receiver
from docjobs_devkit.pdfs import sample_pdf
from docjobs_devkit.smtp import Mailbox, attachments, html_part, text_part

from docjobs import signatures
from docjobs.domain import FieldSpec, Flows, Metadata, RecipientSpec
from docjobs.runtime import Runtime
from docjobs.webhooks import delivery
from docjobs.webhooks.events import WebhookEvent

PDF = sample_pdf(2, title="Agreement")
SECRET = "whsec-test-0123"


def settle(service: Runtime) -> None:
    """Wait until every job enqueued so far (and every job they enqueue) is finished."""
    service.join()


@pytest.fixture
def flows(service: Runtime) -> Flows:
    return Flows()


@pytest.fixture
def receiver() -> Receiver:
    with Receiver(status=200).running() as running:
        yield running


def test_a_document_goes_from_invitations_to_completion_emails(
    service: Runtime, flows: Flows, mailbox: Mailbox, receiver: Receiver, database_url: str
) -> None:
    owner = flows.create_user("olivia@example.com", "Olivia Owner")
    flows.add_webhook(owner["id"], receiver.url, list(WebhookEvent), secret=SECRET)
    document = flows.create_document(
        owner["id"],
        "Lease",
        PDF,
        [
            RecipientSpec("alice@example.com", "Alice"),
            RecipientSpec("bob@example.com", "Bob"),
            RecipientSpec("carol@example.com", "Carol", role="CC"),
        ],
        [FieldSpec(recipient=0, type="SIGNATURE"), FieldSpec(recipient=1, type="SIGNATURE")],
        message="Please sign the lease by Friday.",
    )
    flows.send_document(document["id"], Metadata(ip_address="203.0.113.7", user_agent="pytest"))
    settle(service)

    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        recipients = {r["email"]: r for r in conn.execute("SELECT * FROM recipient ORDER BY id").fetchall()}
        fields = conn.execute("SELECT * FROM field ORDER BY id").fetchall()
    invitations = {str(m["To"]): m for m in mailbox.messages}
    assert {"Alice <alice@example.com>", "Bob <bob@example.com>"} == set(invitations)
    invitation = invitations["Alice <alice@example.com>"]
    alice = recipients["alice@example.com"]
    assert "Please sign this document" == invitation["Subject"]
    assert "Example Sign <sign@example.com>" == invitation["From"]
    assert str(owner["id"]) == invitation["X-Documenso-Sender-User-Id"]
    assert document["envelope_id"] == invitation["X-Documenso-Envelope-Id"]
    link = f"https://sign.example.com/sign/{alice['token']}"
    assert link in text_part(invitation)
    assert f'href="{link}"' in html_part(invitation)
    assert "Please sign the lease by Friday." in text_part(invitation)
    assert "SENT" == alice["send_status"]
    assert alice["next_reminder_at"] is not None
    assert "NOT_SENT" == recipients["carol@example.com"]["send_status"]  # CC: no invitation

    flows.open_document(alice["token"])
    flows.sign(alice["token"], {fields[0]["id"]: "Alice"})
    settle(service)
    assert ['Alice has signed "Lease"'] == [m["Subject"] for m in mailbox.to("olivia@")]
    assert ["Waiting for others to complete signing."] == [
        m["Subject"] for m in mailbox.to("alice@") if m["Subject"].startswith("Waiting")
    ]

    flows.sign(recipients["bob@example.com"]["token"], {fields[1]["id"]: "Bob"})
    settle(service)
    completed = [m for m in mailbox.messages if m["Subject"] == "Signing Complete!"]
    assert {
        "Olivia Owner <olivia@example.com>",
        "Alice <alice@example.com>",
        "Bob <bob@example.com>",
        "Carol <carol@example.com>",
    } == {str(m["To"]) for m in completed}
    with psycopg.connect(database_url) as conn:
        (sealed,) = conn.execute(
            "SELECT data FROM document_data WHERE id = (SELECT current_data_id FROM document WHERE id = %s)",
            (document["id"],),
        ).fetchone()
    assert bytes(sealed) != PDF and bytes(sealed).startswith(b"%PDF")
    for message in completed:
        assert {"Lease.pdf": bytes(sealed)} == attachments(message)
    carol_mail = next(m for m in completed if "carol" in str(m["To"]))
    carol = recipients["carol@example.com"]
    assert f"https://sign.example.com/report/{carol['token']}" in text_part(carol_mail)

    with psycopg.connect(database_url, row_factory=psycopg.rows.dict_row) as conn:
        final = conn.execute("SELECT * FROM document WHERE id = %s", (document["id"],)).fetchone()
        audit_types = [
            r["type"]
            for r in conn.execute(
                "SELECT type FROM audit_log WHERE document_id = %s ORDER BY id", (document["id"],)
            ).fetchall()
        ]
        calls = conn.execute("SELECT * FROM webhook_call ORDER BY id").fetchall()
    assert "COMPLETED" == final["status"]
    assert final["completed_at"] is not None
    assert 1 == audit_types.count("DOCUMENT_COMPLETED")
    assert 2 + 2 + 4 <= audit_types.count("EMAIL_SENT")  # invitations, signed/pending, completions

    # Deliveries are jobs of their own and run concurrently: compare counts, not order.
    events = Counter(json.loads(request.body)["event"] for request in receiver.requests)
    assert {
        "DOCUMENT_CREATED": 1,
        "DOCUMENT_SENT": 1,
        "DOCUMENT_OPENED": 1,
        "DOCUMENT_RECIPIENT_COMPLETED": 2,
        "DOCUMENT_SIGNED": 2,
        "DOCUMENT_COMPLETED": 1,
    } == events
    assert len(receiver.requests) == len(calls)
    assert all("SUCCESS" == call["status"] and 200 == call["response_code"] for call in calls)
    last = next(r for r in receiver.requests if json.loads(r.body)["event"] == "DOCUMENT_COMPLETED")
    body = json.loads(last.body)
    assert receiver.url == body["webhookEndpoint"]
    assert "COMPLETED" == body["payload"]["status"]
    assert SECRET == last.headers[delivery.SECRET_HEADER]
    verifier = signatures.SignatureVerifier(SECRET.encode())
    assert (
        verifier.verify(
            last.headers[delivery.TIMESTAMP_HEADER], last.headers[delivery.SIGNATURE_HEADER], last.body
        )
        is None
    )
