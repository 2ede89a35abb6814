"""User text in email headers: one rule cleans it, every header is built with it, nothing is injected."""

from __future__ import annotations

import email
import email.policy
import unicodedata
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docjobs.mail import headers
from docjobs.mail.errors import BadAddress
from docjobs.mail.message import Attachment, Email, Link, render

#: The headers render writes, and no others.
RENDERED_HEADERS = {"Subject", "From", "To", "Message-ID", "MIME-Version", "Content-Type", "X-Envelope"}
BREAKING_CATEGORIES = {"Cc", "Zl", "Zp", "Cs"}


def an_email(*, to_name: str = "Bob", to_address: str = "bob@example.com", subject: str = "Hello") -> Email:
    return Email(
        to_address=to_address,
        to_name=to_name,
        subject=subject,
        heading=f"{to_name}, your document",
        paragraphs=(f"Dear {to_name},",),
        action=Link("Open", "https://sign.example.com/sign/token"),
        attachments=(Attachment(filename="Contract.pdf", content=b"%PDF-1.7"),),
        headers={"X-Envelope": "envelope_1"},
    )


def sent_and_received(message: EmailMessage) -> EmailMessage:
    """The message as a mail server would parse what the client sends."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Bob\r\nBcc: evil@example.com", "Bob Bcc: evil@example.com"),
        ("Bob\nTo: evil@example.com", "Bob To: evil@example.com"),
        ("Bob\x00\x1b[31m", "Bob [31m"),
        ("Bob\u2028Line\u2029Para\x85Next", "Bob Line Para Next"),
        ("Ali\u202ecod.exe", "Ali cod.exe"),
        ("  \t Bob \t\v ", "Bob"),
        ("Lone \ud800 surrogate", "Lone surrogate"),
        ("Zoë 李 👩‍💻", "Zoë 李 👩‍💻"),  # letters, emoji and their joiner stay
        ("\r\n\x00", ""),
    ],
)
def test_header_text_keeps_one_printable_line(raw: str, clean: str) -> None:
    assert clean == headers.header_text(raw)


def test_display_names_and_header_values_are_capped() -> None:
    assert "B" * headers.DISPLAY_NAME_MAX_CHARS == headers.display_name("B" * 10_000)
    assert "S" * headers.HEADER_TEXT_MAX_CHARS == headers.header_text("S" * 10_000)
    assert "" == headers.display_name(None)


def header_names(message: EmailMessage) -> set[str]:
    return {name for part in message.walk() for name in part.keys()}


def squeezed(text: str) -> str:
    """``text`` without whitespace: Python's parser may add a space where it unfolds encoded words."""
    return "".join(text.split())


@settings(deadline=None, max_examples=200)
@given(st.text())
def test_no_name_or_subject_adds_a_header_or_a_recipient(value: str) -> None:
    message = sent_and_received(
        render(an_email(to_name=value, subject=value), from_name=value, from_address="sign@example.com")
    )
    assert RENDERED_HEADERS == set(message.keys())
    (to,) = message["To"].addresses
    assert "bob@example.com" == to.addr_spec
    assert squeezed(headers.display_name(value)) == squeezed(to.display_name)
    assert squeezed(headers.header_text(value)) == squeezed(message["Subject"])
    for text in (to.display_name, str(message["Subject"])):
        assert not any(unicodedata.category(char) in BREAKING_CATEGORIES for char in text)
        assert text == text.strip()


def test_an_injected_name_shows_as_one_quoted_display_name() -> None:
    message = render(
        an_email(to_name="Bob\r\nBcc: evil@example.com", subject="Bob\r\nBcc: evil@example.com signed"),
        from_name="Example Sign",
        from_address="sign@example.com",
    )
    head = message.as_bytes().split(b"\n\n", 1)[0]
    assert b'To: "Bob Bcc: evil@example.com" <bob@example.com>' in head.splitlines()
    assert b"Subject: Bob Bcc: evil@example.com signed" in head.splitlines()
    assert "Bcc" not in header_names(sent_and_received(message))


def test_the_html_part_is_escaped_and_the_text_part_is_plain() -> None:
    message = render(
        an_email(to_name='<img src=x onerror="alert(1)">'), from_name="Sign", from_address="sign@example.com"
    )
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html.get_content()
    assert "<img" not in html.get_content()
    assert '<img src=x onerror="alert(1)">, your document' in text.get_content()


def test_text_that_cannot_be_sent_is_replaced_in_the_body_not_fatal() -> None:
    message = sent_and_received(
        render(an_email(to_name="Nul\x00 and \ud800"), from_name="Sign", from_address="sign@example.com")
    )
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    assert "Dear Nul\ufffd and \ufffd," in text.get_content()


def test_an_attachment_name_is_one_line() -> None:
    email_ = an_email()
    bad = Email(**{**email_.__dict__, "attachments": (Attachment("Con\r\nBcc: x@example.com.pdf", b"%PDF"),)})
    message = sent_and_received(render(bad, from_name="Sign", from_address="sign@example.com"))
    (attachment,) = message.iter_attachments()
    assert "Con Bcc: x@example.com.pdf" == attachment.get_filename()


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("dana.example.com", "must have an @-sign"),
        ("bob@@example.com", "invalid characters"),
        ("bob@example.com\r\nBcc: evil@example.com", "invalid characters"),
        ("bob@example.com, eve@example.com", "invalid characters"),
        ("jösé@example.com", "Internationalized characters before the @-sign are not supported"),
        ("", "must have an @-sign"),
    ],
)
def test_an_unusable_address_is_refused_naming_the_problem(address: str, reason: str) -> None:
    with pytest.raises(BadAddress, match=reason) as refused:
        render(an_email(to_address=address), from_name="Sign", from_address="sign@example.com")
    assert address == refused.value.address
    assert refused.value.code is None
    assert "\n" not in str(refused.value)


def test_an_international_domain_is_sent_in_its_ascii_form() -> None:
    message = render(
        an_email(to_address="bob@exämple.com"), from_name="Sign", from_address="sign@example.com"
    )
    assert "bob@xn--exmple-cua.com" == message["To"].addresses[0].addr_spec
