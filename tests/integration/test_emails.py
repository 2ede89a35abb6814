"""Every email job against a real SMTP server: recipients, subjects, both parts, links, retries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import psycopg
import pytest
from docjobs_devkit.pdfs import sample_pdf
from docjobs_devkit.smtp import Mailbox, attachments, html_part, text_part

from docjobs import jobs
from docjobs.domain import Flows, RecipientSpec
from docjobs.runtime import Runtime

PDF = sample_pdf(2, title="Agreement")


def settle(service: Runtime) -> None:
    service.join()


def rows(url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query.encode(), params).fetchall()


def job(url: str, actor: str) -> dict[str, Any]:
    (found,) = rows(url, "SELECT * FROM background_job WHERE actor = %s", actor)
    return found


@pytest.fixture
def flows(service: Runtime) -> Flows:
    return Flows()


@pytest.fixture
def sent_document(flows: Flows, service: Runtime) -> Callable[..., dict[str, Any]]:
    """A sent document from Olivia (to Alice and Bob unless told); returns it with its recipients by name."""

    def make(recipients: list[RecipientSpec] | None = None, **options: Any) -> dict[str, Any]:
        owner = flows.create_user("olivia@example.com", "Olivia Owner")
        document = flows.create_document(
            owner["id"], "Contract", PDF,
            recipients or [RecipientSpec("alice@example.com", "Alice"), RecipientSpec("bob@example.com", "Bob")],
            **options,
        )  # fmt: skip
        flows.send_document(document["id"])
        settle(service)
        recipients = {r["name"]: r for r in flows.recipients(document["id"])}
        return {**document, "recipients": recipients, "owner": owner}

    return make


def test_a_rejection_emails_the_rejecter_the_owner_and_the_others(
    service: Runtime,
    flows: Flows,
    mailbox: Mailbox,
    sent_document: Callable[..., dict[str, Any]],
    database_url: str,
) -> None:
    document = sent_document()
    flows.reject(document["recipients"]["Bob"]["token"], "The rent is too high.")
    settle(service)
    (confirmation,) = [m for m in mailbox.to("bob@") if "Rejection Confirmed" in m["Subject"]]
    assert 'Document "Contract" - Rejection Confirmed' == confirmation["Subject"]
    assert "The rent is too high." in text_part(confirmation)
    assert "The rent is too high." in html_part(confirmation)
    (to_owner,) = mailbox.to("olivia@")
    assert 'Document "Contract" - Rejected by Bob' == to_owner["Subject"]
    assert f"https://sign.example.com/documents/{document['envelope_id']}" in text_part(to_owner)
    (cancelled,) = [m for m in mailbox.to("alice@") if "Cancelled" in m["Subject"]]
    assert 'Document "Contract" Cancelled' == cancelled["Subject"]
    assert [] == [m for m in mailbox.to("bob@") if "Cancelled" in m["Subject"]]  # not to the rejecter
    assert "REJECTED" == rows(database_url, "SELECT status FROM document")[0]["status"]
    assert not [m for m in mailbox.messages if m["Subject"] == "Signing Complete!"]


def test_a_cancellation_emails_every_invited_recipient(
    service: Runtime, flows: Flows, mailbox: Mailbox, sent_document: Callable[..., dict[str, Any]]
) -> None:
    document = sent_document()
    flows.cancel(document["id"], "Wrong draft.")
    settle(service)
    cancelled = [m for m in mailbox.messages if m["Subject"] == 'Document "Contract" Cancelled']
    assert {"Alice <alice@example.com>", "Bob <bob@example.com>"} == {str(m["To"]) for m in cancelled}
    assert all("Wrong draft." in text_part(m) and "Olivia Owner" in text_part(m) for m in cancelled)


def test_deleting_a_pending_document_emails_its_invited_recipients(
    service: Runtime, flows: Flows, mailbox: Mailbox, sent_document: Callable[..., dict[str, Any]]
) -> None:
    document = sent_document()
    flows.delete(document["id"])
    settle(service)
    deleted = [m for m in mailbox.messages if m["Subject"] == "Document Cancelled"]
    assert {"Alice <alice@example.com>", "Bob <bob@example.com>"} == {str(m["To"]) for m in deleted}
    assert all('Olivia Owner has deleted "Contract"' in text_part(m) for m in deleted)


def test_a_removed_recipient_is_told(
    service: Runtime, flows: Flows, mailbox: Mailbox, sent_document: Callable[..., dict[str, Any]]
) -> None:
    document = sent_document()
    flows.remove_recipient_notice(document["id"], "dan@example.com", "Dan")
    settle(service)
    (removed,) = mailbox.to("dan@")
    assert "You have been removed from a document" == removed["Subject"]
    assert 'You were removed from "Contract" by Olivia Owner.' in text_part(removed)


def test_a_signup_gets_a_one_hour_confirmation_link(
    service: Runtime, flows: Flows, mailbox: Mailbox, database_url: str
) -> None:
    user = flows.sign_up("erin@example.com", "Erin")
    settle(service)
    (confirmation,) = mailbox.to("erin@")
    assert "Please confirm your email" == confirmation["Subject"]
    (token,) = rows(database_url, "SELECT * FROM verification_token WHERE user_id = %s", user["id"])
    assert "confirmation-email" == token["identifier"]
    assert timedelta(minutes=59) < token["expires_at"] - token["created_at"] <= timedelta(hours=1)
    assert f"https://sign.example.com/verify-email/{token['token']}" in text_part(confirmation)
    assert f"https://sign.example.com/verify-email/{token['token']}" in html_part(confirmation)


def test_a_verified_user_gets_no_confirmation_and_a_missing_one_fails_without_retry(
    service: Runtime, flows: Flows, mailbox: Mailbox, database_url: str
) -> None:
    flows.create_user("frank@example.com", "Frank", verified=True)
    jobs.trigger("send.signup.confirmation.email", {"email": "frank@example.com"})
    jobs.trigger("send.signup.confirmation.email", {"email": "ghost@example.com"})
    settle(service)
    assert [] == mailbox.messages
    failed = rows(database_url, "SELECT * FROM background_job WHERE status = 'FAILED'")
    assert 1 == len(failed) and 1 == failed[0]["attempts"]
    assert "no user has the email address ghost@example.com" in failed[0]["last_error"]


def test_an_admin_created_user_gets_a_24_hour_reset_link(
    service: Runtime, flows: Flows, mailbox: Mailbox, database_url: str
) -> None:
    user = flows.admin_create_user("gina@example.com", "Gina")
    settle(service)
    (welcome,) = mailbox.to("gina@")
    assert "Welcome to Documenso" == welcome["Subject"]
    (token,) = rows(database_url, "SELECT * FROM verification_token WHERE user_id = %s", user["id"])
    assert "password-reset" == token["identifier"]
    assert 36 == len(token["token"])
    assert timedelta(hours=23, minutes=59) < token["expires_at"] - token["created_at"] <= timedelta(hours=24)
    assert f"https://sign.example.com/reset-password/{token['token']}" in text_part(welcome)


def test_a_password_change_is_confirmed(service: Runtime, flows: Flows, mailbox: Mailbox) -> None:
    user = flows.create_user("hank@example.com", "Hank")
    flows.reset_password(user["id"])
    settle(service)
    (confirmation,) = mailbox.to("hank@")
    assert "Password Reset Success!" == confirmation["Subject"]
    assert "Your password has been reset." in html_part(confirmation)


def test_a_refused_address_is_recorded_and_not_retried(
    service: Runtime, mailbox: Mailbox, sent_document: Callable[..., dict[str, Any]], database_url: str
) -> None:
    mailbox.refused.add("bob@example.com")
    document = sent_document()
    bob = document["recipients"]["Bob"]
    invitations = rows(
        database_url, "SELECT * FROM background_job WHERE actor = 'send.signing.requested.email'"
    )
    assert all(row["status"] == "COMPLETED" and row["attempts"] == 1 for row in invitations)
    assert ["Alice <alice@example.com>"] == [str(m["To"]) for m in mailbox.messages]
    assert bob["email_refused_at"] is not None
    assert "NOT_SENT" == bob["send_status"]
    (refusal,) = rows(database_url, "SELECT * FROM audit_log WHERE type = 'EMAIL_REFUSED'")
    assert "bob@example.com" == refusal["data"]["recipientEmail"] and 550 == refusal["data"]["code"]


def test_a_deferred_address_is_retried_and_receives_one_email(
    service: Runtime, mailbox: Mailbox, sent_document: Callable[..., dict[str, Any]], database_url: str
) -> None:
    mailbox.deferrals["alice@example.com"] = 2
    document = sent_document()
    assert 1 == len(mailbox.to("alice@"))
    (alice_job,) = [
        row
        for row in rows(
            database_url, "SELECT * FROM background_job WHERE actor = 'send.signing.requested.email'"
        )
        if row["payload"]["recipientId"] == document["recipients"]["Alice"]["id"]
    ]
    assert "COMPLETED" == alice_job["status"] and 3 == alice_job["attempts"]
    assert "SMTPRecipientsRefused" in alice_job["last_error"]
    assert "SENT" == document["recipients"]["Alice"]["send_status"]


def test_a_retried_multi_recipient_job_never_sends_twice(
    service: Runtime,
    mailbox: Mailbox,
    sent_document: Callable[..., dict[str, Any]],
    database_url: str,
) -> None:
    document = sent_document()
    mailbox.messages.clear()
    mailbox.deferrals["bob@example.com"] = 1  # the job fails after the owner's and Alice's emails
    jobs.trigger("send.document.completed.emails", {"envelopeId": document["envelope_id"]})
    settle(service)
    completed = [str(m["To"]) for m in mailbox.messages if m["Subject"] == "Signing Complete!"]
    assert sorted(completed) == sorted(
        ["Olivia Owner <olivia@example.com>", "Alice <alice@example.com>", "Bob <bob@example.com>"]
    )
    assert 2 == job(database_url, "send.document.completed.emails")["attempts"]
    sealed = [attachments(m)["Contract.pdf"] for m in mailbox.messages]
    assert 3 == len(sealed) and len(set(sealed)) == 1  # the same PDF to everyone


def test_an_unreachable_mail_server_fails_the_job_after_its_retries(
    make_runtime: Callable[..., Runtime], start_worker: Callable[..., dramatiq.Worker], database_url: str
) -> None:
    from docjobs_devkit.services import free_port

    service = make_runtime(NEXT_PRIVATE_SMTP_HOST="127.0.0.1", NEXT_PRIVATE_SMTP_PORT=str(free_port()))
    start_worker(service.broker)
    user = Flows().create_user("ivy@example.com", "Ivy")
    jobs.trigger("send.password.reset.success.email", {"userId": user["id"]})
    settle(service)
    failed = job(database_url, "send.password.reset.success.email")
    assert "FAILED" == failed["status"] and 4 == failed["attempts"]
    assert "ConnectionRefusedError" in failed["last_error"]


def test_reminder_dates_follow_the_document_settings(
    service: Runtime, sent_document: Callable[..., dict[str, Any]]
) -> None:
    document = sent_document(
        reminder_settings={"sendAfter": {"unit": "day", "amount": 1}, "repeatEvery": {"disabled": True}}
    )
    alice = document["recipients"]["Alice"]
    assert timedelta(hours=23) < alice["next_reminder_at"] - alice["sent_at"] <= timedelta(days=1, minutes=1)
    assert alice["next_reminder_at"] > datetime.now(UTC)


INJECTED_NAME = "Bob\r\nBcc: evil@example.com"


def completed_to(mailbox: Mailbox) -> list[str]:
    """The addresses that received a completion email, one entry per email."""
    return sorted(
        address.addr_spec
        for m in mailbox.messages
        if m["Subject"] == "Signing Complete!"
        for address in m["To"].addresses
    )


def test_a_newline_in_a_name_is_cleaned_and_every_recipient_gets_the_signed_pdf(
    service: Runtime,
    flows: Flows,
    mailbox: Mailbox,
    sent_document: Callable[..., dict[str, Any]],
    database_url: str,
) -> None:
    document = sent_document(
        [RecipientSpec("alice@example.com", "Alice"), RecipientSpec("bob@example.com", INJECTED_NAME)]
    )
    for recipient in document["recipients"].values():
        flows.sign(recipient["token"])
    settle(service)

    assert ["alice@example.com", "bob@example.com", "olivia@example.com"] == completed_to(mailbox)
    (sealed,) = rows(
        database_url,
        "SELECT data FROM document_data WHERE id = (SELECT current_data_id FROM document WHERE id = %s)",
        document["id"],
    )
    completed = [m for m in mailbox.messages if m["Subject"] == "Signing Complete!"]
    assert all({"Contract.pdf": bytes(sealed["data"])} == attachments(m) for m in completed)
    to_bob = [m for m in mailbox.messages if "bob@example.com" in str(m["To"])]
    assert {"Please sign this document", "Signing Complete!"} <= {m["Subject"] for m in to_bob}
    assert all("Bob Bcc: evil@example.com" == m["To"].addresses[0].display_name for m in to_bob)
    signed_notices = {m["Subject"] for m in mailbox.to("olivia@") if "has signed" in m["Subject"]}
    assert {
        'Alice has signed "Contract"',
        'Bob Bcc: evil@example.com has signed "Contract"',
    } == signed_notices
    # Nothing was injected: no extra header, no extra envelope recipient.
    assert not any("Bcc" in part.keys() for m in mailbox.messages for part in m.walk())
    assert not any("\nBcc:" in text_part(m) for m in mailbox.messages)  # names in the text stay one line
    assert "evil@example.com" not in mailbox.asked
    assert {"olivia@example.com", "alice@example.com", "bob@example.com"} == set(mailbox.asked)
    email_jobs = rows(database_url, "SELECT actor, status FROM background_job WHERE actor LIKE 'send.%%'")
    assert {"COMPLETED"} == {row["status"] for row in email_jobs}


def test_an_unusable_address_does_not_keep_the_others_from_their_email(
    service: Runtime,
    flows: Flows,
    mailbox: Mailbox,
    sent_document: Callable[..., dict[str, Any]],
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    document = sent_document(
        # A CC gets no invitation: the completion job is the first to meet the address.
        [RecipientSpec("dana.example.com", "Dana", role="CC"), RecipientSpec("alice@example.com", "Alice")]
    )
    flows.sign(document["recipients"]["Alice"]["token"])
    settle(service)

    assert ["alice@example.com", "olivia@example.com"] == completed_to(mailbox)
    completion = job(database_url, "send.document.completed.emails")
    assert "COMPLETED" == completion["status"] and 1 == completion["attempts"]
    dana = next(r for r in flows.recipients(document["id"]) if r["name"] == "Dana")
    assert dana["email_refused_at"] is not None
    (refusal,) = rows(database_url, "SELECT * FROM audit_log WHERE type = 'EMAIL_REFUSED'")
    assert "dana.example.com" == refusal["data"]["recipientEmail"] and refusal["data"]["code"] is None
    assert "the recipient address is not usable" in refusal["data"]["reason"]
    (logged,) = [r for r in caplog.records if getattr(r, "action", None) == "email_undeliverable"]
    assert dana["id"] == logged.recipient_id  # type: ignore[attr-defined]
    assert "dana.example.com" not in logged.getMessage()


def test_a_retry_after_a_deferral_sends_no_email_twice_next_to_a_bad_name(
    service: Runtime,
    mailbox: Mailbox,
    sent_document: Callable[..., dict[str, Any]],
    database_url: str,
) -> None:
    document = sent_document(
        [RecipientSpec("alice@example.com", "Alice"), RecipientSpec("bob@example.com", INJECTED_NAME)]
    )
    mailbox.messages.clear()
    mailbox.deferrals["alice@example.com"] = 1  # the first attempt fails at Alice, after the owner's email
    jobs.trigger("send.document.completed.emails", {"envelopeId": document["envelope_id"]})
    settle(service)

    assert ["alice@example.com", "bob@example.com", "olivia@example.com"] == completed_to(mailbox)
    completion = job(database_url, "send.document.completed.emails")
    assert "COMPLETED" == completion["status"] and 2 == completion["attempts"]
    audited = rows(
        database_url, "SELECT email FROM audit_log WHERE data->>'emailType' = 'DOCUMENT_COMPLETED'"
    )
    assert ["alice@example.com", "bob@example.com", "olivia@example.com"] == sorted(
        r["email"] for r in audited
    )


def test_a_recipient_deferred_on_every_attempt_does_not_hold_back_the_others(
    service: Runtime,
    mailbox: Mailbox,
    sent_document: Callable[..., dict[str, Any]],
    database_url: str,
) -> None:
    document = sent_document()
    mailbox.messages.clear()
    mailbox.deferrals["alice@example.com"] = 1_000  # Alice's mailbox never takes the email
    jobs.trigger("send.document.completed.emails", {"envelopeId": document["envelope_id"]})
    settle(service)

    assert ["bob@example.com", "olivia@example.com"] == completed_to(mailbox)
    completion = job(database_url, "send.document.completed.emails")
    assert "FAILED" == completion["status"]  # transient until the retries ran out: the board shows it
    assert "SMTPRecipientsRefused" in completion["last_error"]
