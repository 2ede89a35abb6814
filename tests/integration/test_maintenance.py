"""Sweeps, process-* jobs and cleanups on real data."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from docjobs_devkit.http import Receiver
from docjobs_devkit.pdfs import sample_pdf
from docjobs_devkit.smtp import Mailbox, text_part

from docjobs import jobs
from docjobs.domain import Flows, RecipientSpec
from docjobs.runtime import Runtime
from docjobs.webhooks.events import WebhookEvent

PDF = sample_pdf(2, title="Agreement")


def settle(service: Runtime) -> None:
    service.join()


def execute(url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        cursor = conn.execute(query.encode(), params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(status=200).running() as running:
        yield running


@pytest.fixture
def make_document(service: Runtime, receiver: Receiver) -> Callable[..., dict[str, Any]]:
    flows = Flows()
    owner = flows.create_user("olivia@example.com", "Olivia Owner")
    flows.add_webhook(owner["id"], receiver.url, list(WebhookEvent))

    def make(title: str, *emails: str) -> dict[str, Any]:
        people = [RecipientSpec(email, email.split("@")[0].title()) for email in emails]
        document = flows.create_document(owner["id"], title, PDF, people)
        flows.send_document(document["id"])
        return document

    return make


def test_the_seal_sweep_closes_documents_finished_between_15_minutes_and_6_hours_ago(
    service: Runtime, make_document: Callable[..., dict[str, Any]], mailbox: Mailbox, database_url: str
) -> None:
    documents = {
        name: make_document(name, f"{name.lower()}@example.com")
        for name in ("Signed", "Rejected", "Recent", "Old", "Unsigned")
    }
    settle(service)
    signed_ago = {"Signed": "1 hour", "Recent": "5 minutes", "Old": "7 hours"}
    for name, age in signed_ago.items():
        execute(database_url, f"UPDATE recipient SET signing_status = 'SIGNED', signed_at = now() - interval '{age}' "
                "WHERE document_id = %s", documents[name]["id"])  # fmt: skip
    execute(database_url, "UPDATE recipient SET signing_status = 'REJECTED', signed_at = now() - interval '2 hours', "
            "rejection_reason = 'no' WHERE document_id = %s", documents["Rejected"]["id"])  # fmt: skip
    mailbox.messages.clear()
    jobs.trigger("internal.seal-document-sweep", {})
    settle(service)
    statuses = {r["title"]: r["status"] for r in execute(database_url, "SELECT title, status FROM document")}
    assert {"Signed": "COMPLETED", "Rejected": "REJECTED", "Recent": "PENDING", "Old": "PENDING",
            "Unsigned": "PENDING"} == statuses  # fmt: skip
    seals = execute(database_url, "SELECT payload FROM background_job WHERE actor = 'internal.seal-document'")
    assert all(seal["payload"]["isResealing"] for seal in seals) and 2 == len(seals)
    # The sweep's reseal of a still-pending document sends the completion emails it never got.
    assert {"Olivia Owner <olivia@example.com>", "Signed <signed@example.com>"} == {
        str(m["To"]) for m in mailbox.messages if m["Subject"] == "Signing Complete!"
    }


def test_an_expired_recipient_is_notified_once(
    service: Runtime, make_document: Callable[..., dict[str, Any]], mailbox: Mailbox, receiver: Receiver,
    database_url: str,
) -> None:  # fmt: skip
    document = make_document("Lease", "alice@example.com", "bob@example.com")
    settle(service)
    (alice,) = execute(database_url, "UPDATE recipient SET expires_at = now() - interval '1 minute' "
                       "WHERE email = 'alice@example.com' RETURNING id")  # fmt: skip
    mailbox.messages.clear()
    receiver.requests.clear()
    jobs.trigger("internal.expire-recipients-sweep", {})
    settle(service)
    jobs.trigger("internal.process-recipient-expired", {"recipientId": alice["id"]})  # a duplicate delivery
    settle(service)
    (email,) = mailbox.messages
    assert 'Signing window expired for "Alice" on "Lease"' == email["Subject"]
    assert "olivia@example.com" in str(email["To"])
    assert f"https://sign.example.com/documents/{document['envelope_id']}" in text_part(email)
    audits = execute(database_url, "SELECT * FROM audit_log WHERE type = 'DOCUMENT_RECIPIENT_EXPIRED'")
    assert [alice["id"]] == [a["data"]["recipientId"] for a in audits]
    events = [json.loads(r.body)["event"] for r in receiver.requests]
    assert ["RECIPIENT_EXPIRED"] == events
    (row,) = execute(database_url, "SELECT * FROM recipient WHERE id = %s", alice["id"])
    assert row["expiration_notified_at"] is not None
    assert "PENDING" == execute(database_url, "SELECT status FROM document")[0]["status"]


def test_a_due_reminder_is_sent_once_and_the_next_one_scheduled(
    service: Runtime, make_document: Callable[..., dict[str, Any]], mailbox: Mailbox, receiver: Receiver,
    database_url: str,
) -> None:  # fmt: skip
    make_document("Lease", "alice@example.com")
    settle(service)
    (alice,) = execute(
        database_url, "UPDATE recipient SET next_reminder_at = now() - interval '1 minute' RETURNING id"
    )
    mailbox.messages.clear()
    receiver.requests.clear()
    jobs.trigger("internal.send-signing-reminders-sweep", {})
    settle(service)
    jobs.trigger("internal.process-signing-reminder", {"recipientId": alice["id"]})  # a duplicate delivery
    settle(service)
    (reminder,) = mailbox.messages
    assert 'Reminder: Please sign the document "Lease"' == reminder["Subject"]
    (row,) = execute(database_url, "SELECT * FROM recipient WHERE id = %s", alice["id"])
    assert 1 == row["reminder_count"]
    # The default settings: the first reminder after 5 days, then every 2 days.
    assert (
        timedelta(days=1, hours=23)
        < row["next_reminder_at"] - row["last_reminder_sent_at"]
        < timedelta(days=2, minutes=1)
    )
    assert 1 == len(execute(database_url, "SELECT * FROM audit_log WHERE data->>'emailType' = 'REMINDER'"))
    assert ["DOCUMENT_REMINDER_SENT"] == [json.loads(r.body)["event"] for r in receiver.requests]


def test_cleanups_delete_old_rows_in_batches_and_keep_recent_ones(
    service: Runtime, database_url: str
) -> None:
    owner = Flows().create_user("olivia@example.com", "Olivia")
    webhook = Flows().add_webhook(owner["id"], "https://hooks.example.com/x", [WebhookEvent.DOCUMENT_SENT])
    execute(database_url, "INSERT INTO rate_limit (key, action, bucket, created_at) SELECT 'k' || n, 'a', now(), "
            "now() - interval '2 days' FROM generate_series(1, 25000) AS n")  # fmt: skip
    execute(database_url, "INSERT INTO rate_limit (key, action, bucket) SELECT 'fresh' || n, 'a', now() "
            "FROM generate_series(1, 10) AS n")  # fmt: skip
    execute(database_url, "INSERT INTO webhook_call (webhook_id, status, url, event, request_body, response_code, "
            "created_at) SELECT %s, 'SUCCESS', 'u', 'DOCUMENT_SENT', '{}', 200, now() - (n || ' days')::interval "
            "FROM generate_series(1, 40) AS n", webhook["id"])  # fmt: skip
    execute(database_url, "INSERT INTO background_job (id, actor, name, status, completed_at) SELECT 'old' || n, "
            "'x', 'x', 'COMPLETED', now() - interval '31 days' FROM generate_series(1, 12000) AS n")  # fmt: skip
    execute(database_url, "INSERT INTO background_job (id, actor, name, status, completed_at) "
            "VALUES ('recent', 'x', 'x', 'FAILED', now() - interval '29 days')")  # fmt: skip
    for job_id in (
        "internal.cleanup-rate-limits",
        "internal.cleanup-webhook-calls",
        "internal.cleanup-background-jobs",
    ):
        jobs.trigger(job_id, {})
    settle(service)
    assert [{"count": 10}] == execute(database_url, "SELECT count(*) FROM rate_limit")
    assert [{"count": 29}] == execute(database_url, "SELECT count(*) FROM webhook_call")  # 1..29 days old
    remaining = execute(database_url, "SELECT id FROM background_job WHERE actor = 'x'")
    assert [{"id": "recent"}] == remaining
