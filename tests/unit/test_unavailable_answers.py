"""While the database or the queue is down, the app answers 503 in the form its caller reads.

The board's JSON API answered a line of plain text, unlike its every other refusal
(outside trial, issue 21).
"""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest
from dramatiq.errors import BrokerConnectionError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from docjobs.web.app import RETRY_AFTER_SECONDS, answer_unavailable

pytestmark = pytest.mark.unit

BOARD = "/base/api/jobs/board"


def _down(request: Request) -> None:
    if request.query_params.get("what") == "queue":
        raise BrokerConnectionError("redis://:hunter2@10.0.0.5:6379 refused")
    raise psycopg.OperationalError('connection to server at "10.0.0.5", port 5432 failed')


APP = Starlette(
    routes=[Route("/{path:path}", _down, methods=["GET", "POST"])],
    exception_handlers={
        psycopg.OperationalError: answer_unavailable("database", lambda exc: "", board=BOARD),
        BrokerConnectionError: answer_unavailable("queue", lambda exc: "", board=BOARD),
    },
)


async def _post(path: str, what: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://app") as client:
        return await client.post(path, params={"what": what})


@pytest.mark.parametrize("what", ["database", "queue"])
@pytest.mark.parametrize(
    ("path", "form"),
    [
        (f"{BOARD}/api/jobs", "json"),
        (f"{BOARD}/api/trigger", "json"),
        ("/base/api/jobs/send-email", "json"),  # the self-trigger endpoint
        ("/base/api/inngest", "json"),
        (f"{BOARD}/jobs", "text"),
        (f"{BOARD}/sign-in", "text"),
    ],
)
def test_apis_get_json_and_board_pages_text(what: str, path: str, form: str) -> None:
    answer = asyncio.run(_post(path, what))
    message = f"The {what} is unavailable; try again shortly."
    assert (503, str(RETRY_AFTER_SECONDS)) == (answer.status_code, answer.headers["retry-after"])
    if form == "json":
        assert {"error": message} == answer.json()
    else:
        assert (message, "text/plain") == (answer.text, answer.headers["content-type"].split(";")[0])
    assert "10.0.0.5" not in answer.text and "hunter2" not in answer.text
