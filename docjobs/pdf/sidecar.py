"""The pages appended to a sealed document: the signing certificate and the audit log.

Both are laid out at the size of the document's last page and flow onto as many
pages as they need, for a signer or a court to read. The certificate first names the
original document by its SHA-256 fingerprint (the file as uploaded, before any field
was filled in), then shows each recipient with their role, their signature and the
times, IP addresses and user agents of their sent, opened and signed events, each
with its number in the audit log; a CC recipient is shown as receiving a copy of the
completed document. The audit log gives one line per event: its number, its time in
UTC to the millisecond and a sentence saying who did what (``audit_text``).

Each page's footer names its section and its place in it ("Audit Log, page 2 of 3"),
not its place in the whole file: the original's own pages often carry numbers of
their own ("Page 1 of 2"), which a whole-file count would contradict, and they are
the signed content, never drawn on. The certificate says how many pages the original
has, so the whole file's length can still be checked.

Text wraps only at spaces: a word or an email address never splits across lines.
One too wide for its column is drawn smaller until it fits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from PIL.Image import Image
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from docjobs.pdf import fonts
from docjobs.pdf.audit_text import FINISHED_VERB, audit_lines, role_name, utc_time, utc_time_ms
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
CERTIFICATE_TITLE = "Signing Certificate"
AUDIT_LOG_TITLE = "Audit Log"


@dataclass(frozen=True)
class Original:
    """The document as uploaded, before any field was filled in: what the certificate identifies."""

    sha256: str
    size_bytes: int
    pages: int


class _NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab has no type hints
    """A canvas that writes "<section>, page N of M" in each page's footer once M is known.

    reportlab's own recipe: each page is kept until the document is saved, then drawn.
    """

    def __init__(self, *args: Any, section: str, footer_size: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._section = section
        self._footer_size = footer_size
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 - reportlab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        for number, page in enumerate(self._pages, start=1):
            self.__dict__.update(page)
            width, height = self._pagesize
            self.setFont(fonts.TEXT, self._footer_size)
            self.setFillColor(DETAIL_GREY)
            footer = f"{self._section}, page {number} of {len(self._pages)}"
            self.drawCentredString(width / 2, min(width, height) * MARGIN_RATIO / 2, footer)
            super().showPage()
        super().save()


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


def _build(story: list[Flowable], size: tuple[float, float], section: str, footer_size: float) -> bytes:
    output = BytesIO()
    margin = min(size) * MARGIN_RATIO
    SimpleDocTemplate(
        output, pagesize=size, leftMargin=margin, rightMargin=margin, topMargin=margin, bottomMargin=margin
    ).build(
        story,
        canvasmaker=lambda *args, **kwargs: _NumberedCanvas(
            *args, section=section, footer_size=footer_size, **kwargs
        ),
    )
    return output.getvalue()


def _heading(
    title: str, document: Row, note: str, styles: dict[str, ParagraphStyle], width: float
) -> list[Flowable]:
    return [
        _p(title, styles["title"], width),
        _p(f"{document['title']} ({document['envelope_id']})", styles["body"], width),
        _p(note, styles["detail"], width),
        Spacer(1, 12),
    ]


def _original(original: Original, styles: dict[str, ParagraphStyle], width: float) -> list[Flowable]:
    """What was signed: the original file's size, pages and SHA-256, and how this file relates to it."""
    pages = "1 page" if original.pages == 1 else f"{original.pages} pages"
    first = "the first page" if original.pages == 1 else f"the first {original.pages} pages"
    return [
        _p(
            f"Original document: the PDF file as uploaded, before any field was filled in "
            f"({original.size_bytes:,} bytes, {pages}). Its SHA-256 fingerprint:",
            styles["body"],
            width,
        ),
        _p(original.sha256, styles["head"], width),
        _p(
            f"Any copy of that file has this fingerprint; any change to it gives another. This PDF is "
            f"that document with its fields filled in ({first}), then this certificate and the audit "
            f"log, signed digitally.",
            styles["detail"],
            width,
        ),
        Spacer(1, 10),
    ]


def certificate_pdf(
    document: Row,
    original: Original,
    recipients: Sequence[Row],
    fields: Sequence[PlacedField],
    audit_logs: Sequence[Row],
    size: tuple[float, float],
) -> bytes:
    """The signing certificate: the original's fingerprint, then one row per recipient.

    Each signer's row shows the first signature of theirs in ``fields``.
    """
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
    note = (
        'All times are in UTC (Coordinated Universal Time). "Event N" is entry N of the audit log, '
        "which gives its time to the millisecond."
    )
    story = [
        *_heading(CERTIFICATE_TITLE, document, note, styles, usable),
        *_original(original, styles, usable),
        _table(rows, widths),
    ]
    return _build(story, size, CERTIFICATE_TITLE, styles["detail"].fontSize)


