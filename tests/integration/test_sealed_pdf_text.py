"""The sealed PDF as a signer or a court reads it: its audit page, its certificate page, its metadata.

A real signing flow on the local provider; the sealed file's text is extracted with pypdf
and read as a person would. The appended pages are also drawn to PNG under
test-artifacts/pdf/ (with pypdfium2 or pdftoppm, when either is installed) for review.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import shutil
import subprocess
from datetime import UTC
from io import BytesIO
from pathlib import Path
from typing import Any

import pikepdf
import psycopg
import pypdf
import pytest
from docjobs_devkit.pdfs import sample_pdf
from docjobs_devkit.smtp import Mailbox

from docjobs import jobs
from docjobs.domain import FieldSpec, Flows, Metadata, RecipientSpec
from docjobs.runtime import Runtime

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "pdf"
RENDER_TIMEOUT_SECONDS = 60
VERSION = importlib.metadata.version("docjobs")

OWNER = ("Olivia Owner", "olivia@example.com")
ALICE = ("Alice Smith", "alice@example.com")
# Wider than the certificate's signer column at the body size: it must shrink, never split.
BART = ("Bartholomew Featherstonehaugh", "bartholomew.featherstonehaugh@example-corporation.co.uk")
CAROL = ("Carol Copy", "carol@example.com")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
WHO = Metadata(ip_address="203.0.113.7", user_agent=BROWSER)

UTC_TIME = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC"
# An audit event's line: its number in the log, its time to the millisecond, its sentence.
EVENT = re.compile(r"(\d+) (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}) UTC (.+)")
RAW_EVENT_NAME = re.compile(r"\b[A-Z]+(?:_[A-Z]+)+\b")
PYTHON_SPELLING = re.compile(r"\b(?:True|False|None)\b")

pytestmark = pytest.mark.parametrize("service", ["local"], indirect=True)


def original_pdf() -> bytes:
    """Two pages whose own metadata (info dictionary and XMP) names a stale title and author."""
    with pikepdf.open(BytesIO(sample_pdf(2, title="Lease"))) as pdf:
        pdf.docinfo["/Author"] = "scanner"
        with pdf.open_metadata() as xmp:
            xmp["dc:title"] = "Draft lease (old)"
            xmp["dc:creator"] = ["scanner"]
        output = BytesIO()
        pdf.save(output)
    return output.getvalue()


def person(who: tuple[str, str]) -> str:
    return f"{who[0]} <{who[1]}>"


def settle(service: Runtime) -> None:
    service.join(timeout_seconds=60)


def sealed_pdf(url: str, document_id: int, column: str = "current_data_id") -> bytes:
    """The document's sealed PDF (or, with ``original_data_id``, the PDF as uploaded)."""
    assert column in ("current_data_id", "original_data_id")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f"SELECT d.data FROM document_data d JOIN document doc ON doc.{column} = d.id WHERE doc.id = %s",
            (document_id,),
        ).fetchone()
    assert row is not None
    return bytes(row[0])


def events(lines: list[str]) -> list[tuple[int, str, str]]:
    """The audit pages' events as (number, time to the millisecond, all their text on one line).

    An event runs from its numbered line to the next one (or the page's footer): its
    sentence and the lines below it (where it came from, the emails it announces).
    """
    found: list[tuple[int, str, str]] = []
    for line in lines:
        if (match := EVENT.fullmatch(line)) is not None:
            found.append((int(match[1]), match[2], match[3]))
        elif found and not line.startswith("Audit Log, page "):
            number, time, text = found[-1]
            found[-1] = (number, time, f"{text} {line}")
    return found


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(BytesIO(pdf)).pages]


