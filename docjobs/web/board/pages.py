"""The board's HTML pages and forms, and their template environment.

Pages refresh themselves (``static/board.js``). A form posts its page's CSRF token,
and what loses something (``applicable.CONFIRMED``, bulk delete, clean-up, a trigger in
production) must be confirmed (``confirm=yes``, checked in :mod:`~docjobs.web.board.views`
for forms and API alike); after it, the browser is sent on to the page that shows the result.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from docjobs import logging as docjobs_logging
from docjobs import registry
from docjobs.db.board import FILTER_STATES, PAGE_SIZE, STATES
from docjobs.web.board import applicable, charts, formats, forms, inputs, payload_schema
from docjobs.web.board.actions import MAX_SELECTION, ActionError
from docjobs.web.board.board import Board, Context
from docjobs.web.board.views import MAX_PAGE, Views

#: Audit entries the overview shows.
OVERVIEW_AUDIT_ENTRIES = 8


def environment() -> Environment:
    """The board's templates, escaped by default, with the pages' filters."""
    templates = Environment(
        loader=PackageLoader("docjobs.web.board", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        # Every value a page shows: a terminal escape or a bidirectional override in a payload,
        # an error or a job name must not make it read as something else (outside trial, issue 22).
        finalize=_shown,
    )
    templates.filters["ago"] = _ago
    templates.filters["pretty"] = _pretty
    templates.filters["segment"] = _segment
    # board-lists: times in UTC, durations, short ids, worker names, a job's own options.
    templates.filters["utc"] = formats.utc
    templates.filters["machine_utc"] = formats.machine_utc
    templates.filters["relative"] = formats.relative
    templates.filters["span"] = formats.span
    templates.filters["duration"] = formats.duration
    templates.filters["short_id"] = formats.short_id
    templates.filters["user_options"] = formats.user_options
    templates.filters["detail_items"] = formats.detail_items
    templates.globals["worker_name"] = formats.worker_name
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
        """Queues, workers, schedules, the chart of ``?window=`` and the latest audit entries."""
        window = forms.chart_window(inputs.query(ctx.request, "window"))  # board-overview
        overview = await run_in_threadpool(self.views.overview, window)
        audit = await run_in_threadpool(self.views.audit, OVERVIEW_AUDIT_ENTRIES)
        return render(
            ctx,
            "overview.html",
            states=list(STATES),
            audit=audit,
            window=window,
            windows=charts.WINDOWS,
            seconds=formats.run_time,
            **overview,
        )

    async def jobs(self, ctx: Context) -> Response:
        """The jobs list."""
        listing = await run_in_threadpool(self.views.jobs, ctx.request)
        params = {name: inputs.query(ctx.request, name) for name in forms.FILTER_FIELDS}
        params = {name: value for name, value in params.items() if value}
        pages = _page_links(listing["page"], listing["lastPage"], listing["total"])
        return render(
            ctx, "jobs.html", states=list(FILTER_STATES), params=params, pages=pages, page_size=PAGE_SIZE,
            max_page=MAX_PAGE, **listing,
        )  # fmt: skip

    async def job(self, ctx: Context) -> Response:
        """One job, with its actions."""
        detail = await run_in_threadpool(self.views.job, inputs.path(ctx.request, "job_id"))
        offered = [applicable.JOB_ACTIONS[name] for name in detail.pop("actions")]
        return render(ctx, "job.html", offered=offered, payload_edit=detail.pop("payloadEdit"), **detail)

    async def action_form(self, ctx: Context) -> Response:
        """Retry (a payload may replace the job's), run again, run now, cancel or delete one job."""
        form = await forms.form(ctx.request)
        self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        action = inputs.path(ctx.request, "action")
        job_id = inputs.path(ctx.request, "job_id")
        name = applicable.ALIASES.get(action, action)
        text = inputs.form_field(form, "payload", max_chars=forms.MAX_BODY_BYTES, lines=True)
        payload = forms.json_object(text, "the payload") if text else None
        confirmed = inputs.form_field(form, "confirm") == "yes"
        outcome = await run_in_threadpool(
            self.views.act, ctx.viewer, action, job_id, payload, confirmed=confirmed
        )
        # The job that runs now (a new one after a retry elsewhere or a run again), or the list.
        target = outcome.get("retried_as") or outcome.get("ran_again_as")
        target = target or (None if name == "delete" else job_id)
        location = f"{self.base}/jobs/{_segment(target)}" if target else f"{self.base}/jobs"
        return RedirectResponse(location, status_code=303)

    async def bulk_form(self, ctx: Context) -> Response:
        """Retry or delete the selected jobs, or every job the filter matches."""
        form = await forms.form(ctx.request, max_fields=MAX_SELECTION + 20)
        self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        # One button per (action, scope): "retry selected", "delete filter", ...
        action, _, scope = inputs.form_field(form, "bulk").partition(" ")
        where, _ = forms.job_filter(lambda name: inputs.form_field(form, name))
        ids = None if scope == "filter" else inputs.form_list(form, "id")
        # The unfiltered list's buttons say "every job" and send all=yes.
        everything = inputs.form_field(form, "all") == "yes"
        confirmed = inputs.form_field(form, "confirm") == "yes"
        await run_in_threadpool(
            lambda: self.views.bulk(
                ctx.viewer, action, where, ids, everything=everything, confirmed=confirmed
            )
        )
        params = {name: inputs.form_field(form, name) for name in forms.FILTER_FIELDS}
        params = {name: value for name, value in params.items() if value}
        return RedirectResponse(f"{self.base}/jobs?{urllib.parse.urlencode(params)}", status_code=303)

    async def clean_form(self, ctx: Context) -> Response:
        """Delete finished jobs of a state older than some days."""
        form = await forms.form(ctx.request)
        self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        confirmed = inputs.form_field(form, "confirm") == "yes"
        status = inputs.form_field(form, "state").upper()
        days = forms.days(inputs.form_field(form, "days"))
        await run_in_threadpool(lambda: self.views.clean(ctx.viewer, status, days, confirmed=confirmed))
        return RedirectResponse(f"{self.base}/", status_code=303)

    async def queue_form(self, ctx: Context) -> Response:
        """Pause or resume a queue."""
        form = await forms.form(ctx.request)
        self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        queue, action = inputs.path(ctx.request, "queue"), inputs.path(ctx.request, "action")
        await run_in_threadpool(self.views.queue, ctx.viewer, queue, action)
        return RedirectResponse(f"{self.base}/", status_code=303)

    async def trigger(self, ctx: Context) -> Response:
        """The trigger form with the chosen job's payload fields and an example (board-overview),
        and sending the job it names (422 with the form again if refused).

        ``?job=`` chooses the job (the first declared by default); the payload starts as its
        example, which passes the job's checks. An unknown job is answered 404 with the picker
        and the closest declared job. In production a trigger is confirmed first.
        """
        actors = registry.declared()
        declared = sorted(actors)
        job, text, error = inputs.query(ctx.request, "job") or (declared[0] if declared else ""), "", None
        status = 200
        if ctx.request.method == "POST":
            form = await forms.form(ctx.request)
            self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
            job = inputs.form_field(form, "job")
            text = inputs.form_field(form, "payload", max_chars=forms.MAX_BODY_BYTES, lines=True) or "{}"
            confirmed = inputs.form_field(form, "confirm") == "yes"
            try:
                payload = forms.json_object(text, "the payload")
                outcome = await run_in_threadpool(
                    lambda: self.views.trigger(ctx.viewer, job, payload, confirmed=confirmed)
                )
            except ActionError as refused:
                error, status = refused.reason, 422
            else:
                return RedirectResponse(f"{self.base}/jobs/{_segment(outcome['job'])}", status_code=303)
        schema = None
        if job in actors:
            schema = payload_schema.of_job(job)
            text = text or schema.example_json  # a refused POST keeps what was typed
        elif job and error is None:  # ?job= names no declared job: the picker, and the closest
            unknown = payload_schema.unknown_job(job, declared)
            error, status = unknown.reason, unknown.status
        response = render(
            ctx,
            "trigger.html",
            jobs=[(name, actors[name].display_name) for name in declared],
            job=job,
            schema=schema,
            payload=text or "{}",
            error=error,
            confirm_first=self.views.trigger_needs_confirming(),
        )
        response.status_code = status
        return response

    async def audit(self, ctx: Context) -> Response:
        """The audit log's latest entries."""
        return render(ctx, "audit.html", entries=await run_in_threadpool(self.views.audit))


# Template filters.


def _page_links(page: int | None, last_page: int | None, total: int) -> list[int | None]:
    """The page numbers to link around ``page``: the first, two either side, the last; ``None``
    for a gap. None at all on a page reached by cursor (its number is unknown).

    Args:
        last_page: The listing's ``lastPage``; ``None`` when ``total`` is "more than" (then the
            links stop two pages on, within the pages ``total`` fills).
    """
    if page is None:
        return []
    last = last_page
    if last is None:
        last = max(min(-(-total // PAGE_SIZE), MAX_PAGE, page + 2), page)
    shown = sorted({1, last, *range(max(1, page - 2), min(last, page + 2) + 1)})
    links: list[int | None] = []
    for number in shown:
        if links and number - (links[-1] or 0) > 1:
            links.append(None)
        links.append(number)
    return links


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


def _segment(value: Any) -> str:
    """A value as one URL path segment: job ids are the app's to choose, slashes included."""
    return urllib.parse.quote(str(value), safe="")


def _shown(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Markup):
        return docjobs_logging.visible(value)
    return value


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