def audit_log_pdf(
    document: Row, recipients: Sequence[Row], audit_logs: Sequence[Row], size: tuple[float, float]
) -> bytes:
    """The audit log: one line per event, oldest first, each its number, UTC time and who did what."""
    fonts.register()
    styles = _styles(size[0])
    usable = size[0] * (1 - 2 * MARGIN_RATIO)
    body = styles["body"]
    lines = audit_lines(document, recipients, audit_logs)
    # A hanging indent as wide as the longest number, a time and their spaces: numbers and
    # times make columns, and each sentence wraps in line with its own start.
    widest = stringWidth(str(len(lines)), fonts.TEXT_BOLD, body.fontSize)
    stamp_width = widest + stringWidth(f" {utc_time_ms(EXAMPLE_TIME)}", fonts.TEXT_BOLD, body.fontSize)
    indent = stamp_width + stringWidth(" ", body.fontName, body.fontSize)
    text_width = usable - indent
    more = ParagraphStyle("event more", parent=body, leftIndent=indent)
    detail = ParagraphStyle("event detail", parent=styles["detail"], leftIndent=indent)
    note = (
        "Events are numbered in the order they were recorded: events recorded together share "
        "their time, and the number gives their order. All times are in UTC (Coordinated "
        "Universal Time), to the millisecond."
    )
    story = _heading(AUDIT_LOG_TITLE, document, note, styles, usable)
    for line in lines:
        number = str(line.number)
        # A shorter number starts further in, so numbers align on their right (a space
        # would not do: reportlab drops a paragraph's leading spaces).
        pad = widest - stringWidth(number, fonts.TEXT_BOLD, body.fontSize)
        event = ParagraphStyle(
            "event", parent=body, leftIndent=indent, firstLineIndent=pad - indent, spaceBefore=3
        )
        stamp = f'<font name="{fonts.TEXT_BOLD}">{number} {utc_time_ms(line.at)}</font>'
        # One space between stamp and sentence: the event reads (and extracts) as one line.
        story.append(
            Paragraph(f"{stamp} {_fitted(line.text, body.fontName, body.fontSize, text_width)}", event)
        )
        story.extend(_p(text, more, text_width) for text in line.more)
        if line.detail:
            story.append(_p(line.detail, detail, text_width))
    return _build(story, size, AUDIT_LOG_TITLE, styles["detail"].fontSize)


def _role_label(role: str) -> str:
    label = role_name(role)
    return label if label == "CC" else label.capitalize()


def _when(moment: datetime | None) -> str:
    return utc_time(moment) if moment else "not recorded"


def _entry(
    audit_logs: Sequence[Row], recipient: Row, kind: str, email_type: str | None = None
) -> tuple[int, Row] | None:
    """The first entry of ``kind`` about ``recipient`` (of ``email_type``, for an email), with its number."""
    return next(
        (
            (number, e)
            for number, e in enumerate(audit_logs, start=1)
            if e["type"] == kind
            and (e["data"] or {}).get("recipientId") == recipient["id"]
            and (email_type is None or e["data"].get("emailType") == email_type)
        ),
        None,
    )


def _at(found: tuple[int, Row]) -> str:
    """``2026-12-06 16:02:11 UTC (event 7)``: the entry's time and its number in the audit log."""
    number, entry = found
    return f"{_when(entry['created_at'])} (event {number})"


def _events(recipient: Row, audit_logs: Sequence[Row]) -> list[str]:
    emailed = _entry(audit_logs, recipient, "EMAIL_SENT", "DOCUMENT_COMPLETED")
    # No event number here: it would wrap this line in the narrow column, and an email the
    # service sent is not an act of the recipient.
    completed_line = f"Completed document emailed: {_when(emailed[1]['created_at'])}" if emailed else None
    if recipient["role"] == "CC":
        return [completed_line or _cc_copy(recipient, audit_logs)]
    lines = [f"Sent: {utc_time(recipient['sent_at'])}" if recipient["sent_at"] else "Not sent by email"]
    finished = FINISHED_VERB.get(recipient["role"], "signed").capitalize()
    for label, kind in (("Opened", "DOCUMENT_OPENED"), (finished, "DOCUMENT_RECIPIENT_COMPLETED"),
                        ("Rejected", "DOCUMENT_RECIPIENT_REJECTED")):  # fmt: skip
        found = _entry(audit_logs, recipient, kind)
        if found is not None:
            entry = found[1]
            lines.append(f"{label}: {_at(found)}")
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
