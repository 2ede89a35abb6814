"""Emails to several recipients: one recipient's failure never stops another's email."""

from __future__ import annotations

import smtplib
import ssl

import pytest

from docjobs import errors
from docjobs.actors._support import Deliveries
from docjobs.mail import transport
from docjobs.mail.errors import MailRefused

DEFERRED = smtplib.SMTPRecipientsRefused({"bob@example.com": (451, b"4.3.0 Mailbox busy")})


@pytest.mark.parametrize(
    ("failure", "server_wide"),
    [
        (DEFERRED, False),
        (smtplib.SMTPDataError(452, b"4.2.2 Mailbox full"), False),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("timed out"), True),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
        (smtplib.SMTPConnectError(421, b"Too busy"), True),
        (smtplib.SMTPAuthenticationError(535, b"Bad credentials"), True),
        (ssl.SSLError("handshake failed"), True),
        (MailRefused("bob@example.com", 550, "No such mailbox"), False),
        (KeyError("name"), False),
    ],
)
def test_a_failure_is_the_servers_or_the_recipients(failure: BaseException, server_wide: bool) -> None:
    assert server_wide == transport.is_server_failure(failure)


def test_a_recipients_failure_is_held_while_the_others_are_sent() -> None:
    deliveries = Deliveries()
    sent: list[str] = []
    for name in ("owner", "alice", "bob", "carol"):
        with deliveries.to(name):
            if name in ("alice", "carol"):
                raise DEFERRED if name == "alice" else ValueError("carol's row is broken")
            sent.append(name)
    assert ["owner", "bob"] == sent
    with pytest.raises(smtplib.SMTPRecipientsRefused):  # the first held: the job is retried
        deliveries.finish()


def test_a_mail_server_failure_stops_the_round_at_once() -> None:
    deliveries = Deliveries()
    sent: list[str] = []
    with pytest.raises(ConnectionRefusedError):
        for name in ("owner", "alice", "bob"):
            with deliveries.to(name):
                if name == "alice":
                    raise ConnectionRefusedError(111, "Connection refused")
                sent.append(name)
    assert ["owner"] == sent


def test_a_failure_another_attempt_may_fix_is_raised_before_a_final_one() -> None:
    deliveries = Deliveries()
    with deliveries.to(1):
        raise errors.TaskExceededRetries("task 'send-1' exceeded its retries")
    with deliveries.to(2):
        raise DEFERRED
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        deliveries.finish()


def test_only_final_failures_end_the_job_for_good() -> None:
    deliveries = Deliveries()
    with deliveries.to(1):
        raise errors.TaskExceededRetries("task 'send-1' exceeded its retries")
    with pytest.raises(errors.TaskExceededRetries):
        deliveries.finish()


def test_a_round_without_failures_finishes_quietly() -> None:
    deliveries = Deliveries()
    with deliveries.to(1):
        pass
    deliveries.finish()


def test_a_held_failure_is_logged_with_the_recipient_id_only(caplog: pytest.LogCaptureFixture) -> None:
    deliveries = Deliveries()
    with deliveries.to(42):
        raise DEFERRED
    (record,) = [r for r in caplog.records if getattr(r, "action", None) == "email_held"]
    assert 42 == record.recipient_id
    assert "Email to recipient 42 failed (SMTPRecipientsRefused)" in record.getMessage()
    assert "bob@example.com" not in record.getMessage()
