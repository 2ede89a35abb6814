"""The appended pages over many pages, and the sealed file's subject when a document is rejected."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pypdf
from docjobs_devkit.pdfs import sample_pdf
from reportlab.lib.pagesizes import A4

from docjobs.pdf.identity import identity_from_pkcs12, write_development_certificate
from docjobs.pdf.seal import SealInput, SignatureSettings, seal_pdf
from docjobs.pdf.sidecar import audit_log_pdf

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DOCUMENT = {"title": "Lease", "envelope_id": "envelope_abc", "owner_id": 3, "owner_name": "Olivia Owner",
            "owner_email": "olivia@example.com"}  # fmt: skip
ALICE = {"id": 1, "name": "Alice", "email": "alice@example.com", "role": "SIGNER", "sent_at": START,
         "rejection_reason": "Not this year."}  # fmt: skip
CAROL = {"id": 2, "name": "Carol", "email": "carol@example.com", "role": "CC", "sent_at": None,
         "rejection_reason": None}  # fmt: skip


def entry(kind: str, at: datetime, **data: Any) -> dict[str, Any]:
    return {"type": kind, "data": {"recipientId": 1, **data}, "created_at": at, "user_id": None, "email": None,
            "name": None, "ip_address": None, "user_agent": None}  # fmt: skip


def test_a_long_audit_log_numbers_its_events_and_its_pages() -> None:
    # 150 emails within one second, some in the same millisecond: the numbers order them.
    entries = [entry("EMAIL_SENT", START + timedelta(microseconds=4000 * (i // 3))) for i in range(150)]
    pages = [
        page.extract_text()
        for page in pypdf.PdfReader(BytesIO(audit_log_pdf(DOCUMENT, [ALICE], entries, A4))).pages
    ]
    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        assert f"Audit Log, page {number} of {len(pages)}" == text.splitlines()[-1].strip()
    stamps = re.findall(
        r"^\s*(\d+) (2026-11-28 12:00:00\.\d{3}) UTC An email was sent", "\n".join(pages), re.M
    )
    assert list(range(1, 151)) == [int(number) for number, _ in stamps]
    assert ("1", "2026-11-28 12:00:00.000") == stamps[0]
    assert ("150", "2026-11-28 12:00:00.196") == stamps[-1]


def test_a_rejected_document_says_so_in_its_subject(tmp_path: Path) -> None:
    write_development_certificate(tmp_path / "cert.p12")
    identity = identity_from_pkcs12((tmp_path / "cert.p12").read_bytes(), None, source="test")
    closed = START + timedelta(minutes=5, milliseconds=250)
    audit = [
        entry("DOCUMENT_RECIPIENT_REJECTED", START, reason="Not this year."),
        entry("DOCUMENT_COMPLETED", closed, isRejected=True, rejectionReason="Not this year."),
    ]
    source = SealInput(sample_pdf(1), DOCUMENT, [ALICE, CAROL], [], audit, rejected=True)
    sealed = seal_pdf(source, identity, SignatureSettings(location="https://sign.example.com"))
    metadata = pypdf.PdfReader(BytesIO(sealed)).metadata
    assert metadata is not None
    assert "Rejected in docjobs: 2 recipients, closed 2026-11-28 12:05:00 UTC" == metadata.subject
