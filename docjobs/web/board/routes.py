"""The board's route table, mounted at ``/api/jobs/board``.

Every page has a JSON twin under ``api/``: what a page shows, the API returns, and
what a form does, the API does. Pages refresh themselves (``static/board.js``).
Pages are in :mod:`~docjobs.web.board.pages`, their twins in :mod:`~docjobs.web.board.api`,
what both share in :mod:`~docjobs.web.board.views`, and the access around each in
:mod:`~docjobs.web.board.board`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from docjobs.runtime import Runtime

if TYPE_CHECKING:
    from docjobs.web.board.access import AuthorizeHook
    from docjobs.web.board.board import Board

#: Where the board lives, under the app's base path.
BOARD_PATH = "/api/jobs/board"


def board_routes(runtime: Runtime, *, authorize: AuthorizeHook | None = None) -> list[BaseRoute]:
    """The board mounted at ``/api/jobs/board``; nothing without a database.

    The board is built when its first request comes: its templates (jinja2), metrics
    (prometheus_client) and password checks (argon2) stay out of a web process that
    nobody opens the board in (issue 21).
    """
    if runtime.database is None:
        return []
    base = runtime.settings.base_path + BOARD_PATH

    def build() -> ASGIApp:
        from docjobs.web.board import pages
        from docjobs.web.board.board import Board

        board = Board(runtime, base=base, templates=pages.environment(), authorize=authorize)
        return Router(routes=routes(board))

    return [Mount(BOARD_PATH, app=BuiltOnFirstRequest(build))]


class BuiltOnFirstRequest:
    """An ASGI app that ``build`` makes when the first request comes, once.

    It is built in a worker thread (its imports would hold up the event loop);
    requests arriving meanwhile wait for it.
    """

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._building = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            async with self._building:
                if self._app is None:
                    self._app = await run_in_threadpool(self._build)
                app = self._app
        await app(scope, receive, send)


def routes(board: Board) -> list[BaseRoute]:
    """The board's routes, relative to where it is mounted."""
    from starlette.staticfiles import StaticFiles

    from docjobs.web.board.api import Api
    from docjobs.web.board.pages import Pages
    from docjobs.web.board.signin import SignIn
    from docjobs.web.board.views import Views

    views = Views(board)
    html, json, sign = Pages(board, views), Api(board, views), SignIn(board)
    page, api = board.page_endpoint, board.api_endpoint
    return [
        Route("/", page(html.overview), methods=["GET"]),
        Route("/jobs", page(html.jobs), methods=["GET"]),
        # Job ids are the app's to choose, slashes included: the last segment is the action.
        Route("/jobs/{job_id:path}", page(html.job), methods=["GET"]),
        Route("/jobs/{job_id:path}/{action}", page(html.action_form), methods=["POST"]),
        Route("/bulk", page(html.bulk_form), methods=["POST"]),
        Route("/clean", page(html.clean_form), methods=["POST"]),
        Route("/queues/{queue}/{action}", page(html.queue_form), methods=["POST"]),
        Route("/trigger", page(html.trigger), methods=["GET", "POST"]),
        Route("/audit", page(html.audit), methods=["GET"]),
        Route("/sign-in", sign.sign_in, methods=["GET", "POST"]),
        Route("/sign-out", sign.sign_out, methods=["POST"]),
        Route("/api/overview", api(json.overview), methods=["GET"]),
        Route("/api/jobs", api(json.jobs), methods=["GET"]),
        Route("/api/jobs/{job_id:path}", api(json.job), methods=["GET"]),
        Route("/api/jobs/{job_id:path}/{action}", api(json.action), methods=["POST"]),
        Route("/api/bulk", api(json.bulk), methods=["POST"]),
        Route("/api/clean", api(json.clean), methods=["POST"]),
        Route("/api/queues/{queue}/{action}", api(json.queue), methods=["POST"]),
        Route("/api/trigger", api(json.trigger), methods=["POST"]),
        Route("/api/trigger", api(json.payload), methods=["GET"]),  # board-overview: a job's payload
        Route("/api/audit", api(json.audit), methods=["GET"]),
        Route("/metrics", api(json.metrics), methods=["GET"]),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="board-static"),
    ]
