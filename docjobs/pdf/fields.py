"""Drawing filled fields onto a page overlay, at their page-percentage position and size.

Positions come from the signing UI: percentages of the page as the signer saw it,
measured from the top-left corner. PDF coordinates start bottom-left, so the box's
bottom edge is ``height - (y% + h%) * height``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from io import BytesIO
from typing import Any

from reportlab.lib.colors import Color, black
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from docjobs.pdf import fonts

#: Smallest text drawn; a value that does not fit at this size is drawn anyway.
MIN_FONT_SIZE = 4.0
#: Share of the box height the text may take.
TEXT_HEIGHT_RATIO = 0.7
SIGNATURE_HEIGHT_RATIO = 0.9
INK = Color(0.07, 0.09, 0.15)


def box(field: Mapping[str, Any], width: float, height: float) -> tuple[float, float, float, float]:
    """The field's rectangle on a ``width`` x ``height`` page: x, y (bottom-left), w, h."""
    w = float(field["width"]) / 100 * width
    h = float(field["height"]) / 100 * height
    x = float(field["position_x"]) / 100 * width
    y = height - float(field["position_y"]) / 100 * height - h
    return x, y, w, h


def draw_field(canvas: Canvas, field: Mapping[str, Any], width: float, height: float) -> None:
    """Draw one inserted field's value."""
    x, y, w, h = box(field, width, height)
    kind = field["type"]
    value = field["custom_text"] or ""
    if kind in ("SIGNATURE", "FREE_SIGNATURE"):
        if field["signature_image"]:
            _image(canvas, bytes(field["signature_image"]), x, y, w, h)
        else:
            text = field["typed_signature"] or value
            _text(canvas, text, x, y, w, h, fonts.signature_font_for(text), SIGNATURE_HEIGHT_RATIO)
    elif kind in ("CHECKBOX", "RADIO"):
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


def _image(canvas: Canvas, data: bytes, x: float, y: float, w: float, h: float) -> None:
    canvas.drawImage(
        ImageReader(BytesIO(data)), x, y, w, h, preserveAspectRatio=True, anchor="c", mask="auto"
    )


def _choices(
    canvas: Canvas, field: Mapping[str, Any], kind: str, x: float, y: float, w: float, h: float
) -> None:
    options = [str(option.get("value", "")) for option in (field["field_meta"] or {}).get("values", [])]
    chosen = _selected(field["custom_text"], kind)
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
            parsed = json.loads(value)
        except ValueError:
            parsed = [part.strip() for part in value.split(",")]
        return {str(item) for item in parsed} if isinstance(parsed, list) else {str(parsed)}
    return {value}
