from __future__ import annotations

import pytest

from docjobs.errors import SettingsError
from docjobs.settings import Settings

DB = "postgresql://docjobs:secret@db.internal:5432/docjobs"
BASE = {"NEXT_PRIVATE_DATABASE_URL": DB, "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "k"}


def test_defaults_follow_the_reference_service() -> None:
    settings = Settings.from_environ(BASE)
    assert "local" == settings.provider
    assert "http://localhost:3000" == settings.webapp_url
    assert "http://localhost:3000" == settings.internal_url
    assert "documenso" == settings.redis_prefix
    assert 10 == settings.bullmq_concurrency
    assert "documenso-app" == settings.inngest_app_id
    assert 3 == settings.retries  # local: 4 attempts
    assert not settings.is_development


def test_an_unknown_provider_is_an_error_naming_the_variable_and_the_choices() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({**BASE, "NEXT_PRIVATE_JOBS_PROVIDER": "kafka"})
    message = str(raised.value)
    assert message.startswith("NEXT_PRIVATE_JOBS_PROVIDER:")
    assert "'local', 'bullmq', 'inngest' or 'stub'" in message
    assert "\n" not in message


def test_a_non_integer_concurrency_is_an_error_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^NEXT_PRIVATE_BULLMQ_CONCURRENCY: .*integer.*'ten'"):
        Settings.from_environ({**BASE, "NEXT_PRIVATE_BULLMQ_CONCURRENCY": "ten"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NEXT_PUBLIC_WEBAPP_URL", "localhost:3000"),
        ("NEXT_PRIVATE_INTERNAL_WEBAPP_URL", "ftp://host"),
        ("NEXT_PRIVATE_DATABASE_URL", "mysql://host/db"),
        ("NEXT_PRIVATE_REDIS_URL", "http://redis"),
    ],
)
def test_a_malformed_url_is_an_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}: must be"):
        Settings.from_environ({**BASE, name: value})


def test_a_database_url_is_never_echoed_in_the_error() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({**BASE, "NEXT_PRIVATE_DATABASE_URL": "mysql://user:hunter2@host/db"})
    assert "hunter2" not in str(raised.value)


def test_bullmq_without_a_redis_url_is_an_error() -> None:
    with pytest.raises(
        SettingsError, match="^NEXT_PRIVATE_REDIS_URL is required with NEXT_PRIVATE_JOBS_PROVIDER=bullmq"
    ):
        Settings.from_environ({**BASE, "NEXT_PRIVATE_JOBS_PROVIDER": "bullmq"})


def test_the_local_provider_needs_a_database() -> None:
    with pytest.raises(SettingsError, match="^NEXT_PRIVATE_DATABASE_URL is required"):
        Settings.from_environ({"NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "k"})


def test_production_requires_the_secondary_key_but_development_does_not() -> None:
    with pytest.raises(
        SettingsError, match="^NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY is required in production"
    ):
        Settings.from_environ({"NEXT_PRIVATE_DATABASE_URL": DB, "NODE_ENV": "production"})
    settings = Settings.from_environ({"NEXT_PRIVATE_DATABASE_URL": DB, "NODE_ENV": "development"})
    assert settings.is_development


def test_only_exactly_development_counts_as_development() -> None:
    assert not Settings.from_environ({**BASE, "NODE_ENV": "Development"}).is_development


def test_empty_variables_count_as_unset() -> None:
    settings = Settings.from_environ({**BASE, "NEXT_PRIVATE_REDIS_PREFIX": "", "PORT": ""})
    assert "documenso" == settings.redis_prefix
    assert 3000 == settings.port


def test_the_first_inngest_event_key_wins() -> None:
    both = Settings.from_environ({**BASE, "INNGEST_EVENT_KEY": "a", "NEXT_PRIVATE_INNGEST_EVENT_KEY": "b"})
    fallback = Settings.from_environ({**BASE, "NEXT_PRIVATE_INNGEST_EVENT_KEY": "b"})
    assert both.inngest_event_key is not None and "a" == both.inngest_event_key.get_secret_value()
    assert fallback.inngest_event_key is not None and "b" == fallback.inngest_event_key.get_secret_value()


def test_secrets_do_not_show_in_the_settings_repr() -> None:
    settings = Settings.from_environ(
        {
            **BASE,
            "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "hunter2",
            "NEXT_PRIVATE_REDIS_URL": "redis://:pw42@r:6379",
        }
    )
    assert "hunter2" not in repr(settings)
    assert "secret" not in repr(settings)  # the database password
    assert "pw42" not in repr(settings)


def test_replace_names_the_variable_of_a_bad_value() -> None:
    settings = Settings.from_environ(BASE)
    with pytest.raises(SettingsError, match=r"^PORT: .*greater than or equal to 1"):
        settings.replace(port=0)


def test_minimum_backoff_must_not_exceed_the_maximum() -> None:
    with pytest.raises(SettingsError, match="NEXT_PRIVATE_JOBS_MIN_BACKOFF_SECONDS"):
        Settings.from_environ(
            {
                **BASE,
                "NEXT_PRIVATE_JOBS_MIN_BACKOFF_SECONDS": "10",
                "NEXT_PRIVATE_JOBS_MAX_BACKOFF_SECONDS": "1",
            }
        )


@pytest.mark.parametrize("name", ["INNGEST_SIGNING_KEY", "INNGEST_SIGNING_KEY_FALLBACK"])
@pytest.mark.parametrize("key", ["notakey", "signkey-prod-xyz", "signkey-prod-abc"])
def test_a_signing_key_that_is_not_one_is_refused_at_start_without_echoing_it(name: str, key: str) -> None:
    # The SDK reads the hex part with bytes.fromhex at the first sync: a traceback, after start-up.
    with pytest.raises(SettingsError) as raised:
        Settings.from_environ({**BASE, name: key})
    assert f"{name}: must be an Inngest signing key: signkey-<env>-<hex digits>" == str(raised.value)
