"""internal.seal-document on each provider: the stored PDF, its signature, reseals, refusals."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import psycopg
import pypdf
import pytest
from docjobs_devkit.pdfs import deflate_bomb_pdf, password_protected_pdf, sample_pdf
from docjobs_devkit.smtp import Mailbox
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from docjobs import jobs
from docjobs.domain import FieldSpec, Flows, RecipientSpec
from docjobs.pdf.identity import identity_from_pkcs12
from docjobs.runtime import Runtime

ORIGINAL = sample_pdf(2, title="Tenancy")
GIB = 1024 * 1024 * 1024


def settle(service: Runtime) -> None:
    service.join(timeout_seconds=60)


def rows(url: str, query: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query.encode(), params).fetchall()


def current_pdf(url: str, document_id: int) -> tuple[str, bytes]:
    ((name, data),) = [
        (r["name"], bytes(r["data"]))
        for r in rows(
            url,
            "SELECT d.name, d.data FROM document_data d JOIN document doc ON doc.current_data_id = d.id "
            "WHERE doc.id = %s",
            document_id,
        )
    ]
    return name, data


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(BytesIO(pdf)).pages]


@pytest.fixture
def signed_document(service: Runtime) -> dict[str, Any]:
    """A document Alice and Bob are asked to sign, with a field each and a CC."""
    flows = Flows()
    owner = flows.create_user("olivia@example.com", "Olivia Owner")
    document = flows.create_document(
        owner["id"], "Tenancy", ORIGINAL,
        [RecipientSpec("alice@example.com", "Alice"), RecipientSpec("bob@example.com", "Bob"),
         RecipientSpec("carol@example.com", "Carol", role="CC")],
        [FieldSpec(recipient=0, type="SIGNATURE", position_y=70), FieldSpec(recipient=1, type="SIGNATURE", page=2)],
    )  # fmt: skip
    flows.send_document(document["id"])
    settle(service)
    return document


def sign_all(service: Runtime, document: dict[str, Any]) -> None:
    flows = Flows()
    with service.require_database().connection() as conn:
        fields = {f["recipient_id"]: f["id"] for f in flows.store.fields(conn, document["id"])}
    for recipient in flows.recipients(document["id"]):
        if recipient["role"] != "CC":
            flows.sign(recipient["token"], {fields[recipient["id"]]: f"{recipient['name']} Signature"})
    settle(service)


def test_a_completed_document_gets_a_signed_sealed_pdf(
    service: Runtime, signed_document: dict[str, Any], signing_certificate: bytes, database_url: str
) -> None:
    sign_all(service, signed_document)
    (document,) = rows(database_url, "SELECT * FROM document")
    assert "COMPLETED" == document["status"] and document["completed_at"] is not None
    assert document["original_data_id"] != document["current_data_id"]
    name, sealed = current_pdf(database_url, document["id"])
    assert "Tenancy_signed.pdf" == name
    signature = PdfFileReader(BytesIO(sealed)).embedded_signatures[0]
    trust = identity_from_pkcs12(signing_certificate, None, source="test").certificate
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[trust]))
    assert status.bottom_line and "ENTIRE_FILE" == status.coverage.name
    pages = page_texts(sealed)
    assert 4 == len(pages)  # 2 pages, the certificate, the audit log
    assert "Alice Signature" in pages[0] and "Bob Signature" in pages[1]
    assert "Signing Certificate" in pages[2] and "carol@example.com" in pages[2]
    assert "Audit Log" in pages[3] and "the document is complete." in pages[3]
    assert "Olivia Owner <olivia@example.com> sent the document for signing." in pages[3]
    completions = rows(database_url, "SELECT * FROM audit_log WHERE type = 'DOCUMENT_COMPLETED'")
    assert 1 == len(completions) and completions[0]["data"]["transactionId"]


def test_a_rejected_document_is_stamped_and_closed_rejected(
    service: Runtime, signed_document: dict[str, Any], mailbox: Mailbox, database_url: str
) -> None:
    flows = Flows()
    bob = next(r for r in flows.recipients(signed_document["id"]) if r["name"] == "Bob")
    flows.reject(bob["token"], "Not this year.")
    settle(service)
    (document,) = rows(database_url, "SELECT * FROM document")
    assert "REJECTED" == document["status"]
    name, sealed = current_pdf(database_url, document["id"])
    assert "Tenancy_rejected.pdf" == name
    assert all("DOCUMENT REJECTED" in text for text in page_texts(sealed)[:2])
    (completion,) = rows(database_url, "SELECT * FROM audit_log WHERE type = 'DOCUMENT_COMPLETED'")
    assert {"isRejected": True, "rejectionReason": "Not this year."}.items() <= completion["data"].items()
    assert not [m for m in mailbox.messages if m["Subject"] == "Signing Complete!"]


def test_a_reseal_starts_from_the_original_and_sends_no_emails_again(
    service: Runtime, signed_document: dict[str, Any], mailbox: Mailbox, database_url: str
) -> None:
    sign_all(service, signed_document)
    _, first = current_pdf(database_url, signed_document["id"])
    emails_before = len(mailbox.messages)
    jobs.trigger("internal.seal-document", {"documentId": signed_document["id"], "isResealing": True})
    settle(service)
    _, second = current_pdf(database_url, signed_document["id"])
    assert first != second
    before, after = page_texts(first), page_texts(second)
    assert before[:2] == after[:2]  # fields drawn once
    # The same certificate, now saying when each copy of the completed document was emailed.
    sent = ("Completed document emailed:", "Receives a copy of the completed document")
    assert 3 == after[2].count(sent[0]) and sent[0] not in before[2]
    assert [line for line in before[2].splitlines() if not line.startswith(sent)] == [
        line for line in after[2].splitlines() if not line.startswith(sent)
    ]
    assert emails_before == len(mailbox.messages)
    assert 2 == len(rows(database_url, "SELECT * FROM audit_log WHERE type = 'DOCUMENT_COMPLETED'"))


def test_an_unfinished_document_is_not_sealed_and_not_retried(
    service: Runtime, signed_document: dict[str, Any], database_url: str
) -> None:
    jobs.trigger("internal.seal-document", {"documentId": signed_document["id"]})
    settle(service)
    (job,) = rows(database_url, "SELECT * FROM background_job WHERE actor = 'internal.seal-document'")
    assert ("FAILED", 1) == (job["status"], job["attempts"])
    assert job["last_error"].startswith("DocumentNotComplete: ")
    assert "PENDING" == rows(database_url, "SELECT status FROM document")[0]["status"]


def test_send_email_false_closes_the_document_without_completion_emails(
    service: Runtime, signed_document: dict[str, Any], mailbox: Mailbox, database_url: str
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE recipient SET signing_status = 'SIGNED', signed_at = now() WHERE role <> 'CC'")
        conn.execute("UPDATE field SET inserted = true, custom_text = 'signed elsewhere'")
    jobs.trigger("internal.seal-document", {"documentId": signed_document["id"], "sendEmail": False})
    settle(service)
    assert "COMPLETED" == rows(database_url, "SELECT status FROM document")[0]["status"]
    assert not [m for m in mailbox.messages if m["Subject"] == "Signing Complete!"]
    assert [] == rows(
        database_url, "SELECT * FROM background_job WHERE actor = 'send.document.completed.emails'"
    )


# What each document gets wrong, and how the refusal names it (after "document <envelope id>: ").
def defects() -> dict[str, tuple[bytes, str, str]]:
    """Each defect: the document, the change to its field, the reason. Built when run (a 1 GiB bomb)."""
    return {
        "password": (password_protected_pdf(2), "", "the PDF is protected by a password; upload it without one"),
        "bomb": (deflate_bomb_pdf(GIB), "", "its streams inflate to more than 256 MiB (a decompression bomb?)"),
        "page 0": (ORIGINAL, "page = 0", "field {field} is on page 0; the PDF has pages 1 to 2"),
        "page -1": (ORIGINAL, "page = -1", "field {field} is on page -1; the PDF has pages 1 to 2"),
        "NaN": (ORIGINAL, "position_x = 'NaN'", "field {field}: position_x is NaN, not a percentage from 0 to 100"),
        "image": (ORIGINAL, "signature_image = 'not an image'",
                  "field {field}: the signature image is not a PNG, JPEG, GIF, WEBP image"),
    }  # fmt: skip


def test_a_document_sealing_refuses_fails_at_once_with_its_reason_and_nothing_written(
    service: Runtime, database_url: str
) -> None:
    cases = defects()
    flows = Flows()
    owner = flows.create_user("olivia@example.com", "Olivia Owner")
    documents = {}
    for defect, (original, _, _) in cases.items():
        document = flows.create_document(
            owner["id"], f"Tenancy ({defect})", original,
            [RecipientSpec("alice@example.com", "Alice"), RecipientSpec("carol@example.com", "Carol", role="CC")],
            [FieldSpec(recipient=0, type="SIGNATURE")],
        )  # fmt: skip
        flows.send_document(document["id"])
        documents[defect] = document
    settle(service)
    with psycopg.connect(database_url, autocommit=True) as conn:
        # The reference service's schema checks none of these; documents written by it may hold them.
        conn.execute(
            "ALTER TABLE field DROP CONSTRAINT field_page_check, DROP CONSTRAINT field_position_x_check"
        )
        conn.execute("UPDATE recipient SET signing_status = 'SIGNED', signed_at = now() WHERE role <> 'CC'")
        conn.execute("UPDATE field SET inserted = true, custom_text = 'Alice', typed_signature = 'Alice'")
        for defect, (_, change, _) in cases.items():
            if change:
                conn.execute(
                    f"UPDATE field SET {change} WHERE document_id = %s".encode(), (documents[defect]["id"],)
                )
    data_rows = len(rows(database_url, "SELECT id FROM document_data"))
    jobs_of = {defect: jobs.trigger("internal.seal-document", {"documentId": document["id"]}).message_id
               for defect, document in documents.items()}  # fmt: skip
    settle(service)
    for defect, document in documents.items():
        (job,) = rows(database_url, "SELECT * FROM background_job WHERE id = %s", jobs_of[defect])
        (field,) = rows(database_url, "SELECT id FROM field WHERE document_id = %s", document["id"])
        reason = cases[defect][2].format(field=field["id"])
        assert ("FAILED", 1) == (job["status"], job["attempts"]), defect
        assert (
            f"DocumentRefused: document {document['envelope_id']}: {reason}"
            == job["last_error"].splitlines()[0]
        )
        (after,) = rows(database_url, "SELECT * FROM document WHERE id = %s", document["id"])
        assert ("PENDING", after["original_data_id"]) == (after["status"], after["current_data_id"]), defect
        statuses = rows(database_url, "SELECT role, signing_status FROM recipient WHERE document_id = %s ORDER BY id",
                        document["id"])  # fmt: skip
        assert [("SIGNER", "SIGNED"), ("CC", "NOT_SIGNED")] == [
            (r["role"], r["signing_status"]) for r in statuses
        ]
    assert data_rows == len(rows(database_url, "SELECT id FROM document_data"))
    assert [] == rows(database_url, "SELECT id FROM audit_log WHERE type = 'DOCUMENT_COMPLETED'")
