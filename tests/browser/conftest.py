"""Fixtures for the board's browser tests: one headless Chromium per module, a signed-in
admin, and ``shoot`` for the screenshots a reviewer looks at (``test-artifacts/board/``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from docjobs_devkit.http import serve
from playwright.sync_api import Browser, Page, expect, sync_playwright

from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from docjobs.web.board.access import hash_password
from tests.conftest import REPO_ROOT

ARTIFACTS = REPO_ROOT / "test-artifacts" / "board"
ADMIN = ("grace@example.com", "a long enough board password")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for this module. Not for the session: Playwright's sync API keeps an
    event loop running in the main thread while it lives, and later tests call asyncio.run."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable is not None, "Chromium is missing: apt-get install -y chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert [] == errors, "the board's scripts failed"


@pytest.fixture
def board_url(make_runtime: Callable[..., Runtime], database_url: str) -> Iterator[str]:
    current = make_runtime()  # production: sign-in required
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO \"user\" (email, roles, password_hash) VALUES (%s, '{ADMIN,USER}', %s)",
            (ADMIN[0], hash_password(ADMIN[1])),
        )
    with serve(create_app(current)) as url:
        yield f"{url}/api/jobs/board"


def shoot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, board_url: str) -> None:
    """Sign the admin in and wait for the overview."""
    page.goto(f"{board_url}/sign-in")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Queues")).to_be_visible()
