"""The history page (``/history``) and its JSON twin (``/api/history``), over ``?window=24h|7d``."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from docjobs.db.rollups import BUCKET_SECONDS, KEEP_DAYS, RollupStore
from docjobs.web.board import formats, inputs
from docjobs.web.board.board import Board, Context, json_response
from docjobs.web.board.history import WINDOWS, History, window_named
from docjobs.web.board.pages import render


class HistoryPages:
    """The history's page and API handlers, sharing one :class:`History` (and its cache).

    Args:
        board: The board's parts.
    """

    def __init__(self, board: Board) -> None:
        self.history = History(RollupStore(board.store.database))

    async def page(self, ctx: Context) -> Response:
        """Per job type and per chart step over ``?window=``: a table and a chart."""
        window = window_named(inputs.query(ctx.request, "window"))
        view = await run_in_threadpool(self.history.view, window)
        return render(
            ctx,
            "history.html",
            window=window,
            windows=WINDOWS,
            span=formats.span,
            bucket_minutes=BUCKET_SECONDS // 60,
            keep_days=KEEP_DAYS,
            **view,
        )

    async def api(self, ctx: Context) -> Response:
        """The history's numbers over ``?window=`` (24h, 7d): totals, per job type, per step."""
        window = window_named(inputs.query(ctx.request, "window"))
        view = await run_in_threadpool(self.history.view, window)
        return json_response(view["history"])
