"""Seal a document: fields, rejection stamp, certificate and audit pages, flattening, PAdES signature.

The steps, on the original PDF (resealing starts from it again, so sealing twice
gives the same content):

0. The document is checked before anything is drawn (``refusal``): a PDF that
   opens without a password, streams that do not inflate past a bound
   (``streams``), pages with usable boxes, every inserted field on a page of the
   PDF with a finite position and size and a signature image that decodes under a
   pixel bound (``fields``, ``images``). What fails is refused (``DocumentRefused``,
   not retried), naming the document and the field; nothing is written.
1. Pages shown rotated are turned into unrotated pages, so that field percentages
   (measured on the page as the signer saw it) map straight onto the page box.
2. One overlay page per document page draws its inserted fields and, for a
   rejected document, the "DOCUMENT REJECTED" stamp; it is laid over the page
   without decoding the page's own content.
3. The signing certificate (naming the original by its SHA-256) and the audit log
   are appended at the last page's size.
4. Forms and annotations are flattened into the page content; the original's
   streams are written out as they came, never decoded. The file's metadata names
   the document's title, its owner as author, a subject saying how many recipients
   it had and when it was completed, and docjobs as creator and producer.
5. The whole file is signed with a PAdES (``ETSI.CAdES.detached``) signature, with
   an RFC 3161 timestamp when a timestamp authority is configured.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import pikepdf
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields as sig_fields
from pyhanko.sign import signers, timestamps
from reportlab.lib.colors import Color
from reportlab.pdfgen.canvas import Canvas

from docjobs.pdf import fonts, streams
from docjobs.pdf.audit_text import utc_time
from docjobs.pdf.fields import PlacedField, check_fields, draw_field
from docjobs.pdf.identity import SigningIdentity
from docjobs.pdf.refusal import DocumentRefused, detail, document_label, refusing
from docjobs.pdf.sidecar import Original, audit_log_pdf, certificate_pdf

Row = Mapping[str, Any]
REASON = "Signed by Documenso"
STAMP_TEXT = "DOCUMENT REJECTED"
STAMP_RED = Color(0.86, 0.15, 0.15)


@dataclass(frozen=True)
class SealInput:
    """Everything that goes into a sealed PDF."""

    original: bytes
    document: Row
    recipients: Sequence[Row]
    fields: Sequence[Row]
    audit_logs: Sequence[Row]
    rejected: bool


@dataclass(frozen=True)
class SignatureSettings:
    """How the signature reads."""

    location: str
    contact_info: str | None = None
    timestamp_authorities: Sequence[str] = ()
    legacy_subfilter: bool = False


def seal_pdf(source: SealInput, identity: SigningIdentity, settings: SignatureSettings) -> bytes:
    """The sealed, signed PDF.

    Raises:
        DocumentRefused: The document cannot be sealed as it is (see the module's
            step 0); the reason names it. Another attempt cannot help.
        Exception: The timestamp authority failed; another attempt may succeed.
    """
    document = document_label(source.document)
    streams.limit_qpdf_decoders()
    with refusing(document):
        unsigned = _unsigned(source, document)
    return _sign(unsigned, identity, settings)


def _unsigned(source: SealInput, document: str) -> bytes:
    with _open(source.original, document) as pdf:
        streams.check_inflated_size(pdf, document)
        _check_pages(pdf, document)
        placed = check_fields(source.fields, len(pdf.pages), document)
        original = Original(hashlib.sha256(source.original).hexdigest(), len(source.original), len(pdf.pages))
        # Checked: from here on the document is only drawn on.
        for number, page in enumerate(pdf.pages, start=1):
            if _rotation(page, document, number):
                page.flatten_rotation()
        _overlay(pdf, placed, source.rejected)
        last = pikepdf.Rectangle(pdf.pages[-1].cropbox)
        size = (last.width, last.height)
        for extra in (
            certificate_pdf(source.document, original, source.recipients, placed, source.audit_logs, size),
            audit_log_pdf(source.document, source.recipients, source.audit_logs, size),
        ):
            with pikepdf.open(BytesIO(extra)) as appended:
                pdf.pages.extend(appended.pages)
        if "/AcroForm" in pdf.Root:
            pdf.generate_appearance_streams()
        pdf.flatten_annotations("all")
        if "/AcroForm" in pdf.Root:
            del pdf.Root["/AcroForm"]
        _describe(pdf, source.document, _subject(source))
        flat = BytesIO()
        # The original's streams are copied as they are: qpdf would otherwise inflate
        # (and deflate again) every stream not compressed with Flate.
        pdf.save(flat, compress_streams=True, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return flat.getvalue()


def producer() -> str:
    """``docjobs <version>``: the Creator and Producer the sealed file names."""
    return f"docjobs {_version()}"


@functools.cache
def _version() -> str:
    return importlib.metadata.version("docjobs")


def _subject(source: SealInput) -> str:
    """``Signed with docjobs: 3 recipients, completed 2026-12-06 16:38:48 UTC``.

    The time is the first completion's (a reseal does not move it); it is left out when the
    audit log holds no completion.
    """
    count = len(source.recipients)
    recipients = "1 recipient" if count == 1 else f"{count} recipients"
    completed = next((e for e in source.audit_logs if e["type"] == "DOCUMENT_COMPLETED"), None)
    if source.rejected:
        subject, closed = f"Rejected in docjobs: {recipients}", "closed"
    else:
        subject, closed = f"Signed with docjobs: {recipients}", "completed"
    return f"{subject}, {closed} {utc_time(completed['created_at'])}" if completed else subject


def _describe(pdf: pikepdf.Pdf, document: Row, subject: str) -> None:
    """Title (the document's), Author (its owner), Subject, Creator and Producer, in the info dict and XMP.

    pyHanko's signature keeps them (its incremental update appends "; pyHanko" to the Producer).
    """
    title = str(document["title"])
    author = str(document.get("owner_name") or document.get("owner_email") or "")
    values = {
        "/Title": title,
        "/Author": author,
        "/Subject": subject,
        "/Creator": producer(),
        "/Producer": producer(),
    }
    for key, value in values.items():
        if value:
            pdf.docinfo[key] = value
        elif key in pdf.docinfo:
            del pdf.docinfo[key]
    if "/Metadata" in pdf.Root:
        # A reader shows XMP over the info dictionary: the original's would still name its own title.
        with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as xmp:
            xmp["dc:title"] = title
            xmp["dc:creator"] = [author] if author else []
            xmp["dc:description"] = subject
            xmp["xmp:CreatorTool"] = producer()
            xmp["pdf:Producer"] = producer()


def _open(original: bytes, document: str) -> pikepdf.Pdf:
    try:
        return pikepdf.open(BytesIO(original))
    except pikepdf.PasswordError as exc:
        reason = "the PDF is protected by a password; upload it without one"
        raise DocumentRefused(f"{document}: {reason}") from exc
    except pikepdf.PdfError as exc:
        raise DocumentRefused(f"{document}: the PDF cannot be read ({detail(exc)})") from exc


def _check_pages(pdf: pikepdf.Pdf, document: str) -> None:
    """Refuse a PDF without pages, or with a page whose box or rotation is not usable."""
    if not len(pdf.pages):
        raise DocumentRefused(f"{document}: the PDF has no pages")
    for number, page in enumerate(pdf.pages, start=1):
        _rotation(page, document, number)
        try:
            box = pikepdf.Rectangle(page.cropbox)
        except (TypeError, ValueError) as exc:
            raise DocumentRefused(f"{document}: page {number} has no usable page box") from exc
        if not (math.isfinite(box.width) and math.isfinite(box.height) and box.width > 0 and box.height > 0):
            raise DocumentRefused(f"{document}: page {number} has an empty page box")


def _rotation(page: pikepdf.Page, document: str, number: int) -> int:
    value = page.obj.get("/Rotate", 0)
    try:
        rotation = int(value)
    except (TypeError, ValueError, ArithmeticError):
        rotation = None
    if rotation is None or isinstance(value, bool) or rotation != value:
        raise DocumentRefused(f"{document}: page {number} has a /Rotate that is not a whole number")
    return rotation % 360


def _overlay(pdf: pikepdf.Pdf, placed: Sequence[PlacedField], rejected: bool) -> None:
    by_page: dict[int, list[PlacedField]] = defaultdict(list)
    for field in placed:
        by_page[field.page].append(field)
    pages = range(1, len(pdf.pages) + 1) if rejected else sorted(by_page)
    if not pages:
        return
    fonts.register()
    drawn = BytesIO()
    canvas = Canvas(drawn)
    boxes = []
    for number in pages:
        box = pikepdf.Rectangle(pdf.pages[number - 1].cropbox)
        boxes.append(box)
        canvas.setPageSize((box.width, box.height))
        for field in by_page.get(number, ()):
            draw_field(canvas, field, box.width, box.height)
        if rejected:
            _stamp(canvas, box.width, box.height)
        canvas.showPage()
    canvas.save()
    with pikepdf.open(BytesIO(drawn.getvalue())) as overlay:
        for index, number in enumerate(pages):
            _lay_over(pdf.pages[number - 1], overlay.pages[index], boxes[index])


def _lay_over(page: pikepdf.Page, overlay: pikepdf.Page, box: pikepdf.Rectangle) -> None:
    """``page.add_overlay(overlay, box)``, leaving the page's own content streams as they are.

    pikepdf's ``add_overlay`` merges them into one stream, which qpdf then decodes
    whole into memory when saving: 1.1 GiB for a page whose 1 MB stream inflates to
    1 GiB. Here they are only wrapped: ``q`` before them, ``Q`` and the overlay after.
    """
    form = overlay.as_form_xobject()
    name = page.add_resource(form, pikepdf.Name.XObject)
    placement = page.calc_form_xobject_placement(form, name, box)
    page.contents_add(b"q\n", prepend=True)
    page.contents_add(b"\nQ\n" + placement)


def _stamp(canvas: Canvas, width: float, height: float) -> None:
    size = min(width, height) / 12
    text_width = canvas.stringWidth(STAMP_TEXT, fonts.TEXT_BOLD, size)
    canvas.saveState()
    canvas.translate(width / 2, height / 2)
    canvas.rotate(-30)
    canvas.setStrokeColor(STAMP_RED)
    canvas.setFillColor(STAMP_RED)
    canvas.setLineWidth(size / 8)
    pad = size * 0.4
    canvas.roundRect(
        -text_width / 2 - pad, -size * 0.45 - pad, text_width + 2 * pad, size * 1.1 + 2 * pad, pad
    )
    canvas.setFont(fonts.TEXT_BOLD, size)
    canvas.drawCentredString(0, -size * 0.35, STAMP_TEXT)
    canvas.restoreState()


def _sign(data: bytes, identity: SigningIdentity, settings: SignatureSettings) -> bytes:
    subfilter = (
        sig_fields.SigSeedSubFilter.ADOBE_PKCS7_DETACHED
        if settings.legacy_subfilter
        else sig_fields.SigSeedSubFilter.PADES
    )
    metadata = signers.PdfSignatureMetadata(
        field_name="Signature1",
        md_algorithm="sha256",
        reason=REASON,
        location=settings.location,
        contact_info=settings.contact_info,
        subfilter=subfilter,
    )
    timestamper = None
    if settings.timestamp_authorities:
        # As in the reference: one authority, picked at random, per signature.
        timestamper = timestamps.HTTPTimeStamper(random.choice(list(settings.timestamp_authorities)))
    writer = IncrementalPdfFileWriter(BytesIO(data))
    signed = signers.sign_pdf(writer, metadata, signer=identity.signer, timestamper=timestamper)
    return bytes(signed.getvalue())
