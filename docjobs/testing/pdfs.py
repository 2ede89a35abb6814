"""Sample PDFs for tests and the demo, drawn with reportlab."""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO

import pikepdf
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas


def sample_pdf(
    pages: int = 1,
    *,
    title: str = "Agreement",
    size: tuple[float, float] = A4,
    rotations: Sequence[int] = (),
    with_form_field: bool = False,
) -> bytes:
    """A PDF of ``pages`` pages, each saying its number.

    Args:
        rotations: ``/Rotate`` of each page (0 when the list is shorter).
        with_form_field: Add an AcroForm text field on page 1 (to test flattening).
    """
    output = BytesIO()
    canvas = Canvas(output, pagesize=size)
    for number in range(1, pages + 1):
        canvas.setFont("Helvetica-Bold", 18)
        canvas.drawString(56, size[1] - 72, title)
        canvas.setFont("Helvetica", 11)
        canvas.drawString(56, size[1] - 100, f"Page {number} of {pages}")
        if number == 1 and with_form_field:
            canvas.acroForm.textfield(
                name="note", value="filled in a form", x=56, y=size[1] - 200, width=240, height=20
            )
        canvas.showPage()
    canvas.save()
    if not any(rotations):
        return output.getvalue()
    # Set /Rotate on the finished pages: the page box stays as drawn, viewers turn it.
    with pikepdf.open(BytesIO(output.getvalue())) as pdf:
        for page, rotation in zip(pdf.pages, rotations, strict=False):
            if rotation:
                page.obj.Rotate = rotation
        rotated = BytesIO()
        pdf.save(rotated)
    return rotated.getvalue()
