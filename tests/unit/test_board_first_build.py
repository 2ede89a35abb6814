"""The board is built on its first request; a build that fails is not retried by every request."""

from __future__ import annotations

import asyncio
import threading

import pytest
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Scope

from docjobs.web.board.routes import BUILD_RETRY_SECONDS, BuiltOnFirstRequest

pytestmark = pytest.mark.unit


class Builds:
    def __init__(self, failures: int) -> None:
        self.calls = 0
        self.failures = failures
        self._lock = threading.Lock()

    def __call__(self) -> ASGIApp:
        with self._lock:
            self.calls += 1
            if self.calls <= self.failures:
                raise RuntimeError("the templates are missing")
        return PlainTextResponse("board")


async def _get(app: BuiltOnFirstRequest) -> int:
    statuses: list[int] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(int(message["status"]))  # type: ignore[call-overload]

    scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    await app(scope, receive, send)  # type: ignore[arg-type]
    return statuses[0]


def test_concurrent_first_requests_share_one_build() -> None:
    builds = Builds(failures=0)
    app = BuiltOnFirstRequest(builds)

    async def burst() -> list[int]:
        return list(await asyncio.gather(*(_get(app) for _ in range(30))))

    assert [200] * 30 == asyncio.run(burst())
    assert 1 == builds.calls


def test_a_failed_build_answers_503_until_its_retry_time_then_builds_again() -> None:
    now = [100.0]
    builds = Builds(failures=1)
    app = BuiltOnFirstRequest(builds, clock=lambda: now[0])

    async def burst() -> list[int]:
        return list(await asyncio.gather(*(_get(app) for _ in range(20))))

    # Requests that waited on the failed build get its answer; none builds again.
    assert [503] * 20 == asyncio.run(burst())
    assert 1 == builds.calls
    now[0] += BUILD_RETRY_SECONDS - 1
    assert 503 == asyncio.run(_get(app))
    assert 1 == builds.calls
    now[0] += 2
    assert 200 == asyncio.run(_get(app))
    assert 2 == builds.calls
