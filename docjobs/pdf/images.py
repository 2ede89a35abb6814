"""Signature images, decoded once, under a pixel bound, before anything is drawn.

A PNG of a few hundred kilobytes can declare 100 million pixels; decoded, that is
hundreds of megabytes. So the size the image declares is checked before a pixel
is decoded (Pillow's own ``MAX_IMAGE_PIXELS`` check raises only above about 179
million pixels), and only the formats a browser makes of a drawn or uploaded
signature are opened: none of Pillow's other decoders (some hand the data to
Ghostscript) is ever reached. A large image is then shrunk to what a page can
show, so that drawing it (twice: on its page and on the certificate) stays cheap.
"""

from __future__ import annotations

import struct
import zlib
from io import BytesIO

from PIL import Image

from docjobs.pdf.refusal import DocumentRefused, detail

#: The most pixels a signature image may have: a drawn signature has well under a million, a
#: 24-megapixel photo passes. Decoding one this large costs sealing about 170 MiB.
MAX_IMAGE_PIXELS = 25_000_000
#: The formats opened.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
#: Longer sides are shrunk to this: an A4 page's width at 300 dpi, wider than any signature box.
MAX_DRAWN_SIDE_PIXELS = 2480

_TOO_LARGE = (Image.DecompressionBombError, Image.DecompressionBombWarning)
# What Pillow raises on data it cannot decode.
_UNDECODABLE = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error)


def decode(data: bytes, what: str) -> Image.Image:
    """The decoded image, shrunk to at most :data:`MAX_DRAWN_SIDE_PIXELS` a side.

    Args:
        what: Names the image's field for the reason (a ``refusal.field_label``).

    Raises:
        DocumentRefused: It is not one of :data:`IMAGE_FORMATS`, it has more than
            :data:`MAX_IMAGE_PIXELS` pixels (checked before decoding), or its data
            cannot be decoded.
    """
    try:
        image = Image.open(BytesIO(data), formats=IMAGE_FORMATS)
    except _TOO_LARGE as exc:
        raise DocumentRefused(f"{what}: the signature image has more than {MAX_IMAGE_PIXELS} pixels") from exc
    except _UNDECODABLE as exc:
        raise DocumentRefused(
            f"{what}: the signature image is not a {', '.join(IMAGE_FORMATS)} image"
        ) from exc
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        image.close()
        raise DocumentRefused(
            f"{what}: the signature image has {width} x {height} pixels, more than {MAX_IMAGE_PIXELS}"
        )
    try:
        # A JPEG is decoded straight at the smaller size.
        image.thumbnail((MAX_DRAWN_SIDE_PIXELS, MAX_DRAWN_SIDE_PIXELS))
        image.load()
    except _UNDECODABLE as exc:
        image.close()
        raise DocumentRefused(f"{what}: the signature image cannot be decoded ({detail(exc)})") from exc
    return image
