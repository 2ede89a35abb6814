"""Drawing filled fields onto a page overlay, at their page-percentage position and size.

Positions come from the signing UI: percentages of the page as the signer saw it,
measured from the top-left corner. PDF coordinates start bottom-left, so the box's
bottom edge is ``height - (y% + h%) * height``.

Every inserted field is checked (:func:`check_fields`) before anything is drawn: a
page from 1 to the page count (0 is not the last page, -1 not the one before), a
finite position and size from 0 to 100 %, choices that are a list, a signature
image that decodes. A field that fails refuses the document, naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL.Image import Image
from reportlab.lib.colors import Color, black
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from docjobs import strictjson
from docjobs.pdf import fonts, images
from docjobs.pdf.refusal import DocumentRefused, field_label

Row = Mapping[str, Any]
SIGNATURE_TYPES = ("SIGNATURE", "FREE_SIGNATURE")
CHOICE_TYPES = ("CHECKBOX", "RADIO")

#: Smallest text drawn; a value that does not fit at this size is drawn anyway.
MIN_FONT_SIZE = 4.0
#: Share of the box height the text may take.
TEXT_HEIGHT_RATIO = 0.7
SIGNATURE_HEIGHT_RATIO = 0.9
INK = Color(0.07, 0.09, 0.15)


@dataclass(frozen=True)
class PlacedField:
    """An inserted field, checked for drawing: on a page of the PDF, finite percentages, its image decoded."""

    row: Row
    page: int
    #: Position and size, percentages of the page: x, y (from the top-left corner), width, height.
    percent: tuple[float, float, float, float]
    #: The options of a checkbox or radio field.
    options: tuple[str, ...] = ()
    image: Image | None = None


def check_fields(fields: Sequence[Row], page_count: int, document: str) -> list[PlacedField]:
    """The inserted fields of ``fields``, each checked for drawing on a ``page_count``-page PDF.

    Args:
        document: The document's label (``refusal.document_label``), for reasons.

    Raises:
        DocumentRefused: A field is on no page of the PDF, its position or size is
            not a finite percentage from 0 to 100, its options are not a list, or its
            signature image is refused (``images.decode``).
    """
    return [_placed(field, page_count, field_label(document, field)) for field in fields if field["inserted"]]


def _placed(field: Row, page_count: int, what: str) -> PlacedField:
    page = field["page"]
    if isinstance(page, bool) or not isinstance(page, int) or not 1 <= page <= page_count:
        raise DocumentRefused(f"{what} is on page {page}; the PDF has pages 1 to {page_count}")
    x, y, w, h = (_percent(field, name, what) for name in ("position_x", "position_y", "width", "height"))
    image = None
    if field["type"] in SIGNATURE_TYPES and field["signature_image"]:
        image = images.decode(bytes(field["signature_image"]), what)
    options = _options(field["field_meta"], what) if field["type"] in CHOICE_TYPES else ()
    return PlacedField(row=field, page=page, percent=(x, y, w, h), options=options, image=image)


def _percent(field: Row, name: str, what: str) -> float:
    try:
        value = float(field[name])
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= 100):
        raise DocumentRefused(f"{what}: {name} is {field[name]}, not a percentage from 0 to 100")
    return value


def _options(meta: Any, what: str) -> tuple[str, ...]:
    values = ((meta or {}).get("values") or []) if isinstance(meta, Mapping | None) else None
    if not isinstance(values, list) or not all(isinstance(option, Mapping) for option in values):
        raise DocumentRefused(f"{what}: field_meta.values is not a list of options")
    return tuple(str(option.get("value", "")) for option in values)


def box(field: PlacedField, width: float, height: float) -> tuple[float, float, float, float]:
    """The field's rectangle on a ``width`` x ``height`` page: x, y (bottom-left), w, h."""
    x_percent, y_percent, w_percent, h_percent = field.percent
    w = w_percent / 100 * width
    h = h_percent / 100 * height
    x = x_percent / 100 * width
    y = height - y_percent / 100 * height - h
    return x, y, w, h


