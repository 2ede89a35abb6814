"""The one rule for user-supplied text in email headers, and the address headers built with it.

Names, subjects and filenames come from users (a recipient's name, a document's
title). A line break in one would end the header and start another (``Bcc:``),
so Python's email package refuses it and, before this rule, the whole email
failed. Here every such value becomes one harmless line instead: control
characters (CR, LF, NUL, TAB, DEL, the C1 range), the Unicode line and paragraph
separators, bidirectional overrides and lone surrogates turn into spaces, runs
of whitespace into one space, and the result is trimmed and capped in length.

Addresses are not rewritten: an address that is not one plain, ASCII-sendable
mailbox raises :class:`~docjobs.mail.errors.BadAddress`, so the job records it
and goes on with its other recipients.
"""

from __future__ import annotations

import unicodedata
from email.errors import MessageError
from email.headerregistry import Address

from docjobs.mail.errors import BadAddress

#: Longest display name kept, in characters (the rest is cut).
DISPLAY_NAME_MAX_CHARS = 128
#: Longest subject or other header value kept, in characters.
HEADER_TEXT_MAX_CHARS = 256

#: Unicode categories that never belong in a one-line header: controls, line and
#: paragraph separators, surrogates (they cannot be encoded).
_BREAKING_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})
#: Bidirectional embeddings, overrides and isolates: they reorder what a reader sees.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def header_text(value: str, *, max_chars: int = HEADER_TEXT_MAX_CHARS) -> str:
    """``value`` as one line that is safe in any header: controls spaced out, trimmed, capped.

    Args:
        value: Text from a user (a name, a title, a subject built from them).
        max_chars: Characters kept at most.

    Returns:
        The cleaned text; empty when nothing printable was left.
    """
    spaced = "".join(" " if _breaks_a_line(char) else char for char in value)
    return " ".join(spaced.split())[:max_chars].rstrip()


def display_name(value: str | None) -> str:
    """A person's name as it may appear in a header or a one-line mention ("" for none)."""
    return header_text(value or "", max_chars=DISPLAY_NAME_MAX_CHARS)


def recipient(name: str | None, address: str) -> Address:
    """The ``To`` mailbox: the cleaned name and the address, checked.

    The domain is sent in its ASCII (IDNA) form; the local part must be ASCII, since
    the message is not sent with SMTPUTF8.

    Raises:
        BadAddress: ``address`` is not one usable email address.
    """
    # Imported by the first email: a worker that sends none need not load it.
    import email_validator

    try:
        checked = email_validator.validate_email(
            address,
            check_deliverability=False,
            globally_deliverable=False,  # intranet domains are the mail server's business
            allow_smtputf8=False,
        )
    except email_validator.EmailNotValidError as exc:
        raise BadAddress(address, str(exc)) from exc
    assert checked.ascii_email is not None  # allow_smtputf8=False: always set
    return _mailbox(display_name(name), checked.ascii_email, original=address)


def sender(name: str, address: str) -> Address:
    """The ``From`` mailbox: the configured name (cleaned) and address (validated by the settings)."""
    return Address(display_name=display_name(name), addr_spec=address)


def _mailbox(name: str, addr_spec: str, *, original: str) -> Address:
    try:
        return Address(display_name=name, addr_spec=addr_spec)
    except (ValueError, IndexError, MessageError) as exc:  # email's parser refuses what the validator let by
        raise BadAddress(original, str(exc)) from exc


def _breaks_a_line(char: str) -> bool:
    return unicodedata.category(char) in _BREAKING_CATEGORIES or char in _BIDI_CONTROLS
