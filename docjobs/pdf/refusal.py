"""What sealing refuses: input the document's owner gave that no retry can fix.

Sealing is a pure function of the document (its PDF, fields and audit log) up to
the signature; only the timestamp authority is reached over the network. So a
failure before the signature is the document's, and another attempt would fail
the same way: it is raised as :class:`DocumentRefused`, a ``NotRetryable``, with
one line naming the document (and the field) and what is wrong, and the job fails
at once. Database, storage and timestamp-authority failures are not refusals and
stay retryable.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pikepdf.exceptions import PikepdfError
from reportlab.platypus.doctemplate import LayoutError

from docjobs import errors

#: The longest library message quoted in a reason.
MAX_DETAIL_CHARS = 160
# pikepdf names an in-memory PDF by its object's repr ("<_io.BytesIO object at 0x...>").
_STREAM_REPR = re.compile(r"(stream )?<_io\.BytesIO object at 0x[0-9a-f]+>(,? ?)(:? ?)")


class DocumentRefused(errors.NotRetryable):
    """The document cannot be sealed as it is; another attempt cannot help."""


def document_label(document: Mapping[str, Any]) -> str:
    """How a reason names the document: its envelope id (never its title, which is the owner's text)."""
    return f"document {document.get('envelope_id') or document.get('id') or '(unknown)'}"


def field_label(document: str, field: Mapping[str, Any]) -> str:
    """How a reason names a field of ``document`` (a :func:`document_label`)."""
    return f"{document}: field {field.get('id', '(unknown)')}"


def detail(exc: BaseException) -> str:
    """A library's message as one short line, without the repr of the in-memory file."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    cleaned = _STREAM_REPR.sub("", first).strip() or type(exc).__name__
    return cleaned if len(cleaned) <= MAX_DETAIL_CHARS else cleaned[: MAX_DETAIL_CHARS - 1] + "…"


@contextmanager
def refusing(document: str) -> Iterator[None]:
    """Turn what the PDF and layout libraries raise about the document into :class:`DocumentRefused`.

    Args:
        document: The :func:`document_label` that starts the reason.

    Raises:
        DocumentRefused: pikepdf (qpdf) found the PDF damaged, or the
            appended pages cannot be laid out at the document's page size.
    """
    try:
        yield
    except PikepdfError as exc:
        raise DocumentRefused(f"{document}: the PDF is damaged ({detail(exc)})") from exc
    except LayoutError as exc:
        raise DocumentRefused(
            f"{document}: the certificate pages cannot be laid out at the last page's size"
        ) from exc