def draw_field(canvas: Canvas, field: PlacedField, width: float, height: float) -> None:
    """Draw one checked field's value."""
    x, y, w, h = box(field, width, height)
    row = field.row
    kind = row["type"]
    value = row["custom_text"] or ""
    if kind in SIGNATURE_TYPES:
        if field.image is not None:
            _image(canvas, field.image, x, y, w, h)
        else:
            text = row["typed_signature"] or value
            _text(canvas, text, x, y, w, h, fonts.signature_font_for(text), SIGNATURE_HEIGHT_RATIO)
    elif kind in CHOICE_TYPES:
        _choices(canvas, field, kind, x, y, w, h)
    else:  # INITIALS, NAME, EMAIL, DATE, TEXT, NUMBER, DROPDOWN: the value as text
        _text(canvas, value, x, y, w, h, fonts.TEXT, TEXT_HEIGHT_RATIO)


def _text(canvas: Canvas, text: str, x: float, y: float, w: float, h: float, font: str, ratio: float) -> None:
    if not text:
        return
    size = max(min(h * ratio, _fitting_size(text, font, w * 0.96)), MIN_FONT_SIZE)
    canvas.setFillColor(INK)
    canvas.setFont(font, size)
    # Vertically centred on the cap height (about 0.7 of the size).
    canvas.drawString(x + w * 0.02, y + (h - size * 0.7) / 2, text)


def _fitting_size(text: str, font: str, width: float) -> float:
    at_one = stringWidth(text, font, 1.0)
    return width / at_one if at_one else width


def _image(canvas: Canvas, image: Image, x: float, y: float, w: float, h: float) -> None:
    canvas.drawImage(ImageReader(image), x, y, w, h, preserveAspectRatio=True, anchor="c", mask="auto")


def _choices(canvas: Canvas, field: PlacedField, kind: str, x: float, y: float, w: float, h: float) -> None:
    options = list(field.options)
    chosen = _selected(field.row["custom_text"], kind)
    if not options:  # a lone box: ticked when it holds any value
        options, chosen = [""], ({""} if chosen else set())
    row = h / len(options)
    mark = min(row * 0.7, w * 0.2)
    canvas.setStrokeColor(INK)
    canvas.setFillColor(INK)
    canvas.setLineWidth(max(mark / 12, 0.5))
    for index, option in enumerate(options):
        top = y + h - row * index
        mx, my = x + mark * 0.2, top - (row + mark) / 2
        if kind == "RADIO":
            canvas.circle(mx + mark / 2, my + mark / 2, mark / 2, stroke=1, fill=0)
            if option in chosen:
                canvas.circle(mx + mark / 2, my + mark / 2, mark / 4, stroke=0, fill=1)
        else:
            canvas.rect(mx, my, mark, mark, stroke=1, fill=0)
            if option in chosen:
                canvas.line(mx + mark * 0.2, my + mark * 0.5, mx + mark * 0.45, my + mark * 0.2)
                canvas.line(mx + mark * 0.45, my + mark * 0.2, mx + mark * 0.85, my + mark * 0.85)
        if option:
            canvas.setFont(fonts.TEXT, mark * 0.9)
            canvas.drawString(mx + mark * 1.4, my + mark * 0.15, option)
    canvas.setFillColor(black)


def _selected(value: str | None, kind: str) -> set[str]:
    """The chosen options: a JSON list (checkboxes) or one value (radio)."""
    if not value:
        return set()
    if kind == "CHECKBOX":
        try:
            parsed = strictjson.loads(value)
        except strictjson.JsonRefused:
            parsed = [part.strip() for part in value.split(",")]
        return {str(item) for item in parsed} if isinstance(parsed, list) else {str(parsed)}
    return {value}
