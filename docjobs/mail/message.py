"""An email's content, and its rendering into a MIME message with text and HTML parts."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid

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


@functools.cache
def _environment() -> jinja2.Environment:
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
    """
    environment = _environment()
    context = {"email": email, "brand": from_name}
    message = EmailMessage()
    message["Subject"] = email.subject
    message["From"] = Address(display_name=from_name, addr_spec=from_address)
    message["To"] = Address(display_name=email.to_name, addr_spec=email.to_address)
    message["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or None)
    for name, value in email.headers.items():
        message[name] = value
    message.set_content(environment.get_template("email.txt").render(context))
    message.add_alternative(environment.get_template("email.html").render(context), subtype="html")
    for attachment in email.attachments:
        message.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
        )
    return message
