"""Where a send wakes the web app: ``NEXT_PRIVATE_INTERNAL_WEBAPP_URL``, else localhost on ``PORT``."""

from __future__ import annotations

from docjobs.settings import Settings

BASE = {"NEXT_PRIVATE_DATABASE_URL": "postgresql://docjobs@db:5432/docjobs", "NODE_ENV": "development"}


def test_without_an_internal_url_sends_wake_localhost_on_port_and_on_web_port() -> None:
    settings = Settings.from_environ(
        {**BASE, "PORT": "3155", "NEXT_PUBLIC_WEBAPP_URL": "https://sign.example.com"}
    )
    assert "http://localhost:3155" == settings.self_trigger_url
    assert "http://localhost:4000" == settings.replace(port=4000).self_trigger_url  # docjobs web --port 4000
    with_path = Settings.from_environ({**BASE, "PORT": "3155", "NEXT_PUBLIC_BASE_PATH": "/sign"})
    assert "http://localhost:3155/sign" == with_path.self_trigger_url


def test_an_internal_url_wins_over_port() -> None:
    settings = Settings.from_environ(
        {**BASE, "PORT": "3155", "NEXT_PRIVATE_INTERNAL_WEBAPP_URL": "http://web:3000"}
    )
    assert "http://web:3000" == settings.self_trigger_url
