"""The board's HTML pages and forms, and their template environment.

Pages refresh themselves (``static/board.js``). A form posts its page's CSRF token,
and what loses something (``DESTRUCTIVE``) must be confirmed; after it, the browser
is sent on to the page that shows the result.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from docjobs import registry
from docjobs.db.board import STATES
from docjobs.web.board import charts, forms, inputs
from docjobs.web.board.actions import ACTIONS, MAX_SELECTION, ActionError
from docjobs.web.board.board import Board, Context
from docjobs.web.board.views import Views

#: Actions that lose something, which a form must confirm.
DESTRUCTIVE = ("cancel", "delete")
#: Audit entries the overview shows.
OVERVIEW_AUDIT_ENTRIES = 8


def environment() -> Environment:
    """The board's templates, escaped by default, with the pages' filters."""
    templates = Environment(
        loader=PackageLoader("docjobs.web.board", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    templates.filters["ago"] = _ago
    templates.filters["pretty"] = _pretty
    templates.filters["segment"] = _segment
    return templates


def render(ctx: Context, template: str, **values: Any) -> Response:
    """``template`` rendered for the viewer, with what every page shows."""
    board = ctx.board
    context = {
        "base": board.base,
        "viewer": ctx.viewer,
        "csrf": ctx.viewer.csrf,
        "provider": board.runtime.settings.provider,
        # What the provider can do decides which controls show (pause, say).
        "capabilities": board.runtime.broker.capabilities,
        "query": ctx.request.url.query,
        "now": datetime.now(UTC),
        **values,
    }
    return HTMLResponse(board.templates.get_template(template).render(context))


class Pages:
    """The board's page and form handlers.

    Args:
        board: The board's parts.
        views: The data pages share with the API.
    """

    def __init__(self, board: Board, views: Views) -> None:
        self.board = board
        self.views = views
        self.access = board.access
        self.base = board.base

    async def overview(self, ctx: Context) -> Response:
        """Queues, workers, schedules, the last hour's chart and the latest audit entries."""
        overview = await run_in_threadpool(self.views.overview)
        audit = await run_in_threadpool(self.views.audit, OVERVIEW_AUDIT_ENTRIES)
        return render(
            ctx,
            "overview.html",
            states=list(STATES),
            audit=audit,
            width=charts.WIDTH,
            height=charts.HEIGHT,
            seconds=_seconds,
            **overview,
        )

    async def jobs(self, ctx: Context) -> Response:
        """The jobs list."""
        listing = await run_in_threadpool(self.views.jobs, ctx.request)
        params = {name: inputs.query(ctx.request, name) for name in forms.FILTER_FIELDS}
        params = {name: value for name, value in params.items() if value}
        return render(ctx, "jobs.html", states=list(STATES), params=params, **listing)

    async def job(self, ctx: Context) -> Response:
        """One job, with its actions."""
        detail = await run_in_threadpool(self.views.job, inputs.path(ctx.request, "job_id"))
        return render(ctx, "job.html", actions=ACTIONS, destructive=DESTRUCTIVE, **detail)

    async def action_form(self, ctx: Context) -> Response:
        """Retry (a payload may replace the job's), cancel, promote or delete one job."""
        form = await forms.form(ctx.request)
        self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        action = inputs.path(ctx.request, "action")
        job_id = inputs.path(ctx.request, "job_id")
        if action in DESTRUCTIVE and inputs.form_field(form, "confirm") != "yes":
            raise ActionError(400, f"confirm that the job should be {action}ed: nothing was done")
        text = inputs.form_field(form, "payload", max_chars=forms.MAX_BODY_BYTES, lines=True)
        payload = forms.json_object(text, "the payload") if text else None
        outcome = await run_in_threadpool(self.views.act, ctx.viewer, action, job_id, payload)
        target = outcome.get("retried_as") or (None if action == "delete" else job_id)
        location = f"{self.base}/jobs/{_segment(target)}" if target else f"{self.base}/jobs"
        return RedirectResponse(location, status_code=303)

    async def bulk_form(self, ctx: Context) -> Response:
        """Retry or delete the selected jobs, or every job the filter matches."""
        form = await forms.form(ctx.request, max_fields=MAX_SELECTION + 20)
        self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        # One button per (action, scope): "retry selected", "delete filter", ...
        action, _, scope = inputs.form_field(form, "bulk").partition(" ")
        if action == "delete" and inputs.form_field(form, "confirm") != "yes":
            raise ActionError(400, "confirm the bulk delete: nothing was done")
        where, _ = forms.job_filter(lambda name: inputs.form_field(form, name))
        ids = None if scope == "filter" else inputs.form_list(form, "id")
        await run_in_threadpool(self.views.audited, ctx.viewer, f"bulk {action}", None,
                                lambda: self.board.actions.bulk(action, where, ids))  # fmt: skip
        params = {name: inputs.form_field(form, name) for name in forms.FILTER_FIELDS}
        params = {name: value for name, value in params.items() if value}
        return RedirectResponse(f"{self.base}/jobs?{urllib.parse.urlencode(params)}", status_code=303)

    async def clean_form(self, ctx: Context) -> Response:
        """Delete finished jobs of a state older than some days."""
        form = await forms.form(ctx.request)
        self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        if inputs.form_field(form, "confirm") != "yes":
            raise ActionError(400, "confirm the clean-up: nothing was done")
        status = inputs.form_field(form, "state").upper()
        days = forms.days(inputs.form_field(form, "days"))
        await run_in_threadpool(
            self.views.audited, ctx.viewer, "clean", None, lambda: self.board.actions.clean(status, days)
        )
        return RedirectResponse(f"{self.base}/", status_code=303)

    async def queue_form(self, ctx: Context) -> Response:
        """Pause or resume a queue."""
        form = await forms.form(ctx.request)
        self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        queue, action = inputs.path(ctx.request, "queue"), inputs.path(ctx.request, "action")
        await run_in_threadpool(self.views.queue, ctx.viewer, queue, action)
        return RedirectResponse(f"{self.base}/", status_code=303)

    async def trigger(self, ctx: Context) -> Response:
        """The trigger form, and sending the job it names (422 with the form again if refused)."""
        job, text, error = "", "{}", None
        if ctx.request.method == "POST":
            form = await forms.form(ctx.request)
            self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
            job = inputs.form_field(form, "job")
            text = inputs.form_field(form, "payload", max_chars=forms.MAX_BODY_BYTES, lines=True) or "{}"
            try:
                payload = forms.json_object(text, "the payload")
                outcome = await run_in_threadpool(self.views.trigger, ctx.viewer, job, payload)
            except ActionError as refused:
                error = refused.reason
            else:
                return RedirectResponse(f"{self.base}/jobs/{_segment(outcome['job'])}", status_code=303)
        response = render(
            ctx, "trigger.html", jobs=sorted(registry.declared()), job=job, payload=text, error=error
        )
        if error:
            response.status_code = 422
        return response

    async def audit(self, ctx: Context) -> Response:
        """The audit log's latest entries."""
        return render(ctx, "audit.html", entries=await run_in_threadpool(self.views.audit))


# Template filters.


def _ago(moment: datetime | float | None) -> str:
    """``3 s``, ``5 min``, ``2 h``, ``4 d`` from seconds or since a moment."""
    if moment is None:
        return "-"
    seconds = (
        float(moment) if not isinstance(moment, datetime) else (datetime.now(UTC) - moment).total_seconds()
    )
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _segment(value: Any) -> str:
    """A value as one URL path segment: job ids are the app's to choose, slashes included."""
    return urllib.parse.quote(str(value), safe="")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
