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
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from docjobs import defaults, errors, queues, redaction
from docjobs.settings_rules import PROVIDER_RULES, check_cross_field_rules, missing_secrets
from docjobs.settings_values import (
    BasePath,
    EmailAddress,
    HttpUrl,
    Networks,
    PositiveSeconds,
    PostgresUrl,
    RedisUrl,
    ServePath,
    SigningKey,
    TimeZone,
    describe,
    queue_concurrency,
)

Provider = Literal["local", "bullmq", "inngest", "stub"]
#: The reference's SMTP transports; its HTTP-API ones (resend, mailchannels) are not offered.
SmtpTransport = Literal["smtp-auth", "smtp-api"]

#: NEXT_PRIVATE_JOBS_<NAME>_CRON overrides one schedule of the cron table.
CRON_OVERRIDE_PREFIX = "NEXT_PRIVATE_JOBS_"
CRON_OVERRIDE_SUFFIX = "_CRON"


class Settings(BaseModel):
    """Every setting docjobs reads, typed. Build it with :meth:`from_environ`."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    # The reference service's variables.
    provider: Provider = Field("local", alias="NEXT_PRIVATE_JOBS_PROVIDER")
    webapp_url: HttpUrl = Field(defaults.DEFAULT_WEBAPP_URL, alias="NEXT_PUBLIC_WEBAPP_URL", repr=False)
    internal_webapp_url: HttpUrl | None = Field(None, alias="NEXT_PRIVATE_INTERNAL_WEBAPP_URL", repr=False)
    encryption_secondary_key: SecretStr | None = Field(None, alias="NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY")
    # URLs may carry passwords: kept out of the settings' repr.
    redis_url: RedisUrl | None = Field(None, alias="NEXT_PRIVATE_REDIS_URL", repr=False)
    redis_prefix: str = Field(defaults.DEFAULT_REDIS_PREFIX, alias="NEXT_PRIVATE_REDIS_PREFIX")
    bullmq_concurrency: int = Field(
        defaults.DEFAULT_BULLMQ_CONCURRENCY, ge=1, alias="NEXT_PRIVATE_BULLMQ_CONCURRENCY"
    )
    inngest_app_id: str = Field(defaults.DEFAULT_INNGEST_APP_ID, alias="NEXT_PRIVATE_INNGEST_APP_ID")
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
    smtp_host: str = Field(defaults.DEFAULT_SMTP_HOST, alias="NEXT_PRIVATE_SMTP_HOST")
    smtp_port: int = Field(defaults.DEFAULT_SMTP_PORT, ge=1, le=65535, alias="NEXT_PRIVATE_SMTP_PORT")
    smtp_username: str | None = Field(None, alias="NEXT_PRIVATE_SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(None, alias="NEXT_PRIVATE_SMTP_PASSWORD")
    smtp_apikey_user: str = Field("apikey", alias="NEXT_PRIVATE_SMTP_APIKEY_USER")
    smtp_apikey: SecretStr | None = Field(None, alias="NEXT_PRIVATE_SMTP_APIKEY")
    smtp_secure: bool = Field(False, alias="NEXT_PRIVATE_SMTP_SECURE")
    smtp_unsafe_ignore_tls: bool = Field(False, alias="NEXT_PRIVATE_SMTP_UNSAFE_IGNORE_TLS")
    smtp_from_name: str = Field(defaults.DEFAULT_SMTP_FROM_NAME, alias="NEXT_PRIVATE_SMTP_FROM_NAME")
    smtp_from_address: EmailAddress = Field(
        defaults.DEFAULT_SMTP_FROM_ADDRESS, alias="NEXT_PRIVATE_SMTP_FROM_ADDRESS"
    )
    # Where organisation limit alerts tell support (issue 22); unset: support is not told.
    support_email: EmailAddress | None = Field(None, alias="NEXT_PUBLIC_SUPPORT_EMAIL")

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
    port: int = Field(defaults.DEFAULT_PORT, ge=1, le=65535, alias="PORT")

    # docjobs' own settings.
    concurrency: int = Field(
        defaults.DEFAULT_CONCURRENCY, ge=1, le=1024, alias="NEXT_PRIVATE_JOBS_CONCURRENCY"
    )
    embedded_worker: bool = Field(True, alias="NEXT_PRIVATE_JOBS_EMBEDDED_WORKER")
    poll_interval_seconds: PositiveSeconds = Field(
        defaults.DEFAULT_POLL_INTERVAL_SECONDS, alias="NEXT_PRIVATE_JOBS_POLL_INTERVAL_SECONDS"
    )
    lease_seconds: PositiveSeconds = Field(
        defaults.DEFAULT_LEASE_SECONDS, alias="NEXT_PRIVATE_JOBS_LEASE_SECONDS"
    )
    max_retries: int | None = Field(None, ge=0, alias="NEXT_PRIVATE_JOBS_MAX_RETRIES")
    min_backoff_seconds: PositiveSeconds = Field(
        defaults.DEFAULT_MIN_BACKOFF_SECONDS, alias="NEXT_PRIVATE_JOBS_MIN_BACKOFF_SECONDS"
    )
    max_backoff_seconds: PositiveSeconds = Field(
        defaults.DEFAULT_MAX_BACKOFF_SECONDS, alias="NEXT_PRIVATE_JOBS_MAX_BACKOFF_SECONDS"
    )
    pool_size: int = Field(defaults.DEFAULT_POOL_SIZE, ge=1, le=1000, alias="NEXT_PRIVATE_JOBS_DB_POOL_SIZE")
    listen: bool = Field(True, alias="NEXT_PRIVATE_JOBS_LISTEN")
    # Issue 21, durable by default: a standalone enqueue waits for the WAL flush; ``false``
    # trades that for speed (claims, acks and history never wait: docs/reliability.md).
    synchronous_commit: bool = Field(True, alias="NEXT_PRIVATE_JOBS_SYNCHRONOUS_COMMIT")
    retention_days: Annotated[float, Field(gt=0)] = Field(
        defaults.DEFAULT_RETENTION_DAYS, alias="NEXT_PRIVATE_JOBS_RETENTION_DAYS"
    )
    data_dir: Path = Field(Path(defaults.DEFAULT_DATA_DIR), alias="NEXT_PRIVATE_JOBS_DATA_DIR")
    # The admin board's JSON API accepts ``Authorization: Bearer <token>`` when set.
    board_token: SecretStr | None = Field(None, alias="NEXT_PRIVATE_JOBS_BOARD_TOKEN")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", alias="NEXT_PRIVATE_JOBS_LOG_LEVEL"
    )

    # What the web app accepts from the network (see docs/security.md).
    max_body_bytes: int = Field(
        defaults.DEFAULT_MAX_BODY_BYTES, ge=1024, le=1024**3, alias="NEXT_PRIVATE_JOBS_MAX_BODY_BYTES"
    )
    read_timeout_seconds: PositiveSeconds = Field(
        defaults.DEFAULT_READ_TIMEOUT_SECONDS, alias="NEXT_PRIVATE_JOBS_READ_TIMEOUT_SECONDS"
    )
    max_payload_bytes: int = Field(
        defaults.DEFAULT_MAX_PAYLOAD_BYTES, ge=1024, le=1024**3, alias="NEXT_PRIVATE_JOBS_MAX_PAYLOAD_BYTES"
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

    # Per-queue caps (issue 22): NEXT_PRIVATE_JOBS_<QUEUE>_CONCURRENCY, read by
    # settings_values.queue_concurrency over docjobs.queues' defaults.
    queue_concurrency: dict[str, int] = Field(default_factory=lambda: dict(queues.DEFAULT_QUEUE_CONCURRENCY))

    # PgBouncer and the connection budget (issue 18, item 6; docs/operations.md).
    # NEXT_PRIVATE_DATABASE_URL goes through a transaction pooler: no start-up options,
    # no session state, no prepared statements. LISTEN and migrations use the direct URL
    # whenever it is set; without it, in this mode, consumers poll.
    transaction_pooling: bool = Field(False, alias="NEXT_PRIVATE_JOBS_DB_TRANSACTION_POOLING")
    direct_database_url: PostgresUrl | None = Field(
        None, alias="NEXT_PRIVATE_DIRECT_DATABASE_URL", repr=False
    )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, *, secrets: bool = True) -> Settings:
        """Read and validate the settings.

        Args:
            environ: The variables to read; ``os.environ`` when omitted.
            secrets: Require the production secrets the provider needs. A command that
                needs none (``docjobs migrate``, ``docjobs health``) passes ``False``; one
                that decides later calls :meth:`require_secrets`.

        Returns:
            The validated settings.

        Raises:
            errors.SettingsError: One message naming the first bad variable and what
                it accepts, or every missing one.
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
        values["queue_concurrency"] = queue_concurrency(source)
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            raise errors.SettingsError(describe(exc, values, cls.model_fields)) from None
        settings._validated(secrets=secrets)
        return settings

    @classmethod
    def only(cls, fields: Collection[str], environ: Mapping[str, str] | None = None) -> Settings:
        """Settings that read only the variables of ``fields``; the others keep their defaults.

        For a command that uses a few settings and must not ask for the rest (``docjobs
        verify`` needs the signing certificate, not a database URL). The rules that span
        fields are not checked: a provider's required URLs, production's secrets.

        Args:
            fields: Field names (``"signing_file_path"``), not variable names.
            environ: The variables to read; ``os.environ`` when omitted.

        Raises:
            errors.SettingsError: One of these variables is invalid, named.
        """
        source = os.environ if environ is None else environ
        aliases = [cls.model_fields[name].alias or name for name in fields]
        values: dict[str, Any] = {name: source[name] for name in aliases if source.get(name, "") != ""}
        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            raise errors.SettingsError(describe(exc, values, cls.model_fields)) from None
        redaction.remember(settings.secret_values())
        return settings

    def require_secrets(self, *, signs: bool = False) -> None:
        """Refuse production settings without the secrets this process needs, all in one message.

        Args:
            signs: The process would run the signing job: the certificate is needed too.

        Raises:
            errors.SettingsError: Naming every missing secret.
        """
        missing = missing_secrets(self, signs=signs)
        if missing:
            raise errors.SettingsError("; ".join(missing))

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

    def _validated(self, *, secrets: bool = False) -> None:
        """What every new Settings goes through: its secrets remembered, then the cross-field rules
        (the production secrets too when ``secrets``)."""
        redaction.remember(self.secret_values())
        check_cross_field_rules(self, secrets=secrets)

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
        """The base URL the app calls itself on: ``NEXT_PRIVATE_INTERNAL_WEBAPP_URL``, else
        ``http://localhost:{PORT}``, where ``docjobs web`` listens (issue 20: with ``PORT`` set
        and no internal URL, sends woke port 3000, where nothing of this app listened)."""
        return self.internal_webapp_url or f"http://localhost:{self.port}"

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
        path = self.inngest_serve_path or f"{self.base_path}{defaults.INNGEST_SERVE_PATH}"
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
            raise errors.SettingsError(describe(exc, by_alias, fields)) from None
        # A copy keeps the bar its original met: secrets required if it had them all.
        settings._validated(secrets=not missing_secrets(self))
        return settings
