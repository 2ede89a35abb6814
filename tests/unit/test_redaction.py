"""Secrets never reach a log line, a traceback or an error message, and a log record is one line."""

from __future__ import annotations

import io
import logging

import pytest

from docjobs import logging as docjobs_logging
from docjobs import redaction
from docjobs.errors import SettingsError
from docjobs.settings import Settings

BASE = {"NEXT_PRIVATE_DATABASE_URL": "postgresql://docjobs@db/docjobs", "NODE_ENV": "development"}


def test_url_and_connection_string_passwords_are_masked_wherever_they_appear() -> None:
    text = (
        "could not connect to redis://:s3cr3t-redis@cache:6379/0 nor postgresql://app:pa%40ss@db/x; "
        "conninfo host=db password='p w\\'d' user=app, password=plain dbname=x"
    )
    masked = redaction.redact(text)
    for secret in ("s3cr3t-redis", "pa%40ss", "p w", "plain"):
        assert secret not in masked
    assert "redis://:***@cache:6379/0" in masked
    assert "postgresql://app:***@db/x" in masked
    assert "user=app" in masked


def test_remembered_secrets_are_masked_in_every_form_they_are_quoted_in() -> None:
    redaction.remember(["p@ss/w%rd", None, "", "abc"])
    masked = redaction.redact('token "pa%zz" p@ss/w%rd p%40ss%2Fw%25rd and abc stays')
    assert "p@ss/w%rd" not in masked and "p%40ss%2Fw%25rd" not in masked
    assert masked.endswith("and abc stays")  # three characters: too short to mask everywhere


def test_the_settings_remember_every_secret_they_hold() -> None:
    Settings.from_environ(
        {
            **BASE,
            "NEXT_PRIVATE_DATABASE_URL": "postgresql://app:db-password-1@db/docjobs",
            "NEXT_PRIVATE_REDIS_URL": "redis://:redis-password-2@cache:6379",
            "NEXT_PRIVATE_SMTP_PASSWORD": "smtp-password-3",
            "INNGEST_SIGNING_KEY": "signkey-prod-abcdef012345",
            "NEXT_PUBLIC_WEBAPP_URL": "https://user:webapp-password-4@sign.example.com",
        }
    )
    line = "db-password-1 redis-password-2 smtp-password-3 signkey-prod-abcdef012345 webapp-password-4"
    assert "*** *** *** *** ***" == redaction.redact(line)


@pytest.mark.parametrize("name", ["NEXT_PUBLIC_WEBAPP_URL", "INNGEST_BASE_URL", "INNGEST_SERVE_ORIGIN"])
def test_a_refused_url_is_echoed_without_its_password(name: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({**BASE, name: "ftp://admin:hunter2-url@example.com"})
    message = str(raised.value)
    assert message.startswith(f"{name}: ")
    assert "hunter2-url" not in message
    assert "ftp://admin:***@example.com" in message


def test_a_database_url_libpq_cannot_read_is_refused_without_quoting_it() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({**BASE, "NEXT_PRIVATE_DATABASE_URL": "postgresql://app:pa%zzSECRET@db/x"})
    assert str(raised.value).startswith("NEXT_PRIVATE_DATABASE_URL: cannot be read by libpq")
    assert "SECRET" not in str(raised.value)


def _log_through_safe_records(logger_name: str, emit: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(docjobs_logging.KeyValueFormatter(docjobs_logging.LOG_FORMAT))
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.propagate = False
    docjobs_logging.protect(logger)
    try:
        assert callable(emit)
        emit(logger)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


def test_a_logged_request_value_cannot_forge_a_line() -> None:
    path = "/api/jobs/x\n12:00:00 CRITICAL docjobs: forged\r\x00\u2028"
    output = _log_through_safe_records(
        "test.injection",
        lambda logger: logger.warning("Refused %s.", path, extra={"reason": "bad\nreason"}),
    )
    assert 1 == len(output.splitlines()), output
    assert "x\\n12:00:00 CRITICAL docjobs: forged\\r\\x00\\u2028" in output
    assert "reason=bad\\nreason" in output


def test_a_traceback_keeps_its_lines_but_loses_its_secrets() -> None:
    redaction.remember(["tb-secret-value"])

    def emit(logger: logging.Logger) -> None:
        try:
            raise ValueError("connection to postgresql://u:tb-url-password@db failed: tb-secret-value")
        except ValueError:
            logger.exception("Failed with %s", "tb-secret-value", extra={"action": "failed"})

    output = _log_through_safe_records("test.traceback", emit)
    assert "tb-secret-value" not in output and "tb-url-password" not in output
    first, *rest = output.splitlines()
    assert first.endswith("Failed with *** [action=failed]")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: connection to postgresql://u:***@db failed: ***"


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("NEXT_PRIVATE_DATABASE_URL", "postgresql://app:p@ssw0rd-Tail-Secret@db:5432/x"),
        ("NEXT_PRIVATE_REDIS_URL", "redis://:p@ssw0rd-Tail-Secret@cache:6379"),
        ("NEXT_PUBLIC_WEBAPP_URL", "https://u:p@ssw0rd-Tail-Secret@sign.example.com"),
    ],
)
def test_a_url_whose_password_holds_an_at_sign_is_refused_before_a_driver_splits_it(
    name: str, url: str
) -> None:
    # libpq reads up to the first "@" and would quote "ssw0rd-Tail-Secret@db" as the host.
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({**BASE, name: url})
    message = str(raised.value)
    assert message.startswith(f"{name}: its user or password holds an '@': write it %40")
    assert "Tail-Secret" not in message
