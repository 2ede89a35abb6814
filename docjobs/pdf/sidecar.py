"""The pages appended to a sealed document: the signing certificate and the audit log.

Both are laid out at the size of the document's last page and flow onto as many
pages as they need, for a signer or a court to read. The certificate shows each
recipient with their role, their signature and the times, IP addresses and user
agents of their sent, opened and signed events (from the audit log); a CC recipient
is shown as receiving a copy of the completed document. The audit log gives one
line per event: its time in UTC and a sentence saying who did what
(``audit_text``).

Text wraps only at spaces: a word or an email address never splits across lines.
One too wide for its column is drawn smaller until it fits.
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
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from docjobs.pdf import fonts
from docjobs.pdf.audit_text import FINISHED_VERB, audit_lines, role_name, utc_time
from docjobs.pdf.fields import SIGNATURE_TYPES, PlacedField

Row = Mapping[str, Any]
MARGIN_RATIO = 0.06
#: Padding inside a certificate cell, in points, on each side.
CELL_PADDING = 4.0
#: A word is fitted to this share of its line, so rounding never pushes it over.
FIT_RATIO = 0.98
#: The certificate's columns: signer, signature, events (shares of the usable width).
CERTIFICATE_COLUMNS = (0.32, 0.22, 0.46)
DETAIL_GREY = colors.Color(0.35, 0.35, 0.35)
#: Any time: all are as wide (the time column's width is measured on it).
EXAMPLE_TIME = datetime(2000, 1, 1, tzinfo=UTC)


def _styles(width: float) -> dict[str, ParagraphStyle]:
    scale = max(min(width / 595.0, 1.6), 0.6)  # A4 width as the reference size
    # splitLongWords=0: reportlab would otherwise cut a word (an email address) wider than its line.
    body = ParagraphStyle(
        "body", fontName=fonts.TEXT, fontSize=8 * scale, leading=10 * scale, splitLongWords=0
    )
    return {
        "title": ParagraphStyle("title", parent=body, fontName=fonts.TEXT_BOLD, fontSize=16 * scale,
                                leading=20 * scale),
        "body": body,
        "head": ParagraphStyle("head", parent=body, fontName=fonts.TEXT_BOLD),
        "detail": ParagraphStyle("detail", parent=body, fontSize=7 * scale, leading=9 * scale,
                                 textColor=DETAIL_GREY),
        "signature": ParagraphStyle("signature", parent=body, fontName=fonts.SIGNATURE, fontSize=16 * scale,
                                    leading=18 * scale),
    }  # fmt: skip


def _fitted(text: str, font: str, size: float, width: float) -> str:
    """``text`` as paragraph markup, each word too wide for ``width`` set smaller until it fits."""
    lines = []
    for line in text.split("\n"):
        words = []
        for word in line.split():
            word_width = stringWidth(word, font, size)
            if word_width > width * FIT_RATIO:
                smaller = size * width * FIT_RATIO / word_width
                words.append(f'<font size="{smaller:.2f}">{escape(word)}</font>')
            else:
                words.append(escape(word))
        lines.append(" ".join(words))
    return "<br/>".join(lines)


def _p(text: object, style: ParagraphStyle, width: float) -> Paragraph:
    """A paragraph of plain ``text`` (newlines kept) that fits ``width`` without splitting a word."""
    return Paragraph(_fitted(str(text), style.fontName, style.fontSize, width), style)


def _table(rows: list[list[Any]], widths: list[float]) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle([
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
            ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.lightgrey),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING),
            ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING),
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


def _heading(title: str, document: Row, styles: dict[str, ParagraphStyle], width: float) -> list[Flowable]:
    return [
        _p(title, styles["title"], width),
        _p(f"{document['title']} ({document['envelope_id']})", styles["body"], width),
        _p("All times are in UTC (Coordinated Universal Time).", styles["detail"], width),
        Spacer(1, 12),
    ]


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
    widths = [usable * share for share in CERTIFICATE_COLUMNS]
    inner = [width - 2 * CELL_PADDING for width in widths]
    heads = ("Recipient", "Signature", "Events")
    rows: list[list[Any]] = [[_p(h, styles["head"], w) for h, w in zip(heads, inner, strict=True)]]
    for recipient in recipients:
        name = [_p(recipient["name"], styles["head"], inner[0])] if recipient["name"] else []
        rows.append([
            [*name, _p(recipient["email"], styles["body"], inner[0]),
             _p(f"Role: {_role_label(recipient['role'])}", styles["body"], inner[0])],
            _signature(recipient, fields, styles, inner[1]),
            _p("\n".join(_events(recipient, audit_logs)), styles["body"], inner[2]),
        ])  # fmt: skip
    story = [*_heading("Signing Certificate", document, styles, usable), _table(rows, widths)]
    return _build(story, size)


def audit_log_pdf(
    document: Row, recipients: Sequence[Row], audit_logs: Sequence[Row], size: tuple[float, float]
) -> bytes:
    """The audit log: one line per event, oldest first, each its UTC time and who did what."""
    fonts.register()
    styles = _styles(size[0])
    usable = size[0] * (1 - 2 * MARGIN_RATIO)
    body = styles["body"]
    # A hanging indent as wide as a time and a space: the times make a column, and each
    # sentence wraps in line with its own start (DejaVu's digits all have one width).
    time_width = stringWidth(utc_time(EXAMPLE_TIME), fonts.TEXT_BOLD, body.fontSize)
    indent = time_width + stringWidth(" ", body.fontName, body.fontSize)
    text_width = usable - indent
    event = ParagraphStyle("event", parent=body, leftIndent=indent, firstLineIndent=-indent, spaceBefore=3)
    detail = ParagraphStyle("event detail", parent=styles["detail"], leftIndent=indent)
    story = _heading("Audit Log", document, styles, usable)
    for line in audit_lines(document, recipients, audit_logs):
        time = f'<font name="{fonts.TEXT_BOLD}">{utc_time(line.at)}</font>'
        # One space between time and sentence: the event reads (and extracts) as one line.
        story.append(
            Paragraph(f"{time} {_fitted(line.text, body.fontName, body.fontSize, text_width)}", event)
        )
        if line.detail:
            story.append(
                Paragraph(_fitted(line.detail, detail.fontName, detail.fontSize, text_width), detail)
            )
    return _build(story, size)


def _role_label(role: str) -> str:
    label = role_name(role)
    return label if label == "CC" else label.capitalize()


def _when(moment: datetime | None) -> str:
    return utc_time(moment) if moment else "not recorded"


def _entry(audit_logs: Sequence[Row], recipient: Row, kind: str, email_type: str | None = None) -> Row | None:
    """The first entry of ``kind`` about ``recipient`` (of ``email_type``, for an email)."""
    return next(
        (
            e
            for e in audit_logs
            if e["type"] == kind
            and (e["data"] or {}).get("recipientId") == recipient["id"]
            and (email_type is None or e["data"].get("emailType") == email_type)
        ),
        None,
    )


def _events(recipient: Row, audit_logs: Sequence[Row]) -> list[str]:
    emailed = _entry(audit_logs, recipient, "EMAIL_SENT", "DOCUMENT_COMPLETED")
    completed_line = f"Completed document emailed: {_when(emailed['created_at'])}" if emailed else None
    if recipient["role"] == "CC":
        return [completed_line or _cc_copy(recipient, audit_logs)]
    lines = [f"Sent: {utc_time(recipient['sent_at'])}" if recipient["sent_at"] else "Not sent by email"]
    finished = FINISHED_VERB.get(recipient["role"], "signed").capitalize()
    for label, kind in (("Opened", "DOCUMENT_OPENED"), (finished, "DOCUMENT_RECIPIENT_COMPLETED"),
                        ("Rejected", "DOCUMENT_RECIPIENT_REJECTED")):  # fmt: skip
        entry = _entry(audit_logs, recipient, kind)
        if entry is not None:
            lines.append(f"{label}: {_when(entry['created_at'])}")
            if entry["ip_address"]:
                lines.append(f"IP address: {entry['ip_address']}")
            if entry["user_agent"]:
                lines.append(f"User agent: {entry['user_agent']}")
    if recipient["rejection_reason"]:
        lines.append(f"Reason: {recipient['rejection_reason']}")
    if completed_line:
        lines.append(completed_line)
    return lines


def _cc_copy(recipient: Row, audit_logs: Sequence[Row]) -> str:
    """What a CC recipient gets, when no email of the completed document was sent to them yet."""
    planned = any(
        email.get("recipientId") == recipient["id"]
        for entry in audit_logs
        if entry["type"] == "DOCUMENT_COMPLETED"
        for email in (entry["data"] or {}).get("completionEmails") or ()
    )
    if planned:
        return "Receives a copy of the completed document by email."
    if recipient.get("email_refused_at") is not None:
        return "Receives no email: the mail server refused the address."
    return "Receives no email of the completed document."


def _signature(
    recipient: Row, fields: Sequence[PlacedField], styles: dict[str, ParagraphStyle], width: float
) -> Flowable:
    if recipient["role"] == "CC":
        return _p("Copy recipient: no signature asked.", styles["body"], width)
    signature = next(
        (f for f in fields if f.row["recipient_id"] == recipient["id"] and f.row["type"] in SIGNATURE_TYPES),
        None,
    )
    if signature is None:
        return _p("No signature.", styles["body"], width)
    if signature.image is not None:
        return _Picture(signature.image, width, width / 3)
    text = signature.row["typed_signature"] or signature.row["custom_text"] or ""
    style = ParagraphStyle("sig", parent=styles["signature"], fontName=fonts.signature_font_for(text))
    return _p(text, style, width)


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
