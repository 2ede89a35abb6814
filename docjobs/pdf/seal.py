"""Seal a document: fields, rejection stamp, certificate and audit pages, flattening, PAdES signature.

The steps, on the original PDF (resealing starts from it again, so sealing twice
gives the same content):

1. Pages shown rotated are turned into unrotated pages, so that field percentages
   (measured on the page as the signer saw it) map straight onto the page box.
2. One overlay page per document page draws its inserted fields and, for a
   rejected document, the "DOCUMENT REJECTED" stamp.
3. The signing certificate and the audit log are appended at the last page's size.
4. Forms and annotations are flattened into the page content.
5. The whole file is signed with a PAdES (``ETSI.CAdES.detached``) signature, with
   an RFC 3161 timestamp when a timestamp authority is configured.
"""

from __future__ import annotations

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

from docjobs import errors
from docjobs.pdf import fonts
from docjobs.pdf.fields import draw_field
from docjobs.pdf.identity import SigningIdentity
from docjobs.pdf.sidecar import audit_log_pdf, certificate_pdf

Row = Mapping[str, Any]
REASON = "Signed by Documenso"
STAMP_TEXT = "DOCUMENT REJECTED"
STAMP_RED = Color(0.86, 0.15, 0.15)


class SealingError(errors.NotRetryable):
    """The document's data cannot be sealed (a damaged PDF, a field off the document)."""


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
        SealingError: The original is not a readable PDF, or a field lies off it.
    """
    try:
        pdf = pikepdf.open(BytesIO(source.original))
    except pikepdf.PdfError as exc:
        raise SealingError(f"the original PDF cannot be read: {exc}") from exc
    with pdf:
        for page in pdf.pages:
            if int(page.obj.get("/Rotate", 0)) % 360:
                page.flatten_rotation()
        _overlay(pdf, source)
        last = pdf.pages[-1].cropbox
        size = (float(last[2]) - float(last[0]), float(last[3]) - float(last[1]))
        for extra in (
            certificate_pdf(source.document, source.recipients, source.fields, source.audit_logs, size),
            audit_log_pdf(source.document, source.audit_logs, size),
        ):
            with pikepdf.open(BytesIO(extra)) as appended:
                pdf.pages.extend(appended.pages)
        if "/AcroForm" in pdf.Root:
            pdf.generate_appearance_streams()
        pdf.flatten_annotations("all")
        if "/AcroForm" in pdf.Root:
            del pdf.Root["/AcroForm"]
        flat = BytesIO()
        pdf.save(flat, compress_streams=True)
    return _sign(flat.getvalue(), identity, settings)


def _overlay(pdf: pikepdf.Pdf, source: SealInput) -> None:
    by_page: dict[int, list[Row]] = defaultdict(list)
    for field in source.fields:
        if field["inserted"]:
            by_page[int(field["page"])].append(field)
    if by_page and max(by_page) > len(pdf.pages):
        raise SealingError(f"a field is on page {max(by_page)} of a {len(pdf.pages)}-page document")
    pages = range(1, len(pdf.pages) + 1) if source.rejected else sorted(by_page)
    if not pages:
        return
    fonts.register()
    drawn = BytesIO()
    canvas = Canvas(drawn)
    sizes = []
    for number in pages:
        box = pdf.pages[number - 1].cropbox
        width, height = float(box[2]) - float(box[0]), float(box[3]) - float(box[1])
        sizes.append(box)
        canvas.setPageSize((width, height))
        for field in by_page.get(number, ()):
            draw_field(canvas, field, width, height)
        if source.rejected:
            _stamp(canvas, width, height)
        canvas.showPage()
    canvas.save()
    with pikepdf.open(BytesIO(drawn.getvalue())) as overlay:
        for index, number in enumerate(pages):
            pdf.pages[number - 1].add_overlay(
                overlay.pages[index], pikepdf.Rectangle(*[float(v) for v in sizes[index]])
            )


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
