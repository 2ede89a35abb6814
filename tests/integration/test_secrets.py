"""Secrets under attack and in failure: compared in constant time, never in a log line.

Each test sets every secret it can reach, drives the code paths that handle them
(right and wrong board passwords and tokens, forged CSRF tokens, forged and
replayed signatures, failing SMTP logins and webhook deliveries, Inngest syncs and
calls), and then reads every record every logger made, at DEBUG, formatted as
the command line formats them, with exceptions and structured fields.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import argon2
import httpx
import psycopg
import pytest
from docjobs_devkit.http import Receiver
from docjobs_devkit.inngest import InngestServer
from docjobs_devkit.smtp import Mailbox

from docjobs import jobs
from docjobs.brokers.inngest import signature as inngest_signature
from docjobs.brokers.local import selftrigger
from docjobs.domain import Flows
from docjobs.logging import LOG_FORMAT, KeyValueFormatter
from docjobs.runtime import Runtime
from docjobs.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from docjobs.webhooks import delivery
from docjobs.webhooks.events import WebhookEvent
from tests.conftest import INNGEST_SIGNING_KEY, TEST_SECONDARY_KEY, inngest_call_body, wait_for
from tests.support.board import ADMIN, BOARD, TOKEN, Board, csrf_of

SMTP_PASSWORD = "smtp-password-5b1e0c"
WEBHOOK_SECRET = "whsec-7f3a9d2c41"
EVENT_KEY = "event-key-d41d8cd9"
#: What an Inngest sync sends as its bearer credential: the key's hash is a key too.
INNGEST_KEY_HASH = hashlib.sha256(
    bytes.fromhex(INNGEST_SIGNING_KEY.removeprefix("signkey-test-"))
).hexdigest()
#: Near misses, presented by the tests: a log line must not echo them either.
WRONG_TOKEN = TOKEN[:-1] + "X"
WRONG_PASSWORD = ADMIN[1] + "!"


@pytest.fixture
def log_lines(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """Every record of every logger, as an operator would read it."""
    caplog.set_level(logging.DEBUG)
    formatter = KeyValueFormatter(LOG_FORMAT)
    standard = set(vars(logging.makeLogRecord({})))

    def lines() -> list[str]:
        out = []
        for record in caplog.records:
            extras = [f"{key}={value!r}" for key, value in vars(record).items() if key not in standard]
            out.append(" ".join([formatter.format(record), *extras]))
        return out

    yield lines


def assert_no_secret(lines: list[str], secrets: dict[str, str]) -> None:
    assert len(lines) > 20, "the scenario logged too little to prove anything"
    for name, secret in secrets.items():
        leaked = [line for line in lines if secret in line]
        assert [] == leaked, f"{name} leaked"


def test_no_secret_reaches_a_log_line_on_the_board_the_self_trigger_mail_and_webhooks(
    # The mail server first: set up before the board's worker, it stops after it. Stopped
    # while a retry of the failing mail was connected, it left that socket open.
    mailbox: Mailbox,
    open_board: Callable[..., Board],
    log_lines: Callable[[], list[str]],
) -> None:
    board = open_board(
        NEXT_PRIVATE_SMTP_HOST="127.0.0.1",
        NEXT_PRIVATE_SMTP_PORT=str(mailbox.port),
        NEXT_PRIVATE_SMTP_USERNAME="mailer",
        NEXT_PRIVATE_SMTP_PASSWORD=SMTP_PASSWORD,  # the test server offers no AUTH: every login fails
        NEXT_PRIVATE_WEBHOOK_SSRF_BYPASS_HOSTS="127.0.0.1",
        NEXT_PRIVATE_JOBS_LOG_LEVEL="DEBUG",
    )
    # The board: wrong and right passwords, wrong and right tokens, a forged CSRF token.
    client = board.client()
    csrf = board.csrf(client, f"{BOARD}/sign-in")
    for password in (WRONG_PASSWORD, ADMIN[1]):
        client.post(f"{BOARD}/sign-in", data={"csrf": csrf, "email": ADMIN[0], "password": password})
    admin = board.signed_in(*ADMIN)
    assert 403 == admin.post(f"{BOARD}/queues/default/pause", data={"csrf": "forged"}).status_code
    for token, status in ((WRONG_TOKEN, 401), (TOKEN, 200)):
        api = board.client(headers={"authorization": f"Bearer {token}"})
        assert status == api.get(f"{BOARD}/api/overview").status_code
    # The self-trigger: a forged signature, a genuine one, and the genuine one replayed.
    message = jobs.trigger("test.record", {"key": "secrets"}, delay=3600)
    body = selftrigger.request_body("test.record", str(message.message_id))
    stamp = int(time.time())
    genuine = sign(TEST_SECONDARY_KEY.encode(), stamp, body)
    for signature in ("v1=" + "0" * 64, genuine, genuine):
        httpx.post(
            f"{board.url}/api/jobs/test.record/{message.message_id}",
            content=body,
            headers={TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: signature},
        )
    # Mail whose SMTP login fails, and a webhook (with its secret) whose receiver fails.
    owner = Flows().create_user("olivia@example.com", "Olivia")
    jobs.trigger("send.password.reset.success.email", {"userId": owner["id"]})
    with Receiver(status=500, body=b"down").running() as receiver:
        webhook = Flows().add_webhook(
            owner["id"], receiver.url, [WebhookEvent.DOCUMENT_SIGNED], secret=WEBHOOK_SECRET
        )
        jobs.trigger(
            "internal.execute-webhook",
            {"event": "DOCUMENT_SIGNED", "webhookId": webhook["id"], "data": {"id": 1}},
        )
        wait_for(lambda: receiver.requests, timeout=20)
        assert WEBHOOK_SECRET == receiver.requests[0].headers[delivery.SECRET_HEADER]  # it was in play
    wait_for(lambda: any("SMTP" in line for line in log_lines()), timeout=20)
    assert_no_secret(
        log_lines(),
        {
            "the board token": TOKEN,
            "a wrong board token": WRONG_TOKEN,
            "the admin's password": ADMIN[1],
            "a wrong password": WRONG_PASSWORD,
            "the self-trigger key": TEST_SECONDARY_KEY,
            "the SMTP password": SMTP_PASSWORD,
            "the webhook secret": WEBHOOK_SECRET,
            "a session's CSRF token": csrf,
            "a self-request's signature": genuine.removeprefix("v1="),
        },
    )


def test_no_secret_reaches_a_log_line_on_inngest(
    open_board: Callable[..., Board],
    inngest_emulator: InngestServer,
    log_lines: Callable[[], list[str]],
) -> None:
    board = open_board(provider="inngest", NEXT_PRIVATE_JOBS_LOG_LEVEL="DEBUG")
    url = f"{board.url}/api/jobs"
    message = jobs.trigger("test.record", {"key": "inngest-secrets"})
    (run,) = inngest_emulator.wait_for_runs(1)
    assert "completed" == run.status
    # Forged, stale, genuine and replayed calls, and a sync (which sends the key's hash to Inngest).
    raw = inngest_call_body("test.record", {"key": "signed-by-hand"})
    now = round(time.time())
    good = inngest_emulator.sign(raw, now)
    for header in (good.replace("s=", "s=0"), inngest_emulator.sign(raw, now - 3600), good, good):
        httpx.post(f"{url}?fnId=documenso-app-test.record&stepId=step", content=raw,
                   headers={"x-inngest-signature": header})  # fmt: skip
    assert 200 == inngest_emulator.sync(url).status_code
    assert str(message.message_id) in " ".join(log_lines())  # the job's lines are there
    assert_no_secret(
        log_lines(),
        {
            "the signing key": INNGEST_SIGNING_KEY.removeprefix("signkey-test-"),
            "the signing key's hash": INNGEST_KEY_HASH,
            "the event key": inngest_emulator.event_key,
            "a call's signature": good.split("s=")[1],
        },
    )


# Constant-time comparisons: each secret a request presents goes through hmac.compare_digest.


def test_no_secret_reaches_a_failed_job_s_error_kept_for_the_board(
    service: Runtime, database_url: str
) -> None:
    message = jobs.trigger("test.leaky", {})
    service.join()
    with psycopg.connect(database_url) as conn:
        job = conn.execute(
            "SELECT status, last_error, last_traceback FROM background_job WHERE id = %s",
            (message.message_id,),
        ).fetchone()
        kept = conn.execute(
            "SELECT error, traceback FROM background_job_attempt WHERE job_id = %s"
            " UNION ALL SELECT last_error, NULL FROM background_job_task WHERE job_id = %s",
            (message.message_id, message.message_id),
        ).fetchall()
    assert job is not None and "FAILED" == job[0]
    assert "key=***" in job[1]  # the error is kept, the key masked
    texts = [text for row in [job[1:], *kept] for text in row if text is not None]
    assert len(texts) >= 3 and not [text for text in texts if TEST_SECONDARY_KEY in text]


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """The pairs every module that checks a secret handed to ``hmac.compare_digest``."""
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    # The modules call ``hmac.compare_digest`` through the module, so one patch sees them all.
    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


def _presented(calls: list[tuple[Any, Any]], value: str) -> bool:
    """Was ``value`` one side of a constant-time comparison?"""
    return any(value.encode() in (_bytes(a), _bytes(b)) for a, b in calls)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def test_every_presented_secret_is_compared_in_constant_time(
    open_board: Callable[..., Board], compared: list[tuple[Any, Any]]
) -> None:
    board = open_board(worker=False)
    board.client(headers={"authorization": f"Bearer {WRONG_TOKEN}"}).get(f"{BOARD}/api/overview")
    assert _presented(compared, WRONG_TOKEN)
    admin = board.signed_in(*ADMIN)
    admin.post(f"{BOARD}/queues/default/pause", data={"csrf": "forged-csrf-token"})
    assert _presented(compared, "forged-csrf-token")
    message = jobs.trigger("test.record", {"key": "timing"}, delay=3600)
    body = f'{{"name": "test.record", "jobId": "{message.message_id}"}}'.encode()
    forged = "v1=" + "ab" * 32
    httpx.post(
        f"{board.url}/api/jobs/test.record/{message.message_id}",
        content=body,
        headers={TIMESTAMP_HEADER: str(int(time.time())), SIGNATURE_HEADER: forged},
    )
    assert _presented(compared, forged)
    with pytest.raises(inngest_signature.SignatureError):
        presented = inngest_signature.parse([f"t={int(time.time())}&s={'cd' * 32}"], time.time())
        inngest_signature.check(presented, b"{}", {}, [INNGEST_SIGNING_KEY])
    assert _presented(compared, "cd" * 32)


def test_sign_in_takes_as_long_for_an_unknown_email_as_for_a_known_one(
    open_board: Callable[..., Board], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown email still costs one password hash check, so timing does not tell who has an account."""
    board = open_board(worker=False)
    checked: list[str] = []
    real_verify = argon2.PasswordHasher.verify

    def verify(self: argon2.PasswordHasher, stored: str, password: str) -> bool:
        checked.append(password)
        return real_verify(self, stored, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", verify)
    for email in (ADMIN[0], "nobody@example.com"):
        client = board.client()
        form = client.get(f"{BOARD}/sign-in")
        answer = client.post(
            f"{BOARD}/sign-in", data={"csrf": csrf_of(form.text), "email": email, "password": WRONG_PASSWORD}
        )
        assert 401 == answer.status_code
    assert [WRONG_PASSWORD] * 2 == checked
    assert not re.search("nobody|no such user|unknown", answer.text, re.IGNORECASE)
