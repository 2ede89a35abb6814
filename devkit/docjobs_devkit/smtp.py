"""A real SMTP server (aiosmtpd) that keeps what it receives and can refuse: tests and the demo."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from docjobs_devkit.services import free_port


@dataclass
class Mailbox:
    """Messages received, and rules to refuse addresses (550) or defer them (451)."""

    messages: list[EmailMessage] = field(default_factory=list)
    #: Every address the server was asked to deliver to (RCPT TO), accepted or not.
    asked: list[str] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    deferrals: dict[str, int] = field(default_factory=dict)
    port: int = 0
    received: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        self.asked.append(address.lower())
        if address.lower() in self.refused:
            return "550 5.1.1 No such mailbox here"
        if self.deferrals.get(address.lower(), 0) > 0:
            self.deferrals[address.lower()] -= 1
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.received:
            self.messages.append(message)
            self.received.notify_all()
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages sent to ``address``."""
        return [m for m in list(self.messages) if address.lower() in str(m["To"]).lower()]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        """Block until ``count`` messages arrived; fail after ``timeout``."""
        with self.received:
            if not self.received.wait_for(lambda: len(self.messages) >= count, timeout):
                subjects = [m["Subject"] for m in self.messages]
                raise AssertionError(f"{len(self.messages)} of {count} emails arrived: {subjects}")
        return list(self.messages)


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """Run an SMTP server on a free loopback port."""
    mailbox = Mailbox()
    mailbox.port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "no text part"
    return str(part.get_content())


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "no HTML part"
    return str(part.get_content())


def attachments(message: EmailMessage) -> dict[str, bytes]:
    return {str(part.get_filename()): bytes(part.get_content()) for part in message.iter_attachments()}
