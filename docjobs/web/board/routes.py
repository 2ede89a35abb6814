"""The board's route table, mounted at ``/api/jobs/board``.

Every page has a JSON twin under ``api/``: what a page shows, the API returns, and
what a form does, the API does. Pages refresh themselves (``static/board.js``).
Pages are in :mod:`~docjobs.web.board.pages`, their twins in :mod:`~docjobs.web.board.api`,
what both share in :mod:`~docjobs.web.board.views`, and the access around each in
:mod:`~docjobs.web.board.board`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from docjobs.runtime import Runtime

if TYPE_CHECKING:
    from docjobs.web.board.access import AuthorizeHook
    from docjobs.web.board.board import Board

logger = logging.getLogger(__name__)

#: Where the board lives, under the app's base path.
BOARD_PATH = "/api/jobs/board"
#: After a failed build, how long requests get 503 before one tries again.
BUILD_RETRY_SECONDS = 30.0


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
        return Router(routes=routes(board), redirect_slashes=False)

    # The board's address without its slash leads to it by path (redirects never name the Host).
    to_board = RedirectResponse(base + "/")
    return [
        Route(BOARD_PATH, lambda request: to_board, methods=["GET"]),
        Mount(BOARD_PATH, app=BuiltOnFirstRequest(build)),
    ]


class BuiltOnFirstRequest:
    """An ASGI app that ``build`` makes when the first request comes, once.

    It is built in a worker thread (its imports would hold up the event loop);
    requests arriving meanwhile wait for it. A build that fails is logged once and
    answered with 503 until :data:`BUILD_RETRY_SECONDS` have passed: neither the
    requests that waited on it nor a stranger's burst start a build each.
    """

    def __init__(self, build: Callable[[], ASGIApp], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._build = build
        self._clock = clock
        self._app: ASGIApp | None = None
        self._failed_at: float | None = None
        self._building = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app or await self._built()
        if app is None:
            unavailable = PlainTextResponse(
                "The board could not be built; the server's log says why.",
                status_code=503,
                headers={"Retry-After": f"{BUILD_RETRY_SECONDS:.0f}"},
            )
            await unavailable(scope, receive, send)
            return
        await app(scope, receive, send)

    async def _built(self) -> ASGIApp | None:
        async with self._building:
            failed_at = self._failed_at
            if self._app is None and (failed_at is None or self._clock() - failed_at >= BUILD_RETRY_SECONDS):
                try:
                    self._app = await run_in_threadpool(self._build)
                except Exception:
                    self._failed_at = self._clock()
                    logger.exception(
                        "The board could not be built; it answers 503 for %.0f s, then tries again.",
                        BUILD_RETRY_SECONDS,
                        extra={"action": "board_build_failed"},
                    )
            return self._app


def routes(board: Board) -> list[BaseRoute]:
    """The board's routes, relative to where it is mounted."""
    from starlette.staticfiles import StaticFiles

    from docjobs.web.board.api import Api
    from docjobs.web.board.history_pages import HistoryPages
    from docjobs.web.board.pages import Pages
    from docjobs.web.board.schedules import Schedules
    from docjobs.web.board.signin import SignIn
    from docjobs.web.board.views import Views

    views = Views(board)
    html, json, sign = Pages(board, views), Api(board, views), SignIn(board)
    schedules = Schedules(board, views)  # board-schedules
    page, api = board.page_endpoint, board.api_endpoint
    history = HistoryPages(board)  # issue 22: job history from the rollups
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
        # board-schedules: the cron table's firings, run now, pause and resume.
        Route("/schedules", page(schedules.page), methods=["GET"]),
        Route("/schedules/{job_id:path}/{action}", page(schedules.form), methods=["POST"]),
        Route("/api/schedules", api(schedules.api_list), methods=["GET"]),
        Route("/api/schedules/{job_id:path}/{action}", api(schedules.api_action), methods=["POST"]),
        Route("/history", page(history.page), methods=["GET"]),
        Route("/api/history", api(history.api), methods=["GET"]),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="board-static"),
    ]
