"""Sample PDFs for tests and the demo, drawn with reportlab; and documents sealing must refuse."""

from __future__ import annotations

import struct
import zlib
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


def password_protected_pdf(pages: int = 1, *, password: str = "open sesame") -> bytes:
    """A sample PDF that opens only with ``password``."""
    with pikepdf.open(BytesIO(sample_pdf(pages))) as pdf:
        locked = BytesIO()
        pdf.save(locked, encryption=pikepdf.Encryption(user=password, owner=password + "-owner"))
    return locked.getvalue()


def deflate_bomb_pdf(inflated_bytes: int, *, pages: int = 1) -> bytes:
    """A sample PDF whose first page has a content stream of spaces that inflates to ``inflated_bytes``.

    The stream is a few hundred bytes per inflated megabyte (1 GiB: about 1 MB),
    made without ever holding the inflated data.
    """
    with pikepdf.open(BytesIO(sample_pdf(pages))) as pdf:
        bomb = pikepdf.Stream(pdf, deflated_repeat(b" " * _MiB, inflated_bytes // _MiB))
        bomb.Filter = pikepdf.Name.FlateDecode
        page = pdf.pages[0].obj
        page.Contents = pikepdf.Array([page.Contents, bomb])
        output = BytesIO()
        pdf.save(output, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    return output.getvalue()


def png_bomb(width: int, height: int, *, mode: str = "RGB") -> bytes:
    """A black PNG of ``width`` x ``height`` pixels (``RGB`` or ``L``), a few hundred bytes per megapixel."""
    channels = {"L": 1, "RGB": 3}[mode]
    row = b"\x00" * (1 + width * channels)  # filter type 0, then the row's samples
    # As many whole rows as fit a megabyte, and divide the height.
    fitting = [d for d in range(1, height + 1) if height % d == 0 and d * len(row) <= _MiB]
    rows_per_block = max(fitting, default=1)
    pixels = deflated_repeat(row * rows_per_block, height // rows_per_block)
    header = struct.pack(">IIBBBBB", width, height, 8, {"L": 0, "RGB": 2}[mode], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def deflated_repeat(block: bytes, count: int) -> bytes:
    """``zlib.compress(block * count)``, made from one compressed ``block`` repeated.

    After a full flush the compressor starts afresh, so each further ``block``
    compresses to the same bytes: the result is built without ``block * count``.
    """
    compressor = zlib.compressobj(9)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()[:-4]  # the final empty block, without the checksum of two blocks
    checksum = 1
    for _ in range(count):
        checksum = zlib.adler32(block, checksum)
    return first + again * (count - 1) + end + struct.pack(">I", checksum)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


_MiB = 1024 * 1024
