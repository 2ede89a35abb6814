"""The kinds of value a setting takes, each checked with a message saying what it must be.

Each is an ``Annotated`` type :class:`docjobs.settings.Settings` gives its fields; a
refused value is described by :func:`describe`, which never echoes a secret.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from docjobs import errors, queues, redaction
from docjobs.logging import first_line

#: What precedes the hex part of an Inngest signing key.
SIGNING_KEY_PREFIX = re.compile(r"^signkey-\w+-")


def _unambiguous_credentials(netloc: str) -> None:
    """Refuse a second ``@`` in a URL's user or password.

    Python reads such a URL up to its last ``@``, libpq up to its first: the two would
    disagree on the host, and a driver's error would quote part of the password.
    """
    if netloc.count("@") > 1:
        raise ValueError("its user or password holds an '@': write it %40")


def http_url(value: str) -> str:
    """``value`` if it is an http(s) URL with a host (and no second ``@``), without a trailing slash.

    Raises:
        ValueError: Saying what it must be.
    """
    parts = urlsplit(value)
    _unambiguous_credentials(parts.netloc)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value.rstrip("/")


def _postgres_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("must be a postgresql:// URL")
    _unambiguous_credentials(parts.netloc)
    try:
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
    from psycopg.conninfo import conninfo_to_dict  # imported here: the settings load without it

    try:
        conninfo_to_dict(value)
    except Exception as exc:  # noqa: BLE001 - any refusal of libpq's parser
        # psycopg quotes the part it could not read, which may be the password.
        reason = first_line(exc)
        for secret in redaction.url_secrets(value):
            reason = reason.replace(secret, redaction.MASK)
        raise ValueError(
            f"cannot be read by libpq ({reason}); a '%' in a password is written %25, an '@' %40"
        ) from None
    return value


def _redis_url(value: str) -> str:
    parts = urlsplit(value)
    _unambiguous_credentials(parts.netloc)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return value


def _email_address(value: str) -> str:
    local, _, domain = value.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in value):
        raise ValueError("must be an email address")
    return value


def _base_path(value: str) -> str:
    if value and not value.startswith("/"):
        raise ValueError("must start with '/'")
    return value.rstrip("/")


def _serve_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    return value.rstrip("/") or "/"


def _networks(value: str) -> str:
    for item in value.split(","):
        if item.strip():
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"must be a comma list of IP addresses or networks (CIDR); {item.strip()!r} is neither"
                ) from None
    return value


def _signing_key(value: SecretStr) -> SecretStr:
    # Inngest hashes the key's hex part (after "signkey-<env>-") to authenticate the app.
    hex_part = SIGNING_KEY_PREFIX.sub("", value.get_secret_value())
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", hex_part):
        raise ValueError("must be an Inngest signing key: signkey-<env>-<hex digits>")
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as UTC or Europe/Berlin") from None
    return value


HttpUrl = Annotated[str, AfterValidator(http_url)]
PostgresUrl = Annotated[str, AfterValidator(_postgres_url)]
RedisUrl = Annotated[str, AfterValidator(_redis_url)]
BasePath = Annotated[str, AfterValidator(_base_path)]
ServePath = Annotated[str, AfterValidator(_serve_path)]
Networks = Annotated[str, AfterValidator(_networks)]
EmailAddress = Annotated[str, AfterValidator(_email_address)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
SigningKey = Annotated[SecretStr, AfterValidator(_signing_key)]
PositiveSeconds = Annotated[float, Field(gt=0)]

#: Variables whose values are never echoed in an error message.
SENSITIVE_VARIABLES = {
    "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY",
    "NEXT_PRIVATE_DATABASE_URL",
    "NEXT_PRIVATE_DIRECT_DATABASE_URL",
    "NEXT_PRIVATE_REDIS_URL",
    "INNGEST_EVENT_KEY",
    "NEXT_PRIVATE_INNGEST_EVENT_KEY",
    "INNGEST_SIGNING_KEY",
    "INNGEST_SIGNING_KEY_FALLBACK",
    "NEXT_PRIVATE_SMTP_PASSWORD",
    "NEXT_PRIVATE_SMTP_APIKEY",
    "NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS",
    "NEXT_PRIVATE_SIGNING_PASSPHRASE",
}


def describe(exc: ValidationError, values: Mapping[str, Any], fields: Mapping[str, FieldInfo]) -> str:
    """One line naming the first refused variable, what it accepts and (unless secret) what it got.

    Args:
        exc: Pydantic's refusal.
        values: The values given, by variable name.
        fields: The settings model's fields, whose aliases are the variables' names.
    """
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "settings"
    field = fields.get(name)
    if field is not None and field.alias:
        name = field.alias
    message = error["msg"].removeprefix("Value error, ")
    if name in SENSITIVE_VARIABLES or name not in values:
        return f"{name}: {message}"
    return redaction.redact(f"{name}: {message} (got {values[name]!r})")


def queue_concurrency(source: Mapping[str, str]) -> dict[str, int]:
    """The per-queue caps: :data:`queues.DEFAULT_QUEUE_CONCURRENCY`, then each
    ``NEXT_PRIVATE_JOBS_<QUEUE>_CONCURRENCY`` set in ``source`` (an empty one keeps the default).

    Raises:
        errors.SettingsError: One line naming the variable: a queue docjobs does not have
            (a typo would leave the real queue uncapped), or not a whole number from 1 up.
    """
    caps = dict(queues.DEFAULT_QUEUE_CONCURRENCY)
    prefix, suffix = "NEXT_PRIVATE_JOBS_", "_CONCURRENCY"
    for name, value in source.items():
        # NEXT_PRIVATE_JOBS_CONCURRENCY (the threads) is too short to name a queue.
        if value == "" or len(name) <= len(prefix + suffix) or not name.startswith(prefix):
            continue
        if not name.endswith(suffix):
            continue
        queue = name[len(prefix) : -len(suffix)]
        known = ", ".join(queues.variable(known) for known in queues.QUEUES)
        if queue.lower() not in queues.QUEUES:
            raise errors.SettingsError(
                f"{name}: there is no queue {queue.lower()!r}; the variables are {known}"
            )
        if queue != queue.upper():
            raise errors.SettingsError(
                f"{name}: write the queue in capitals, as {queues.variable(queue.lower())}"
            )
        digits = value.strip()
        # ASCII digits only: int() would also take "+3", "1_0" and other scripts' digits.
        cap = int(digits) if digits.isascii() and digits.isdigit() else 0
        if not 1 <= cap <= queues.MAX_QUEUE_CONCURRENCY:
            raise errors.SettingsError(
                f"{name}: must be a whole number from 1 to {queues.MAX_QUEUE_CONCURRENCY} (got {value!r})"
            )
        caps[queue.lower()] = cap
    return caps
