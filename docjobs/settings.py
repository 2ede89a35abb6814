"""The one place that reads configuration: a typed, validated :class:`Settings`.

Variable names follow the signing service docjobs serves (``NEXT_PRIVATE_*``,
``NEXT_PUBLIC_*``, ``INNGEST_*``, ``NODE_ENV``, ``PORT``); docjobs' own settings use
the ``NEXT_PRIVATE_JOBS_`` prefix. An empty variable counts as unset, so a
compose file's ``VAR=`` line means "use the default".

Unlike the reference service, an unknown provider name is an error rather than a
silent fallback to ``local``: a typo should not move a deployment onto another queue.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from docjobs import errors, redaction

Provider = Literal["local", "bullmq", "inngest"]
#: The reference's SMTP transports; its HTTP-API ones (resend, mailchannels) are not offered.
SmtpTransport = Literal["smtp-auth", "smtp-api"]

DEFAULT_WEBAPP_URL = "http://localhost:3000"
DEFAULT_PORT = 3000
DEFAULT_REDIS_PREFIX = "documenso"
DEFAULT_BULLMQ_CONCURRENCY = 10
DEFAULT_INNGEST_APP_ID = "documenso-app"
DEFAULT_CONCURRENCY = 8
DEFAULT_POLL_INTERVAL_SECONDS = 1.0
DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_MIN_BACKOFF_SECONDS = 1.0
DEFAULT_MAX_BACKOFF_SECONDS = 3600.0
DEFAULT_POOL_SIZE = 10
DEFAULT_RETENTION_DAYS = 30.0
DEFAULT_DATA_DIR = ".docjobs"
DEFAULT_SMTP_HOST = "localhost"
DEFAULT_SMTP_PORT = 587
DEFAULT_SMTP_FROM_NAME = "Documenso"
DEFAULT_SMTP_FROM_ADDRESS = "noreply@documenso.com"
#: The largest request body any endpoint reads; bigger ones get 413 while they arrive.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
#: How long a request's head, and then its body, may take to arrive; later ones are refused.
DEFAULT_READ_TIMEOUT_SECONDS = 10.0
#: The largest job payload (its JSON); bigger ones are refused at send.
DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024

#: Where the app serves Inngest, under the base path, unless INNGEST_SERVE_PATH says otherwise.
INNGEST_SERVE_PATH = "/api/jobs"
#: What precedes the hex part of an Inngest signing key.
SIGNING_KEY_PREFIX = re.compile(r"^signkey-\w+-")

#: NEXT_PRIVATE_JOBS_<NAME>_CRON overrides one schedule of the cron table.
CRON_OVERRIDE_PREFIX = "NEXT_PRIVATE_JOBS_"
CRON_OVERRIDE_SUFFIX = "_CRON"


@dataclass(frozen=True)
class ProviderRules:
    """What the settings ask of one provider: looked up by name, never branched on.

    Attributes:
        requires: The URL fields the provider cannot start without.
        self_trigger_key: Production needs ``NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY``
            (it signs the local provider's self-trigger requests).
        inngest_keys: Production needs ``INNGEST_SIGNING_KEY`` and ``INNGEST_EVENT_KEY``.
        concurrency_field: The field that counts a worker's threads.
        default_retries: Attempts after the first unless ``NEXT_PRIVATE_JOBS_MAX_RETRIES`` says.
    """

    requires: tuple[str, ...] = ()
    self_trigger_key: bool = False
    inngest_keys: bool = False
    concurrency_field: str = "concurrency"
    default_retries: int = 3


#: Each provider's rules. Retries as in the reference service: local 4 attempts, BullMQ 3,
#: Inngest 5; BullMQ's worker threads are ``NEXT_PRIVATE_BULLMQ_CONCURRENCY``, as there.
PROVIDER_RULES: dict[str, ProviderRules] = {
    "local": ProviderRules(requires=("database_url",), self_trigger_key=True, default_retries=3),
    "bullmq": ProviderRules(
        requires=("database_url", "redis_url"), concurrency_field="bullmq_concurrency", default_retries=2
    ),
    "inngest": ProviderRules(inngest_keys=True, default_retries=4),
}
#: Attempts after the first, per provider.
PROVIDER_MAX_RETRIES: dict[str, int] = {name: rules.default_retries for name, rules in PROVIDER_RULES.items()}
#: How a missing required URL is described.
_REQUIRED_URLS = {
    "database_url": ("NEXT_PRIVATE_DATABASE_URL", "postgresql://"),
    "redis_url": ("NEXT_PRIVATE_REDIS_URL", "redis://"),
}


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
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
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
_SENSITIVE = {
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


class Settings(BaseModel):
    """Every setting docjobs reads, typed. Build it with :meth:`from_environ`."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    # The reference service's variables.
    provider: Provider = Field("local", alias="NEXT_PRIVATE_JOBS_PROVIDER")
    webapp_url: HttpUrl = Field(DEFAULT_WEBAPP_URL, alias="NEXT_PUBLIC_WEBAPP_URL", repr=False)
    internal_webapp_url: HttpUrl | None = Field(None, alias="NEXT_PRIVATE_INTERNAL_WEBAPP_URL", repr=False)
    encryption_secondary_key: SecretStr | None = Field(None, alias="NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY")
    # URLs may carry passwords: kept out of the settings' repr.
    redis_url: RedisUrl | None = Field(None, alias="NEXT_PRIVATE_REDIS_URL", repr=False)
    redis_prefix: str = Field(DEFAULT_REDIS_PREFIX, alias="NEXT_PRIVATE_REDIS_PREFIX")
    bullmq_concurrency: int = Field(DEFAULT_BULLMQ_CONCURRENCY, ge=1, alias="NEXT_PRIVATE_BULLMQ_CONCURRENCY")
    inngest_app_id: str = Field(DEFAULT_INNGEST_APP_ID, alias="NEXT_PRIVATE_INNGEST_APP_ID")
    inngest_event_key: SecretStr | None = Field(None, alias="INNGEST_EVENT_KEY")
    inngest_signing_key: SigningKey | None = Field(None, alias="INNGEST_SIGNING_KEY")
    inngest_signing_key_fallback: SigningKey | None = Field(None, alias="INNGEST_SIGNING_KEY_FALLBACK")
    # Where Inngest's APIs are (events and sync): Inngest Cloud unless set.
    inngest_base_url: HttpUrl | None = Field(None, alias="INNGEST_BASE_URL", repr=False)
    # Where Inngest calls the app: what sync registers, whatever a request's Host says.
    inngest_serve_origin: HttpUrl | None = Field(None, alias="INNGEST_SERVE_ORIGIN")
    inngest_serve_path: ServePath | None = Field(None, alias="INNGEST_SERVE_PATH")
    node_env: str | None = Field(None, alias="NODE_ENV")
    base_path: BasePath = Field("", alias="NEXT_PUBLIC_BASE_PATH")
    webhook_ssrf_bypass_hosts: str = Field("", alias="NEXT_PRIVATE_WEBHOOK_SSRF_BYPASS_HOSTS")

    # Outgoing mail, as in the reference service.
    smtp_transport: SmtpTransport = Field("smtp-auth", alias="NEXT_PRIVATE_SMTP_TRANSPORT")
    smtp_host: str = Field(DEFAULT_SMTP_HOST, alias="NEXT_PRIVATE_SMTP_HOST")
    smtp_port: int = Field(DEFAULT_SMTP_PORT, ge=1, le=65535, alias="NEXT_PRIVATE_SMTP_PORT")
    smtp_username: str | None = Field(None, alias="NEXT_PRIVATE_SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, alias="NEXT_PRIVATE_SMTP_PASSWORD")
    smtp_apikey_user: str = Field("apikey", alias="NEXT_PRIVATE_SMTP_APIKEY_USER")
    smtp_apikey: SecretStr | None = Field(None, alias="NEXT_PRIVATE_SMTP_APIKEY")
    smtp_secure: bool = Field(False, alias="NEXT_PRIVATE_SMTP_SECURE")
    smtp_unsafe_ignore_tls: bool = Field(False, alias="NEXT_PRIVATE_SMTP_UNSAFE_IGNORE_TLS")
    smtp_from_name: str = Field(DEFAULT_SMTP_FROM_NAME, alias="NEXT_PRIVATE_SMTP_FROM_NAME")
    smtp_from_address: EmailAddress = Field(DEFAULT_SMTP_FROM_ADDRESS, alias="NEXT_PRIVATE_SMTP_FROM_ADDRESS")

    # Sealing: the certificate that signs completed documents, as in the reference.
    signing_transport: Literal["local"] = Field("local", alias="NEXT_PRIVATE_SIGNING_TRANSPORT")
    signing_file_path: Path | None = Field(None, alias="NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH")
    signing_file_contents: SecretStr | None = Field(None, alias="NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS")
    signing_passphrase: SecretStr | None = Field(None, alias="NEXT_PRIVATE_SIGNING_PASSPHRASE")
    signing_timestamp_authority: str = Field("", alias="NEXT_PRIVATE_SIGNING_TIMESTAMP_AUTHORITY")
    signing_contact_info: str | None = Field(None, alias="NEXT_PUBLIC_SIGNING_CONTACT_INFO")
    legacy_signing_subfilter: bool = Field(False, alias="NEXT_PRIVATE_USE_LEGACY_SIGNING_SUBFILTER")

    # Where docjobs' own tables live, and where the web app listens.
    database_url: PostgresUrl | None = Field(None, alias="NEXT_PRIVATE_DATABASE_URL", repr=False)
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, alias="PORT")

    # docjobs' own settings.
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=1024, alias="NEXT_PRIVATE_JOBS_CONCURRENCY")
    embedded_worker: bool = Field(True, alias="NEXT_PRIVATE_JOBS_EMBEDDED_WORKER")
    poll_interval_seconds: PositiveSeconds = Field(
        DEFAULT_POLL_INTERVAL_SECONDS, alias="NEXT_PRIVATE_JOBS_POLL_INTERVAL_SECONDS"
    )
    lease_seconds: PositiveSeconds = Field(DEFAULT_LEASE_SECONDS, alias="NEXT_PRIVATE_JOBS_LEASE_SECONDS")
    max_retries: int | None = Field(None, ge=0, alias="NEXT_PRIVATE_JOBS_MAX_RETRIES")
    min_backoff_seconds: PositiveSeconds = Field(
        DEFAULT_MIN_BACKOFF_SECONDS, alias="NEXT_PRIVATE_JOBS_MIN_BACKOFF_SECONDS"
    )
    max_backoff_seconds: PositiveSeconds = Field(
        DEFAULT_MAX_BACKOFF_SECONDS, alias="NEXT_PRIVATE_JOBS_MAX_BACKOFF_SECONDS"
    )
    pool_size: int = Field(DEFAULT_POOL_SIZE, ge=1, le=1000, alias="NEXT_PRIVATE_JOBS_DB_POOL_SIZE")
    listen: bool = Field(True, alias="NEXT_PRIVATE_JOBS_LISTEN")
    synchronous_commit: bool = Field(False, alias="NEXT_PRIVATE_JOBS_SYNCHRONOUS_COMMIT")
    retention_days: Annotated[float, Field(gt=0)] = Field(
        DEFAULT_RETENTION_DAYS, alias="NEXT_PRIVATE_JOBS_RETENTION_DAYS"
    )
    data_dir: Path = Field(Path(DEFAULT_DATA_DIR), alias="NEXT_PRIVATE_JOBS_DATA_DIR")
    # The admin board's JSON API accepts ``Authorization: Bearer <token>`` when set.
    board_token: SecretStr | None = Field(None, alias="NEXT_PRIVATE_JOBS_BOARD_TOKEN")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", alias="NEXT_PRIVATE_JOBS_LOG_LEVEL"
    )

    # What the web app accepts from the network (see docs/security.md).
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES, ge=1024, le=1024**3, alias="NEXT_PRIVATE_JOBS_MAX_BODY_BYTES"
    )
    read_timeout_seconds: PositiveSeconds = Field(
        DEFAULT_READ_TIMEOUT_SECONDS, alias="NEXT_PRIVATE_JOBS_READ_TIMEOUT_SECONDS"
    )
    max_payload_bytes: int = Field(
        DEFAULT_MAX_PAYLOAD_BYTES, ge=1024, le=1024**3, alias="NEXT_PRIVATE_JOBS_MAX_PAYLOAD_BYTES"
    )
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (comma list of
    # addresses or networks); nobody's by default, loopback included.
    trusted_proxies: Networks = Field("", alias="NEXT_PRIVATE_JOBS_TRUSTED_PROXIES")

    # The scheduler: the zone cron fields are read in, schedule overrides
    # (NEXT_PRIVATE_JOBS_<NAME>_CRON, checked against the table by docjobs.scheduler),
    # and whether `docjobs web` runs the scheduler itself.
    cron_timezone: TimeZone = Field("UTC", alias="NEXT_PRIVATE_JOBS_CRON_TZ")
    cron_overrides: dict[str, str] = Field(default_factory=dict)
    embedded_scheduler: bool = Field(True, alias="NEXT_PRIVATE_JOBS_EMBEDDED_SCHEDULER")

    # PgBouncer and the connection budget (issue 18, item 6; docs/operations.md).
    # NEXT_PRIVATE_DATABASE_URL goes through a transaction pooler: no start-up options,
    # no session state, no prepared statements. LISTEN and migrations use the direct URL
    # whenever it is set; without it, in this mode, consumers poll.
    transaction_pooling: bool = Field(False, alias="NEXT_PRIVATE_JOBS_DB_TRANSACTION_POOLING")
    direct_database_url: PostgresUrl | None = Field(
        None, alias="NEXT_PRIVATE_DIRECT_DATABASE_URL", repr=False
    )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings.

        Args:
            environ: The variables to read; ``os.environ`` when omitted.

        Returns:
            The validated settings.

        Raises:
            errors.SettingsError: One message naming the first bad variable and what
                it accepts.
        """
        source = os.environ if environ is None else environ
        names = {field.alias for field in cls.model_fields.values() if field.alias}
        names.add("NEXT_PRIVATE_INNGEST_EVENT_KEY")
        values: dict[str, Any] = {name: source[name] for name in names if source.get(name, "") != ""}
        # The reference reads INNGEST_EVENT_KEY || NEXT_PRIVATE_INNGEST_EVENT_KEY: the first wins.
        fallback_event_key = values.pop("NEXT_PRIVATE_INNGEST_EVENT_KEY", None)
        if fallback_event_key is not None:
            values.setdefault("INNGEST_EVENT_KEY", fallback_event_key)
        values["cron_overrides"] = {
            name: value
            for name, value in source.items()
            if name.startswith(CRON_OVERRIDE_PREFIX) and name.endswith(CRON_OVERRIDE_SUFFIX) and value != ""
        }
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            raise errors.SettingsError(_describe(exc, values)) from None
        settings._validated()
        return settings

    def secret_values(self) -> list[str]:
        """Every secret these settings hold: keys, passwords, certificates, URL passwords."""
        values = [
            value.get_secret_value()
            for value in (getattr(self, name) for name in type(self).model_fields)
            if isinstance(value, SecretStr)
        ]
        for url in (
            self.database_url,
            self.direct_database_url,
            self.redis_url,
            self.webapp_url,
            self.internal_webapp_url,
            self.inngest_base_url,
            self.inngest_serve_origin,
        ):
            values.extend(redaction.url_secrets(url))
        return values

    def _validated(self) -> None:
        """What every new Settings goes through: its secrets remembered, then the cross-field rules."""
        redaction.remember(self.secret_values())
        self._check_provider_requirements()

    def _check_provider_requirements(self) -> None:
        rules = PROVIDER_RULES[self.provider]
        for field in rules.requires:
            if getattr(self, field) is None:
                variable, scheme = _REQUIRED_URLS[field]
                raise errors.SettingsError(
                    f"{variable} is required with NEXT_PRIVATE_JOBS_PROVIDER={self.provider}: "
                    f"set it to a {scheme} URL"
                )
        if rules.self_trigger_key and self.encryption_secondary_key is None and not self.is_development:
            raise errors.SettingsError(
                "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY is required in production with "
                f"NEXT_PRIVATE_JOBS_PROVIDER={self.provider}: it signs the self-trigger requests "
                "(only NODE_ENV=development generates one)"
            )
        if rules.inngest_keys and not self.is_development:
            for name, value in (
                ("INNGEST_SIGNING_KEY", self.inngest_signing_key),
                ("INNGEST_EVENT_KEY", self.inngest_event_key),
            ):
                if value is None:
                    raise errors.SettingsError(
                        f"{name} is required in production with NEXT_PRIVATE_JOBS_PROVIDER={self.provider} "
                        "(only NODE_ENV=development runs against a dev server without keys)"
                    )
        if self.smtp_transport == "smtp-api" and self.smtp_apikey is None:
            raise errors.SettingsError(
                "NEXT_PRIVATE_SMTP_APIKEY is required with NEXT_PRIVATE_SMTP_TRANSPORT=smtp-api"
            )
        if self.min_backoff_seconds > self.max_backoff_seconds:
            raise errors.SettingsError(
                "NEXT_PRIVATE_JOBS_MIN_BACKOFF_SECONDS must not exceed NEXT_PRIVATE_JOBS_MAX_BACKOFF_SECONDS"
            )

    @property
    def worker_threads(self) -> int:
        """Threads of a worker: ``NEXT_PRIVATE_BULLMQ_CONCURRENCY`` on bullmq, as the reference."""
        threads: int = getattr(self, PROVIDER_RULES[self.provider].concurrency_field)
        return threads

    def with_concurrency(self, threads: int) -> Settings:
        """A copy whose workers run ``threads`` threads (in the field the provider reads).

        Raises:
            errors.SettingsError: ``threads`` is not a positive number.
        """
        return self.replace(**{PROVIDER_RULES[self.provider].concurrency_field: threads})

    @property
    def self_trigger_url(self) -> str:
        """The internal URL plus the base path, unless the URL already ends with it.

        The reference relies on the internal URL already containing the base path and
        breaks silently when it does not; here either form works.
        """
        url = self.internal_url
        if self.base_path and not urlsplit(url).path.rstrip("/").endswith(self.base_path):
            url += self.base_path
        return url

    @property
    def is_development(self) -> bool:
        """Development means ``NODE_ENV=development`` exactly; anything else is production."""
        return self.node_env == "development"

    @property
    def internal_url(self) -> str:
        """The base URL the app calls itself on (falls back to the public URL)."""
        return self.internal_webapp_url or self.webapp_url

    @property
    def webhook_ssrf_bypass(self) -> frozenset[str]:
        """Hosts webhooks may reach on private addresses, lower-cased."""
        return frozenset(
            host.strip().lower() for host in self.webhook_ssrf_bypass_hosts.split(",") if host.strip()
        )

    @property
    def inngest_serve_url(self) -> str:
        """Where Inngest calls the app: ``INNGEST_SERVE_ORIGIN`` (else the public URL's origin)
        followed by ``INNGEST_SERVE_PATH`` (else the base path and ``/api/jobs``)."""
        parts = urlsplit(self.inngest_serve_origin or self.webapp_url)
        host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
        port = f":{parts.port}" if parts.port is not None else ""
        path = self.inngest_serve_path or f"{self.base_path}{INNGEST_SERVE_PATH}"
        return f"{parts.scheme}://{host}{port}{path}"

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``NEXT_PRIVATE_JOBS_TRUSTED_PROXIES`` as networks (a lone address is a /32 or /128)."""
        return tuple(
            ipaddress.ip_network(item.strip(), strict=False)
            for item in self.trusted_proxies.split(",")
            if item.strip()
        )

    @property
    def timestamp_authorities(self) -> list[str]:
        """Time-stamping authority URLs (one is picked per signature)."""
        return [url.strip() for url in self.signing_timestamp_authority.split(",") if url.strip()]

    @property
    def retries(self) -> int:
        """Retries after the first attempt: the setting, else the provider's default."""
        return PROVIDER_RULES[self.provider].default_retries if self.max_retries is None else self.max_retries

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some fields changed (by field name), validated again.

        Raises:
            errors.SettingsError: A changed value is invalid (named by its variable).
        """
        data = self.model_dump()
        data.update(changes)
        try:
            settings = type(self).model_validate(data)
        except ValidationError as exc:
            fields = type(self).model_fields
            by_alias = {
                (fields[name].alias or name) if name in fields else name: value
                for name, value in changes.items()
            }
            raise errors.SettingsError(_describe(exc, by_alias)) from None
        settings._validated()
        return settings


def _describe(exc: ValidationError, values: Mapping[str, Any]) -> str:
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "settings"
    field = Settings.model_fields.get(name)
    if field is not None and field.alias:
        name = field.alias
    message = error["msg"].removeprefix("Value error, ")
    if name in _SENSITIVE or name not in values:
        return f"{name}: {message}"
    return redaction.redact(f"{name}: {message} (got {values[name]!r})")
