"""An email's content, and its rendering into a MIME message with text and HTML parts.

Everything in an :class:`Email` may come from users. :func:`render` puts every
header value through :mod:`docjobs.mail.headers` (one line, capped), escapes the
HTML part (Jinja autoescape) and leaves the text part plain; both parts lose the
characters that cannot be sent (lone surrogates, NUL and other controls).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING

from docjobs.mail import headers

if TYPE_CHECKING:
    import jinja2


@dataclass(frozen=True)
class Link:
    """A labelled URL."""

    label: str
    url: str


@dataclass(frozen=True)
class Attachment:
    """A file sent with the email."""

    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "pdf"


@dataclass(frozen=True)
class Email:
    """What an email says; the templates decide how it looks, in HTML and in plain text."""

    to_address: str
    to_name: str
    subject: str
    heading: str
    paragraphs: tuple[str, ...]
    action: Link | None = None
    links: tuple[Link, ...] = ()
    quote: str | None = None
    attachments: tuple[Attachment, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    #: Only the text part (notices to staff, read in any client and easy to search).
    text_only: bool = False


@functools.cache
def _environment() -> jinja2.Environment:
    # Imported by the first email: a worker that sends none need not carry Jinja.
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("docjobs.mail", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render(email: Email, *, from_name: str, from_address: str) -> EmailMessage:
    """The MIME message: a text part, an HTML alternative, then the attachments.

    Args:
        email: The content.
        from_name: Sender name (``NEXT_PRIVATE_SMTP_FROM_NAME``), also the brand in the text.
        from_address: Sender address (``NEXT_PRIVATE_SMTP_FROM_ADDRESS``).

    Raises:
        BadAddress: The recipient's address cannot be used (nothing else about the
            content can make rendering fail).
    """
    environment = _environment()
    context = {"email": email, "brand": from_name}
    message = EmailMessage()
    message["Subject"] = headers.header_text(email.subject)
    message["From"] = headers.sender(from_name, from_address)
    message["To"] = headers.recipient(email.to_name, email.to_address)
    message["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or None)
    for name, value in email.headers.items():
        message[name] = headers.header_text(value)
    message.set_content(_sendable(environment.get_template("email.txt").render(context)))
    if not email.text_only:
        html = environment.get_template("email.html").render(context)
        message.add_alternative(_sendable(html), subtype="html")
    for attachment in email.attachments:
        message.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=headers.header_text(attachment.filename) or "attachment",
        )
    return message


#: Controls other than tab and newline, and lone surrogates: what a text part must not carry
#: (a surrogate cannot even be encoded, and would fail the email).
_UNSENDABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def _sendable(body: str) -> str:
    lines = body.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSENDABLE.sub("\ufffd", lines)
