"""The rules that span several settings: what each provider asks of them (as data), and the others.

:class:`docjobs.settings.Settings` looks a provider's rules up by name (never branching on
it) for its worker threads and default retries, and runs :func:`check_cross_field_rules`
on every new settings object.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from docjobs import errors


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
#: The in-memory stub (``docjobs.testing``) needs no server and retries as Dramatiq's
#: ``Retries`` middleware does by default (``max_retries=20``).
PROVIDER_RULES: dict[str, ProviderRules] = {
    "local": ProviderRules(requires=("database_url",), self_trigger_key=True, default_retries=3),
    "bullmq": ProviderRules(
        requires=("database_url", "redis_url"), concurrency_field="bullmq_concurrency", default_retries=2
    ),
    "inngest": ProviderRules(inngest_keys=True, default_retries=4),
    "stub": ProviderRules(default_retries=20),
}
#: Attempts after the first, per provider.
PROVIDER_MAX_RETRIES: dict[str, int] = {name: rules.default_retries for name, rules in PROVIDER_RULES.items()}
#: How a missing required URL is described.
_REQUIRED_URLS = {
    "database_url": ("NEXT_PRIVATE_DATABASE_URL", "postgresql://"),
    "redis_url": ("NEXT_PRIVATE_REDIS_URL", "redis://"),
}


class RuledSettings(Protocol):
    """What the rules read of the settings (the URL fields by name, as ``requires`` lists them)."""

    @property
    def provider(self) -> str: ...
    @property
    def is_development(self) -> bool: ...
    @property
    def encryption_secondary_key(self) -> SecretStr | None: ...
    @property
    def inngest_signing_key(self) -> SecretStr | None: ...
    @property
    def inngest_event_key(self) -> SecretStr | None: ...
    @property
    def signing_file_path(self) -> Path | None: ...
    @property
    def signing_file_contents(self) -> SecretStr | None: ...
    @property
    def smtp_transport(self) -> str: ...
    @property
    def smtp_apikey(self) -> SecretStr | None: ...
    @property
    def min_backoff_seconds(self) -> float: ...
    @property
    def max_backoff_seconds(self) -> float: ...


#: Why production needs the signing certificate (the same words as ``pdf.identity``).
CERTIFICATE_REQUIRED = (
    "NEXT_PRIVATE_SIGNING_LOCAL_FILE_PATH or NEXT_PRIVATE_SIGNING_LOCAL_FILE_CONTENTS is required in "
    "production: documents cannot be sealed without a signing certificate"
)


def check_cross_field_rules(settings: RuledSettings, *, secrets: bool = True) -> None:
    """Refuse settings whose fields contradict each other, or that the provider cannot start with.

    Args:
        secrets: Also require the production secrets the provider needs (a command that
            needs none, such as ``docjobs migrate``, passes ``False``).

    Raises:
        errors.SettingsError: Naming every variable that is missing (in one message), or
            the one that is wrong, and why.
    """
    missing = _missing_urls(settings) + (missing_secrets(settings) if secrets else [])
    if missing:
        raise errors.SettingsError("; ".join(missing))
    if settings.smtp_transport == "smtp-api" and settings.smtp_apikey is None:
        raise errors.SettingsError(
            "NEXT_PRIVATE_SMTP_APIKEY is required with NEXT_PRIVATE_SMTP_TRANSPORT=smtp-api"
        )
    if settings.min_backoff_seconds > settings.max_backoff_seconds:
        raise errors.SettingsError(
            "NEXT_PRIVATE_JOBS_MIN_BACKOFF_SECONDS must not exceed NEXT_PRIVATE_JOBS_MAX_BACKOFF_SECONDS"
        )


def missing_secrets(settings: RuledSettings, *, signs: bool = False) -> list[str]:
    """What production lacks for this provider, one sentence per rule (none in development)."""
    if settings.is_development:
        return []
    rules = PROVIDER_RULES[settings.provider]
    provider = f"NEXT_PRIVATE_JOBS_PROVIDER={settings.provider}"
    missing: list[str] = []
    if rules.self_trigger_key and settings.encryption_secondary_key is None:
        missing.append(
            f"NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY is required in production with {provider}: it signs "
            "the self-trigger requests (only NODE_ENV=development generates one)"
        )
    if rules.inngest_keys:
        keys = [
            name
            for name, value in (
                ("INNGEST_SIGNING_KEY", settings.inngest_signing_key),
                ("INNGEST_EVENT_KEY", settings.inngest_event_key),
            )
            if value is None
        ]
        if keys:
            verb = "is" if len(keys) == 1 else "are"
            missing.append(
                f"{' and '.join(keys)} {verb} required in production with {provider} "
                "(only NODE_ENV=development runs against a dev server without keys)"
            )
    if signs and settings.signing_file_path is None and settings.signing_file_contents is None:
        missing.append(CERTIFICATE_REQUIRED)
    return missing


def _missing_urls(settings: RuledSettings) -> list[str]:
    """The URLs the chosen provider cannot start without, one sentence each."""
    missing = []
    for field in PROVIDER_RULES[settings.provider].requires:
        if getattr(settings, field) is None:
            variable, scheme = _REQUIRED_URLS[field]
            missing.append(
                f"{variable} is required with NEXT_PRIVATE_JOBS_PROVIDER={settings.provider}: "
                f"set it to a {scheme} URL"
            )
    return missing
