"""Fonts shipped with the package: no network fetch while sealing (the reference fetched its
fonts over HTTP from its own URL, and documents stuck when that failed).

DejaVu Sans covers Latin, Greek and Cyrillic for text; Caveat (Latin) draws typed
signatures, with DejaVu Sans for the characters it lacks.
"""

from __future__ import annotations

import functools
from importlib import resources

from fontTools.ttLib import TTFont as FontFile
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

TEXT = "DejaVuSans"
TEXT_BOLD = "DejaVuSans-Bold"
SIGNATURE = "Caveat"
_FILES = {TEXT: "DejaVuSans.ttf", TEXT_BOLD: "DejaVuSans-Bold.ttf", SIGNATURE: "Caveat-Regular.ttf"}


@functools.cache
def register() -> None:
    """Register the fonts with reportlab, once per process."""
    for name, filename in _FILES.items():
        path = resources.files("docjobs.pdf").joinpath("fonts", filename)
        with resources.as_file(path) as real_path:
            pdfmetrics.registerFont(TTFont(name, str(real_path)))


@functools.cache
def _signature_characters() -> frozenset[int]:
    path = resources.files("docjobs.pdf").joinpath("fonts", _FILES[SIGNATURE])
    with resources.as_file(path) as real_path:
        return frozenset(FontFile(str(real_path)).getBestCmap())


def signature_font_for(text: str) -> str:
    """Caveat when it has every character of ``text``, else the text font."""
    return SIGNATURE if all(ord(char) in _signature_characters() for char in text) else TEXT
