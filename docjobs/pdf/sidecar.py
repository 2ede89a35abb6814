"""The pages appended to a sealed document: the signing certificate and the audit log.

Both are laid out at the size of the document's last page and flow onto as many
pages as they need. The certificate shows each recipient with their signature
and the times, IP addresses and user agents of their sent, opened and signed
events (from the audit log); the audit log lists every entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from PIL.Image import Image
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import ImageReader
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from docjobs.pdf import fonts
from docjobs.pdf.fields import SIGNATURE_TYPES, PlacedField

Row = Mapping[str, Any]
MARGIN_RATIO = 0.06


def _styles(width: float) -> dict[str, ParagraphStyle]:
    scale = max(min(width / 595.0, 1.6), 0.6)  # A4 width as the reference size
    body = ParagraphStyle("body", fontName=fonts.TEXT, fontSize=8 * scale, leading=10 * scale)
    return {
        "title": ParagraphStyle("title", fontName=fonts.TEXT_BOLD, fontSize=16 * scale, leading=20 * scale),
        "body": body,
        "head": ParagraphStyle("head", parent=body, fontName=fonts.TEXT_BOLD),
        "signature": ParagraphStyle("signature", parent=body, fontName=fonts.SIGNATURE, fontSize=16 * scale,
                                    leading=18 * scale),
    }  # fmt: skip


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _p(text: object, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(str(text)).replace("\n", "<br/>"), style)


def _table(rows: list[list[Any]], widths: list[float]) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle([
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
            ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.lightgrey),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ])
    )  # fmt: skip
    return table


def _build(story: list[Flowable], size: tuple[float, float]) -> bytes:
    output = BytesIO()
    margin = min(size) * MARGIN_RATIO
    SimpleDocTemplate(
        output, pagesize=size, leftMargin=margin, rightMargin=margin, topMargin=margin, bottomMargin=margin
    ).build(story)
    return output.getvalue()


def certificate_pdf(
    document: Row,
    recipients: Sequence[Row],
    fields: Sequence[PlacedField],
    audit_logs: Sequence[Row],
    size: tuple[float, float],
) -> bytes:
    """The signing certificate: one row per recipient, with the first signature of theirs in ``fields``."""
    fonts.register()
    styles = _styles(size[0])
    usable = size[0] * (1 - 2 * MARGIN_RATIO)
    rows: list[list[Any]] = [[_p(h, styles["head"]) for h in ("Signer", "Signature", "Events")]]
    for recipient in recipients:
        events = _events(recipient, audit_logs)
        rows.append([
            _p(f"{recipient['name'] or '-'}\n{recipient['email']}\nRole: {recipient['role'].title()}",
               styles["body"]),
            _signature(recipient, fields, styles["signature"], usable * 0.3),
            _p("\n".join(events), styles["body"]),
        ])  # fmt: skip
    story: list[Flowable] = [
        _p("Signing Certificate", styles["title"]),
        _p(f"{document['title']} ({document['envelope_id']})", styles["body"]),
        Spacer(1, 12),
        _table(rows, [usable * 0.3, usable * 0.3, usable * 0.4]),
    ]
    return _build(story, size)


def audit_log_pdf(document: Row, audit_logs: Sequence[Row], size: tuple[float, float]) -> bytes:
    """The audit log: every entry, oldest first."""
    fonts.register()
    styles = _styles(size[0])
    usable = size[0] * (1 - 2 * MARGIN_RATIO)
    rows: list[list[Any]] = [[_p(h, styles["head"]) for h in ("Time", "Event", "By", "Details")]]
    for entry in audit_logs:
        who = entry["name"] or entry["email"] or (f"user {entry['user_id']}" if entry["user_id"] else "-")
        client = " · ".join(part for part in (entry["ip_address"], entry["user_agent"]) if part)
        details = ", ".join(
            f"{key}: {value}" for key, value in sorted(entry["data"].items()) if value is not None
        )
        rows.append([
            _p(_when(entry["created_at"]), styles["body"]),
            _p(entry["type"], styles["body"]),
            _p(f"{who}\n{client}" if client else who, styles["body"]),
            _p(details or "-", styles["body"]),
        ])  # fmt: skip
    story: list[Flowable] = [
        _p("Audit Log", styles["title"]),
        _p(f"{document['title']} ({document['envelope_id']})", styles["body"]),
        Spacer(1, 12),
        _table(rows, [usable * 0.17, usable * 0.33, usable * 0.22, usable * 0.28]),
    ]
    return _build(story, size)


def _events(recipient: Row, audit_logs: Sequence[Row]) -> list[str]:
    lines = [f"Sent: {_when(recipient['sent_at'])}"]
    for label, kind in (("Opened", "DOCUMENT_OPENED"), ("Signed", "DOCUMENT_RECIPIENT_COMPLETED"),
                        ("Rejected", "DOCUMENT_RECIPIENT_REJECTED")):  # fmt: skip
        entry = next(
            (e for e in audit_logs if e["type"] == kind and e["data"].get("recipientId") == recipient["id"]),
            None,
        )
        if entry is not None:
            lines.append(f"{label}: {_when(entry['created_at'])}")
            if entry["ip_address"]:
                lines.append(f"IP address: {entry['ip_address']}")
            if entry["user_agent"]:
                lines.append(f"User agent: {entry['user_agent']}")
    if recipient["rejection_reason"]:
        lines.append(f"Reason: {recipient['rejection_reason']}")
    return lines


def _signature(
    recipient: Row, fields: Sequence[PlacedField], style: ParagraphStyle, width: float
) -> Flowable:
    signature = next(
        (f for f in fields if f.row["recipient_id"] == recipient["id"] and f.row["type"] in SIGNATURE_TYPES),
        None,
    )
    if signature is None:
        return _p("-", style)
    if signature.image is not None:
        return _Picture(signature.image, width, width / 3)
    text = signature.row["typed_signature"] or signature.row["custom_text"] or ""
    return Paragraph(
        escape(text), ParagraphStyle("sig", parent=style, fontName=fonts.signature_font_for(text))
    )


class _Picture(Flowable):  # type: ignore[misc]  # reportlab has no type hints
    """A decoded image, as large as fits ``width`` x ``height`` in its proportions, centred.

    reportlab's own ``Image`` flowable only takes a file, which it would decode again.
    """

    def __init__(self, image: Image, width: float, height: float) -> None:
        super().__init__()
        scale = min(width / image.width, height / image.height)
        self.width, self.height = image.width * scale, image.height * scale
        self.hAlign = "CENTER"
        self._reader = ImageReader(image)

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        self.canv.drawImage(self._reader, 0, 0, self.width, self.height, mask="auto")
