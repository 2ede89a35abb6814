"""The board's JSON API under ``api/``, and its Prometheus metrics.

Each endpoint is a page's twin (:mod:`docjobs.web.board.views` holds what both read).
A POST carries the CSRF token in ``X-CSRF-Token``, or is made with the board token
(:mod:`docjobs.web.board.access`); its JSON body is read strictly (:mod:`docjobs.web.board.api_bodies`),
and what a page asks to confirm needs ``"confirm": true``. A refusal is ``{"error": "..."}`` with
its status.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from docjobs.web.board import api_bodies, charts, forms, inputs, metrics, payload_schema
from docjobs.web.board.actions import ActionError
from docjobs.web.board.board import Board, Context, json_response
from docjobs.web.board.views import Views


class Api:
    """The board's JSON handlers.

    Args:
        board: The board's parts.
        views: The data the API shares with the pages.
    """

    def __init__(self, board: Board, views: Views) -> None:
        self.board = board
        self.views = views
        self.access = board.access

    def _check_csrf(self, ctx: Context) -> None:
        self.access.check_csrf(ctx.request, ctx.viewer, ctx.request.headers.get("x-csrf-token"))

    async def overview(self, ctx: Context) -> Response:
        """The overview's numbers over ``?window=`` (15m, 1h, 24h; the page's chart drawing left out)."""
        window = forms.chart_window(inputs.query(ctx.request, "window"))
        overview = await run_in_threadpool(self.views.overview, window)
        del overview["chart"]  # the page's drawing; the API has the numbers under "activity"
        return json_response(overview)

    async def metrics(self, ctx: Context) -> Response:
        """The overview in Prometheus' text format (the last hour's activity, as its gauges say)."""
        overview = await run_in_threadpool(self.views.overview, charts.DEFAULT_WINDOW)
        return Response(metrics.render(overview), media_type=metrics.CONTENT_TYPE)

    async def jobs(self, ctx: Context) -> Response:
        """A page of the jobs list, with the filter it used."""
        listing = await run_in_threadpool(self.views.jobs, ctx.request)
        where = listing.pop("filter")
        return json_response({**listing, "filter": {k: v for k, v in vars(where).items() if v is not None}})

    async def job(self, ctx: Context) -> Response:
        """One job with its attempts and tasks."""
        return json_response(await run_in_threadpool(self.views.job, inputs.path(ctx.request, "job_id")))

    async def action(self, ctx: Context) -> Response:
        """Retry (``{"payload": {...}}`` may replace the job's), run again, run now, cancel or delete
        one job; those that lose something or do its work again need ``"confirm": true``."""
        self._check_csrf(ctx)
        action, job_id = inputs.path(ctx.request, "action"), inputs.path(ctx.request, "job_id")
        body = api_bodies.read(api_bodies.JobActionBody, await forms.body(ctx.request))
        outcome = await run_in_threadpool(
            self.views.act, ctx.viewer, action, job_id, body.payload, confirmed=body.confirm
        )
        return json_response(outcome)

    async def bulk(self, ctx: Context) -> Response:
        """Retry or delete the jobs among ``ids``, or every job ``filter`` matches (every job at all:
        ``{"all": true}``); a delete needs ``"confirm": true``."""
        self._check_csrf(ctx)
        body = api_bodies.read(api_bodies.BulkBody, await forms.body(ctx.request))
        if body.ids is None and body.filter is None:
            raise ActionError(400, 'give ids, or a filter ({"all": true} for every job)')
        chosen = body.filter or api_bodies.BulkFilter()
        where, _ = forms.job_filter(chosen.field)
        outcome = await run_in_threadpool(
            self.views.bulk, ctx.viewer, body.action, where, body.ids,
            everything=chosen.all, confirmed=body.confirm,
        )  # fmt: skip
        return json_response(outcome)

    async def clean(self, ctx: Context) -> Response:
        """Delete finished jobs of a ``state`` older than ``olderThanDays``; needs ``"confirm": true``."""
        self._check_csrf(ctx)
        body = api_bodies.read(api_bodies.CleanBody, await forms.body(ctx.request))
        days = forms.days(str(body.olderThanDays))
        outcome = await run_in_threadpool(
            self.views.clean, ctx.viewer, body.state.upper(), days, confirmed=body.confirm
        )
        return json_response(outcome)

    async def queue(self, ctx: Context) -> Response:
        """Pause or resume a queue (the body, if any, is ``{}``)."""
        self._check_csrf(ctx)
        api_bodies.read(api_bodies.EmptyBody, await forms.body(ctx.request))
        queue, action = inputs.path(ctx.request, "queue"), inputs.path(ctx.request, "action")
        return json_response(await run_in_threadpool(self.views.queue, ctx.viewer, queue, action))

    async def payload(self, ctx: Context) -> Response:
        """``?job=``'s payload fields and an example that passes its checks (the trigger page's)."""
        schema = payload_schema.of_job(inputs.query(ctx.request, "job"))
        return json_response(
            {
                "job": schema.job,
                "displayName": schema.display_name,
                "fields": [vars(field) for field in schema.fields],
                "example": schema.example,
            }
        )

    async def trigger(self, ctx: Context) -> Response:
        """Send a new ``job`` with ``payload``; in production it needs ``"confirm": true``."""
        self._check_csrf(ctx)
        body = api_bodies.read(api_bodies.TriggerBody, await forms.body(ctx.request))
        outcome = await run_in_threadpool(
            self.views.trigger, ctx.viewer, body.job, body.payload, confirmed=body.confirm
        )
        return json_response(outcome)

    async def audit(self, ctx: Context) -> Response:
        """The audit log's latest entries."""
        return json_response({"entries": await run_in_threadpool(self.views.audit)})
