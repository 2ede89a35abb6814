"""Why an email cannot reach its recipient, for good: another attempt cannot help."""

from __future__ import annotations

from docjobs import errors


class Undeliverable(errors.NotRetryable):
    """The email cannot be delivered to its recipient; retrying cannot help.

    Attributes:
        address: The recipient's address as the email named it.
        code: The mail server's reply code, or ``None`` when no server was asked.
        reason: What is wrong, in one line, without the address.
    """

    def __init__(self, address: str, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.address = address
        self.code = code
        self.reason = reason


class BadAddress(Undeliverable):
    """The recipient's address cannot be used in an email (refused before any server is asked)."""

    def __init__(self, address: str, why: str) -> None:
        super().__init__(address, f"the recipient address is not usable: {why}")


class MailRefused(Undeliverable):
    """The mail server refused the address or the message for good (a 5xx reply)."""

    def __init__(self, address: str, code: int, reply: str) -> None:
        super().__init__(address, f"the mail server refused the recipient: {code} {reply}", code=code)
