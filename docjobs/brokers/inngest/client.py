"""The app's Inngest client from the settings."""

from __future__ import annotations

import logging

import inngest
from inngest._internal import net
from pydantic import SecretStr

from docjobs.settings import Settings


class _HideEventKey(logging.Filter):
    """Masks the event keys in httpx's request lines: Inngest's event API takes the key in its path."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(key in message for key in self.keys):
            for key in self.keys:
                message = message.replace(key, "<event key>")
            record.msg, record.args = message, None
        return True


_hide_event_key = _HideEventKey()


def inngest_client(settings: Settings) -> inngest.Inngest:
    """Cloud mode with the keys outside development; the dev server's mode in development.

    ``INNGEST_BASE_URL`` points both the event API and the sync API elsewhere (the
    emulator in tests, a self-hosted Inngest).
    """
    if settings.inngest_event_key is not None:
        _hide_event_key.keys.add(settings.inngest_event_key.get_secret_value())
        httpx_logger = logging.getLogger("httpx")
        if _hide_event_key not in httpx_logger.filters:
            httpx_logger.addFilter(_hide_event_key)
    client = inngest.Inngest(
        app_id=settings.inngest_app_id,
        is_production=not settings.is_development,
        signing_key=_secret(settings.inngest_signing_key),
        event_key=_secret(settings.inngest_event_key),
        api_base_url=settings.inngest_base_url,
        event_api_base_url=settings.inngest_base_url,
    )
    fallback = _secret(settings.inngest_signing_key_fallback)
    if fallback is not None:
        # The SDK takes the fallback key only from os.environ; docjobs' settings may
        # come from elsewhere. Pinned to 0.5.x, whose client keeps it here.
        client._signing_key_fallback = fallback
        client._http_client = net.AuthenticatedHTTPClient(
            env=client.env, signing_key=client.signing_key, signing_key_fallback=fallback
        )
    return client


def signing_keys(settings: Settings) -> list[str]:
    """The keys a call may be signed with, primary first; none in development."""
    if settings.is_development:
        return []
    keys = (settings.inngest_signing_key, settings.inngest_signing_key_fallback)
    return [key.get_secret_value() for key in keys if key is not None]


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
