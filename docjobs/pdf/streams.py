"""A bound on how far a PDF's streams may inflate: decompression bombs are refused, not sealed.

A Flate stream of 1 MB can inflate to 1 GiB. Sealing never needs the original's
page content decoded (the fields are drawn on a page of their own, laid over, and
streams are written out as they came), but a document whose streams inflate to
gigabytes is no document: every reader of the sealed file would decode them. So,
before anything is drawn, :func:`check_inflated_size` inflates every stream a
reader parses (content, forms, fonts, appearances, object streams) chunk by chunk,
keeping none of it, and refuses the document as soon as the total passes
:data:`MAX_INFLATED_BYTES`. Image data is left alone: nothing in sealing decodes
it, and a scanned page may lawfully hold a large image.

qpdf decodes a few streams itself (the cross-reference and object streams while it
reads the file, form appearances when flattening): its own per-stream limits are
set to the same bound, so no single decode inside it goes further either.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import pikepdf

from docjobs.pdf.refusal import DocumentRefused

#: The most the original's streams may inflate to, all together.
MAX_INFLATED_BYTES = 256 * 1024 * 1024
#: Inflated at most this much at a time, so a bomb never sits in memory.
INFLATE_CHUNK_BYTES = 1024 * 1024

_FLATE = frozenset({"/FlateDecode", "/Fl"})
_WHITESPACE = re.compile(rb"[\x00\t\n\x0c\r ]+")


class _Budget:
    """The bytes left before the document is refused."""

    def __init__(self, document: str, limit_bytes: int) -> None:
        self.document = document
        self.limit_bytes = limit_bytes
        self.left = limit_bytes

    def spend(self, count: int) -> None:
        self.left -= count
        if self.left < 0:
            raise DocumentRefused(
                f"{self.document}: its streams inflate to more than {self.limit_bytes // (1024 * 1024)} MiB "
                "(a decompression bomb?)"
            )


@functools.cache
def limit_qpdf_decoders() -> None:
    """Bound each decode qpdf makes to ``MAX_INFLATED_BYTES`` (process-wide settings: set once)."""
    pikepdf.settings.set_qpdf_limits(
        flate_max_memory=MAX_INFLATED_BYTES,
        run_length_max_memory=MAX_INFLATED_BYTES,
        png_max_memory=MAX_INFLATED_BYTES,
        tiff_max_memory=MAX_INFLATED_BYTES,
    )


def check_inflated_size(pdf: pikepdf.Pdf, document: str, limit_bytes: int = MAX_INFLATED_BYTES) -> int:
    """Refuse ``pdf`` if its streams, images apart, inflate to more than ``limit_bytes`` together.

    Streams are inflated a chunk at a time and counted as they come, so a bomb is
    stopped at the limit, never held whole. Filters sealing never decodes (LZW,
    RunLength, image codecs) are not counted; data a reader cannot inflate either is
    counted up to where it breaks (qpdf shows such a stream as far as it goes).

    Args:
        document: The document's label, for the reason.

    Returns:
        The bytes counted.

    Raises:
        DocumentRefused: The total passes ``limit_bytes``.
    """
    budget = _Budget(document, limit_bytes)
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream) or obj.get("/Subtype") == pikepdf.Name.Image:
            continue
        filters = _filters(obj)
        if not filters or not all(name in _FLATE or name in _TEXT_DECODERS for name in filters):
            continue
        try:
            deque(_decoded(obj.read_raw_bytes(), filters, budget), maxlen=0)  # counted, never kept
        except (zlib.error, ValueError):
            continue  # damaged data: counted as far as it inflated
    return limit_bytes - budget.left


def _filters(stream: pikepdf.Stream) -> list[str]:
    value = stream.get("/Filter")
    if value is None:
        return []
    names = list(value) if isinstance(value, pikepdf.Array) else [value]
    return [str(name) for name in names]


def _decoded(raw: bytes, filters: list[str], budget: _Budget) -> Iterable[bytes]:
    """The stream's data through ``filters``, in chunks, each Flate stage's output counted."""
    data, rest = raw, list(filters)
    while rest and rest[0] not in _FLATE:  # a text encoding around the compressed data: it only shrinks
        data = _TEXT_DECODERS[rest.pop(0)](data)
    chunks: Iterable[bytes] = (data,)
    for name in rest:
        if name in _FLATE:
            chunks = _inflate(chunks, budget)
        # A text encoding after a Flate stage only shrinks what was counted: left as it is.
    return chunks


def _inflate(chunks: Iterable[bytes], budget: _Budget) -> Iterator[bytes]:
    inflater = zlib.decompressobj()
    for data in chunks:
        while data and not inflater.eof:
            out = inflater.decompress(data, INFLATE_CHUNK_BYTES)
            budget.spend(len(out))
            yield out
            data = inflater.unconsumed_tail


def _ascii85(data: bytes) -> bytes:
    text = _WHITESPACE.sub(b"", data)
    text = text[2:] if text.startswith(b"<~") else text
    end = text.find(b"~>")
    return base64.a85decode(text[:end] if end >= 0 else text)


def _ascii_hex(data: bytes) -> bytes:
    text = _WHITESPACE.sub(b"", data)
    end = text.find(b">")
    text = text[:end] if end >= 0 else text
    return binascii.unhexlify(text + b"0" if len(text) % 2 else text)


# Text encodings of binary data: undoing them only shrinks it.
_TEXT_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "/ASCII85Decode": _ascii85,
    "/A85": _ascii85,
    "/ASCIIHexDecode": _ascii_hex,
    "/AHx": _ascii_hex,
}