def lines_of(text: str) -> list[str]:
    # pypdf spaces words unevenly (indents, aligned columns); one-space joins keep each line's words.
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def render(pdf: bytes, name: str, first_page: int) -> list[Path]:
    """Draw pages ``first_page``.. (1-based) to PNG, if a renderer is installed; the files written.

    The PDF itself and its pages' text, as pypdf extracts it, are written beside them.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    source = ARTIFACTS / f"{name}.pdf"
    source.write_bytes(pdf)
    (ARTIFACTS / f"{name}.txt").write_text("\n\f\n".join(page_texts(pdf)[first_page - 1 :]))
    try:
        import pypdfium2  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        pypdfium2 = None
    if pypdfium2 is not None:
        document = pypdfium2.PdfDocument(pdf)
        written = []
        for index in range(first_page - 1, len(document)):
            path = ARTIFACTS / f"{name}-page{index + 1}.png"
            document[index].render(scale=2).to_pil().save(path)
            written.append(path)
        return written
    if shutil.which("pdftoppm"):
        prefix = ARTIFACTS / name
        subprocess.run(
            ["pdftoppm", "-png", "-r", "144", "-f", str(first_page), str(source), str(prefix)],
            check=True,
            timeout=RENDER_TIMEOUT_SECONDS,
        )
        return sorted(ARTIFACTS.glob(f"{name}-*.png"))
    return []  # no renderer on this machine: the text assertions still stand


def sign_lease(service: Runtime) -> dict[str, Any]:
    """Olivia sends a two-page lease to Alice and Bartholomew, Carol in copy; both open and sign."""
    flows = Flows()
    owner = flows.create_user(OWNER[1], OWNER[0])
    document = flows.create_document(
        owner["id"],
        "Lease of 12 Harbour Street",
        original_pdf(),
        [
            RecipientSpec(ALICE[1], ALICE[0]),
            RecipientSpec(BART[1], BART[0]),
            RecipientSpec(CAROL[1], CAROL[0], role="CC"),
        ],
        [FieldSpec(recipient=0, type="SIGNATURE"), FieldSpec(recipient=1, type="SIGNATURE", page=2)],
        metadata=WHO,
    )
    flows.send_document(document["id"], WHO)
    settle(service)
    with service.require_database().connection() as conn:
        fields = {f["recipient_id"]: f["id"] for f in flows.store.fields(conn, document["id"])}
    for recipient in flows.recipients(document["id"]):
        if recipient["role"] != "CC":
            flows.open_document(recipient["token"], WHO)
            flows.sign(recipient["token"], {fields[recipient["id"]]: recipient["name"]}, WHO)
    settle(service)
    return document


@pytest.fixture
def lease(service: Runtime, database_url: str) -> tuple[dict[str, Any], bytes]:
    """The lease, signed and sealed, and its sealed PDF."""
    document = sign_lease(service)
    return document, sealed_pdf(database_url, document["id"])


def test_the_audit_page_reads_as_sentences_with_names_utc_times_and_the_completion_emails(
    lease: tuple[dict[str, Any], bytes],
) -> None:
    _, pdf = lease
    texts = page_texts(pdf)
    render(pdf, "sealed-lease", first_page=3)
    audit = "\n".join(texts[3:])  # after two pages and the certificate
    lines = lines_of(audit)
    assert "Audit Log" == lines[0]
    assert [] == RAW_EVENT_NAME.findall(audit)
    assert [] == PYTHON_SPELLING.findall(audit)
    assert not re.search(r"\buser \d+\b", audit)
    # One line per event: its number, its time (UTC), then who did what.
    texts = [text for _, _, text in events(lines)]
    for sentence in (
        f"{person(OWNER)} created the document.",
        f"{person(OWNER)} sent the document for signing.",
        f"The request to sign was emailed to {person(ALICE)}.",
        f"{person(ALICE)} opened the document.",
        f"{person(ALICE)} signed the document.",
        "Every recipient has signed: the document is complete.",
    ):
        assert 1 == sum(text.startswith(sentence) for text in texts), sentence
    # The completion entry's announced emails are sentences of that entry, below it.
    (complete,) = [text for text in texts if text.startswith("Every recipient has signed")]
    for who, role in ((OWNER, "owner"), (ALICE, "signer"), (CAROL, "CC")):
        assert f"The completed document is to be emailed to {person(who)} ({role})." in complete, role
    # A long address moves to its own line or shrinks; it is never cut.
    assert 4 == sum(BART[1] in line for line in lines)  # invited, opened, signed, completion email
    for _, email in (OWNER, ALICE, BART, CAROL):
        local_part = email.split("@")[0]
        assert all(email in line for line in lines if local_part in line), email
    # Where a person's act came from, below it.
    assert f"{person(ALICE)} signed the document. From IP address 203.0.113.7 using {BROWSER}" in texts


def test_the_certificate_shows_a_cc_as_receiving_a_copy_and_signers_with_their_events(
    lease: tuple[dict[str, Any], bytes],
) -> None:
    _, pdf = lease
    certificate = page_texts(pdf)[2]
    lines = lines_of(certificate)
    assert "Signing Certificate" == lines[0]
    assert "Sent: -" not in certificate and "-" not in lines
    assert [] == PYTHON_SPELLING.findall(certificate)
    carol = " ".join(certificate[certificate.index(CAROL[1]) :].split())
    assert "Role: CC" in carol
    assert "Receives a copy of the completed document by email." in carol
    for _, email in (ALICE, BART, CAROL):
        assert any(email in line for line in lines), email
    assert 2 == len(re.findall(f"Signed: {UTC_TIME}", certificate))


def test_a_reseal_shows_the_completion_emails_that_went_out_and_when(
    service: Runtime, lease: tuple[dict[str, Any], bytes], mailbox: Mailbox, database_url: str
) -> None:
    document, _ = lease
    assert 4 == len([m for m in mailbox.messages if m["Subject"] == "Signing Complete!"])
    jobs.trigger("internal.seal-document", {"documentId": document["id"], "isResealing": True})
    settle(service)
    resealed = sealed_pdf(database_url, document["id"])
    render(resealed, "resealed-lease", first_page=3)
    texts = page_texts(resealed)
    certificate, audit = texts[2], "\n".join(texts[3:])
    carol = " ".join(certificate[certificate.index(CAROL[1]) :].split())
    assert re.search(f"Completed document emailed: {UTC_TIME}", carol)
    lines = lines_of(audit)
    for who, role in ((OWNER, "owner"), (ALICE, "signer"), (CAROL, "CC")):
        sentence = f"The completed document was emailed to {person(who)} ({role})."
        assert 1 == [text for _, _, text in events(lines)].count(sentence), sentence
    # Emails sent after the first seal, in the order their jobs ran.
    assert any(line.endswith(f"{person(OWNER)} was emailed that {ALICE[0]} signed.") for line in lines)
    # The first seal's entry announced the four completion emails; the second seal sends none.
    assert 4 == sum("is to be emailed to" in line for line in lines)


def test_the_sealed_file_names_its_title_owner_and_producer_after_the_signature(
    lease: tuple[dict[str, Any], bytes],
) -> None:
    _, pdf = lease
    reader = pypdf.PdfReader(BytesIO(pdf))
    assert reader.metadata is not None
    assert "Lease of 12 Harbour Street" == reader.metadata.title
    assert "Olivia Owner" == reader.metadata.author
    assert f"docjobs {VERSION}" == reader.metadata.creator
    assert (reader.metadata.producer or "").startswith(f"docjobs {VERSION}")
    assert b"/ByteRange" in pdf[pdf.rindex(b"%%EOF", 0, -10) :]  # read after the signature's update
    with pikepdf.open(BytesIO(pdf)) as opened:
        xmp = opened.open_metadata()  # what most readers show first
        assert "Lease of 12 Harbour Street" == xmp["dc:title"]
        assert ["Olivia Owner"] == list(xmp["dc:creator"])
        assert f"docjobs {VERSION}" == xmp["xmp:CreatorTool"]


def test_the_sealed_file_names_its_recipients_and_completion_time_as_its_subject(
    lease: tuple[dict[str, Any], bytes],
) -> None:
    _, pdf = lease
    reader = pypdf.PdfReader(BytesIO(pdf))  # read after the signature's update
    assert reader.metadata is not None
    subject = reader.metadata.subject or ""
    assert re.fullmatch(f"Signed with docjobs: 3 recipients, completed {UTC_TIME}", subject), subject
    # The completion's time, as the audit log gives it.
    audit = lines_of("\n".join(page_texts(pdf)[3:]))
    (completed,) = [time for _, time, text in events(audit) if "the document is complete." in text]
    assert subject.endswith(f"completed {completed[: len('0000-00-00 00:00:00')]} UTC")
    with pikepdf.open(BytesIO(pdf)) as opened:
        assert subject == str(opened.open_metadata()["dc:description"])


def test_the_certificate_names_the_original_file_by_its_sha256(
    lease: tuple[dict[str, Any], bytes], database_url: str
) -> None:
    document, pdf = lease
    original = sealed_pdf(database_url, document["id"], column="original_data_id")
    lines = lines_of(page_texts(pdf)[2])
    said = " ".join(lines)
    assert (
        f"Original document: the PDF file as uploaded, before any field was filled in "
        f"({len(original):,} bytes, 2 pages). Its SHA-256 fingerprint:"
    ) in said
    assert hashlib.sha256(original).hexdigest() in lines  # on a line of its own, never cut
    assert "that document with its fields filled in (the first 2 pages), then this certificate" in said
    assert hashlib.sha256(pdf).hexdigest() not in said


def test_audit_events_are_numbered_in_order_with_times_to_the_millisecond_the_certificate_cites(
    lease: tuple[dict[str, Any], bytes], database_url: str
) -> None:
    document, pdf = lease
    texts = page_texts(pdf)
    found = events(lines_of("\n".join(texts[3:])))
    assert list(range(1, len(found) + 1)) == [number for number, _, _ in found]
    times = [time for _, time, _ in found]
    assert sorted(times) == times
    with psycopg.connect(database_url) as conn:
        recorded = {
            f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}.{at.microsecond // 1000:03d}"
            for (at,) in conn.execute(
                "SELECT created_at FROM audit_log WHERE document_id = %s", (document["id"],)
            )
        }
    assert set(times[:-1]) <= recorded  # the last is the seal's own entry, timed as it sealed
    # The certificate's times name the event they come from, and the log's event says the same.
    certificate = " ".join(lines_of(texts[2]))
    by_number = {number: text for number, _, text in found}
    cited = re.findall(rf"Signed: {UTC_TIME} \(event (\d+)\)", certificate)
    assert 2 == len(cited)
    assert [f"{person(ALICE)} signed the document.", f"{person(BART)} signed the document."] == sorted(
        by_number[int(number)].split(" From IP address")[0] for number in cited
    )


def test_each_appended_page_names_its_section_and_its_page(lease: tuple[dict[str, Any], bytes]) -> None:
    _, pdf = lease
    texts = page_texts(pdf)
    assert 4 == len(texts)
    assert "Signing Certificate, page 1 of 1" == lines_of(texts[2])[-1]
    assert "Audit Log, page 1 of 1" == lines_of(texts[3])[-1]


def test_the_creation_shows_where_the_owners_request_came_from(lease: tuple[dict[str, Any], bytes]) -> None:
    _, pdf = lease
    lines = lines_of("\n".join(page_texts(pdf)[3:]))
    created = next(
        i for i, line in enumerate(lines) if line.endswith(f"{person(OWNER)} created the document.")
    )
    # The line below it (the browser may wrap onto the next).
    assert lines[created + 1].startswith("From IP address 203.0.113.7 using Mozilla/5.0"), lines[created + 1]
    assert f"From IP address 203.0.113.7 using {BROWSER}" in " ".join(lines[created + 1 : created + 3])
