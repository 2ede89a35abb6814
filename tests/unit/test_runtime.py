from __future__ import annotations

import stat
from pathlib import Path

import pytest

from docjobs import runtime, secrets
from docjobs.errors import NotSupportedError, SettingsError
from docjobs.settings import Settings

BASE = {"NEXT_PRIVATE_DATABASE_URL": "postgresql://u@h/db", "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "k"}


def test_the_base_path_is_added_to_the_self_request_url_once() -> None:
    with_path = Settings.from_environ(
        {**BASE, "NEXT_PUBLIC_BASE_PATH": "/sign", "NEXT_PRIVATE_INTERNAL_WEBAPP_URL": "http://app:3000"}
    )
    already = Settings.from_environ(
        {
            **BASE,
            "NEXT_PUBLIC_BASE_PATH": "/sign",
            "NEXT_PRIVATE_INTERNAL_WEBAPP_URL": "http://app:3000/sign/",
        }
    )
    assert "http://app:3000/sign" == with_path.self_trigger_url
    assert "http://app:3000/sign" == already.self_trigger_url


def test_the_development_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    settings = Settings.from_environ(
        {
            "NEXT_PRIVATE_DATABASE_URL": "postgresql://u@h/db",
            "NODE_ENV": "development",
            "NEXT_PRIVATE_JOBS_DATA_DIR": str(tmp_path / "data"),
        }
    )
    first = secrets.secondary_key(settings)
    assert first == secrets.secondary_key(settings)
    assert 64 == len(first)
    key_file = tmp_path / "data" / secrets.SECONDARY_KEY_FILE
    assert 0o600 == stat.S_IMODE(key_file.stat().st_mode)


def test_the_environment_key_wins_over_a_generated_one(tmp_path: Path) -> None:
    settings = Settings.from_environ(
        {**BASE, "NODE_ENV": "development", "NEXT_PRIVATE_JOBS_DATA_DIR": str(tmp_path)}
    )
    assert b"k" == secrets.secondary_key(settings)
    assert not (tmp_path / secrets.SECONDARY_KEY_FILE).exists()


@pytest.mark.parametrize("missing", ["INNGEST_SIGNING_KEY", "INNGEST_EVENT_KEY"])
def test_inngest_in_production_needs_its_keys(missing: str) -> None:
    keys = {"INNGEST_SIGNING_KEY": "signkey-prod-00ff", "INNGEST_EVENT_KEY": "event-key"}
    del keys[missing]
    with pytest.raises(SettingsError, match=f"{missing} is required in production"):
        Settings.from_environ({**BASE, "NEXT_PRIVATE_JOBS_PROVIDER": "inngest", **keys})


def test_the_inngest_broker_sends_and_never_consumes(tmp_path: Path) -> None:
    settings = Settings.from_environ(
        {
            "NEXT_PRIVATE_JOBS_PROVIDER": "inngest",
            "NODE_ENV": "development",
            "NEXT_PRIVATE_JOBS_DATA_DIR": str(tmp_path),
        }
    )
    built = runtime.build(settings)
    with pytest.raises(NotSupportedError, match="Inngest calls the app's /api/jobs endpoint"):
        built.broker.consume("default")
    assert built.database is None


def test_the_runtime_is_built_on_first_use_from_the_environment() -> None:
    runtime.reset()
    with pytest.raises(SettingsError, match="NEXT_PRIVATE_DATABASE_URL is required"):
        runtime.get_broker()
