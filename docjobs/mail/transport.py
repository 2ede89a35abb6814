"""Sending mail over SMTP, with the reference service's settings.

``NEXT_PRIVATE_SMTP_SECURE=true`` connects with TLS from the start (port 465
style); otherwise the connection is upgraded with STARTTLS when the server offers
it, unless ``NEXT_PRIVATE_SMTP_UNSAFE_IGNORE_TLS=true``. ``smtp-auth`` logs in with
the username and password, ``smtp-api`` with the API key user and key.

Failures come in three kinds. A permanent refusal of the address (a 5xx reply to
RCPT or DATA) raises :class:`MailRefused`: retrying cannot help, so jobs record it
and go on. A 4xx reply about this message's recipient raises the original error:
the job is retried, and its other recipients need not wait (see
:func:`is_server_failure`). Anything else (connection refused, a timeout, a
dropped connection) concerns the server as a whole, and the job is retried with
backoff.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from docjobs.mail.errors import MailRefused
from docjobs.settings import Settings

__all__ = ["SMTP_TIMEOUT_SECONDS", "MailRefused", "Mailer", "is_server_failure"]

SMTP_TIMEOUT_SECONDS = 30.0


class Mailer:
    """Sends messages through the configured SMTP server; one connection per message.

    Args:
        settings: The ``NEXT_PRIVATE_SMTP_*`` settings.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def from_name(self) -> str:
        return self.settings.smtp_from_name

    @property
    def from_address(self) -> str:
        return self.settings.smtp_from_address

    def send(self, message: EmailMessage) -> None:
        """Deliver one message to the SMTP server.

        Raises:
            MailRefused: The server refused a recipient or the message for good.
            smtplib.SMTPException, OSError: A failure worth retrying.
        """
        settings = self.settings
        smtp: smtplib.SMTP
        if settings.smtp_secure:
            smtp = smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=SMTP_TIMEOUT_SECONDS,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
        with smtp:
            smtp.ehlo()
            if not settings.smtp_secure and not settings.smtp_unsafe_ignore_tls and smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            self._login(smtp)
            try:
                smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as exc:
                address, (code, reply) = next(iter(exc.recipients.items()))
                if 500 <= code < 600:
                    raise MailRefused(address, code, _text(reply)) from exc
                raise
            except smtplib.SMTPDataError as exc:
                if 500 <= exc.smtp_code < 600:
                    raise MailRefused(_to_address(message), exc.smtp_code, _text(exc.smtp_error)) from exc
                raise

    def _login(self, smtp: smtplib.SMTP) -> None:
        settings = self.settings
        if settings.smtp_transport == "smtp-api" and settings.smtp_apikey is not None:
            smtp.login(settings.smtp_apikey_user, settings.smtp_apikey.get_secret_value())
        elif settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)


def is_server_failure(exc: BaseException) -> bool:
    """Whether a failure to send concerns the mail server as a whole, not one message's recipient.

    A 4xx reply to RCPT or DATA is about the recipient (a full mailbox, greylisting):
    other recipients may well be reachable. A refused or dropped connection, a
    timeout, a TLS or login failure would fail every other email the same way.
    """
    recipient_specific = (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError)
    return isinstance(exc, OSError) and not isinstance(exc, recipient_specific)


def _to_address(message: EmailMessage) -> str:
    header = message["To"]
    addresses = getattr(header, "addresses", ())
    return str(addresses[0].addr_spec) if addresses else str(header)


def _text(reply: bytes | str) -> str:
    """A server reply on one line (multi-line replies are joined)."""
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())
