"""The app with its admin board, started for a test, and clients signed in to it.

``open_board`` (a fixture, registered in ``tests/conftest.py``) starts
``create_app`` on a free port with an admin and a user in the ``user`` table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from docjobs_devkit.http import serve

from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from docjobs.web.board.access import hash_password
from tests.conftest import app_port, provider_overrides

BOARD = "/api/jobs/board"
TOKEN = "board-token-0123456789abcdef"
ADMIN = ("ada@example.com", "correct horse battery staple")
USER = ("bob@example.com", "another long password")


class Board:
    """A running app with its board, and helpers to act on it as someone."""

    def __init__(self, url: str, runtime: Runtime, database_url: str) -> None:
        self.url = url
        self.runtime = runtime
        self.database_url = database_url
        self.clients: list[httpx.Client] = []

    def client(self, **kwargs: Any) -> httpx.Client:
        client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=10, **kwargs)
        self.clients.append(client)
        return client

    def signed_in(self, email: str, password: str, **kwargs: Any) -> httpx.Client:
        client = self.client(**kwargs)
        answer = sign_in(client, email, password)
        assert 303 == answer.status_code, answer.text
        return client

    def csrf(self, client: httpx.Client, path: str = f"{BOARD}/") -> str:
        return csrf_of(client.get(path).text)


def sign_in(client: httpx.Client, email: str, password: str, **kwargs: Any) -> httpx.Response:
    """Post the sign-in form as a browser would (its CSRF token from the form page).

    Args:
        kwargs: For both requests (``headers``, say).
    """
    form = client.get(f"{BOARD}/sign-in", **kwargs)
    return client.post(
        f"{BOARD}/sign-in",
        data={"csrf": csrf_of(form.text), "email": email, "password": password},
        **kwargs,
    )


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf(?:-token)?" (?:value|content)="([^"]+)"', html)
    assert match is not None, html[:500]
    return match[1]


def set_job(database_url: str, job_id: str, assignments: str, *values: Any) -> None:
    """Put a job in the state a test needs (times, status) with one UPDATE."""
    with psycopg.connect(database_url) as conn:
        conn.execute(f"UPDATE background_job SET {assignments} WHERE id = %s", (*values, job_id))


def job_status(database_url: str, job_id: str) -> str | None:
    """A job's status, ``None`` once it is deleted."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT status FROM background_job WHERE id = %s", (job_id,)).fetchone()
    return row[0] if row else None


def add_user(database_url: str, email: str, password: str, roles: list[str]) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            'INSERT INTO "user" (email, roles, password_hash) VALUES (%s, %s, %s)',
            (email, roles, hash_password(password)),
        )


@pytest.fixture
def open_board(
    request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime], database_url: str
) -> Iterator[Callable[..., Board]]:
    """Start the app with its board: ``open_board(development=..., provider=...)``."""
    stack: list[Any] = []
    boards: list[Board] = []

    def start(
        *, development: bool = False, provider: str = "local", worker: bool = True, **more: str
    ) -> Board:
        overrides = dict(provider_overrides(request, provider), NEXT_PRIVATE_JOBS_BOARD_TOKEN=TOKEN, **more)
        if development:
            overrides["NODE_ENV"] = "development"
        current = make_runtime(**overrides)
        add_user(database_url, *ADMIN, ["ADMIN", "USER"])
        add_user(database_url, *USER, ["USER"])
        server = serve(create_app(current, embedded_worker=worker), port=app_port(current))
        url = server.__enter__()
        stack.append(server)
        if provider == "inngest":
            emulator = request.getfixturevalue("inngest_emulator")
            assert 200 == emulator.sync(f"{url}/api/jobs").status_code
        boards.append(Board(url, current, database_url))
        return boards[-1]

    yield start
    for board in boards:
        for client in board.clients:
            client.close()
    for server in reversed(stack):
        server.__exit__(None, None, None)
