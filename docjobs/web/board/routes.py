"""The board's pages and JSON API, mounted at ``/api/jobs/board``.

Every page has a JSON twin under ``api/``: what a page shows, the API returns, and
what a form does, the API does. Pages refresh themselves (``static/board.js``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from docjobs import errors, registry, strictjson
from docjobs import secrets as dev_secrets
from docjobs.db.board import STATES, BoardStore, JobFilter
from docjobs.runtime import Runtime
from docjobs.web import bodies
from docjobs.web.board import charts, inputs, metrics
from docjobs.web.board.access import (
    MAX_EMAIL_CHARS,
    MAX_PASSWORD_CHARS,
    AuthorizeHook,
    BoardAccess,
    Denied,
    Session,
    Viewer,
)
from docjobs.web.board.actions import ACTIONS, MAX_SELECTION, ActionError, BoardActions

logger = logging.getLogger(__name__)

#: Where the board lives, under the app's base path.
BOARD_PATH = "/api/jobs/board"
#: Actions that lose something, which a form must confirm.
DESTRUCTIVE = ("cancel", "delete")
#: How long the overview's counts are shared between viewers.
COUNTS_TTL_SECONDS = 5.0
#: The jobs list's query fields.
FILTER_FIELDS = ("state", "queue", "job", "q", "since", "until")
#: Sign-in password checks run at once (each holds 64 MiB), and how long one waits for its turn.
MAX_PASSWORD_CHECKS = 2
PASSWORD_CHECK_WAIT_SECONDS = 10.0
#: The biggest form or JSON body the board reads.
MAX_BODY_BYTES = 256 * 1024
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}

Handler = Callable[["Context"], Awaitable[Response]]


class Context:
    """One request to the board: who asks, their session, and the board's parts."""

    def __init__(self, board: Board, request: Request, session: Session, viewer: Viewer) -> None:
        self.board = board
        self.request = request
        self.session = session
        self.viewer = viewer

    def page(self, template: str, **values: Any) -> Response:
        context = {
            "base": self.board.base,
            "viewer": self.viewer,
            "csrf": self.viewer.csrf,
            "provider": self.board.runtime.settings.provider,
            # What the provider can do decides which controls show (pause, say).
            "capabilities": self.board.runtime.broker.capabilities,
            "query": self.request.url.query,
            "now": datetime.now(UTC),
            **values,
        }
        html = self.board.templates.get_template(template).render(context)
        return HTMLResponse(html)


class Board:
    """The board's routes over a runtime with a database.

    Args:
        runtime: The process's runtime.
        base: The board's URL path (base path included).
        authorize: A host app's extra access rule.
    """

    def __init__(self, runtime: Runtime, *, base: str, authorize: AuthorizeHook | None = None) -> None:
        self.runtime = runtime
        self.base = base
        database = runtime.require_database()
        self.store = BoardStore(database)
        self.actions = BoardActions(runtime, self.store)
        settings = runtime.settings
        token = settings.board_token.get_secret_value() if settings.board_token else None
        self.access = BoardAccess(
            self.store,
            secret=_session_secret(runtime),
            development=settings.is_development,
            token=token,
            cookie_path=base,
            trusted_proxies=settings.trusted_proxy_networks,
            authorize=authorize,
        )
        self.templates = Environment(
            loader=PackageLoader("docjobs.web.board", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self._counts: tuple[float, list[dict[str, Any]]] | None = None
        self._password_checks = asyncio.Semaphore(MAX_PASSWORD_CHECKS)
        self.templates.filters["ago"] = _ago
        self.templates.filters["pretty"] = _pretty
        self.templates.filters["segment"] = _segment

    def routes(self) -> list[BaseRoute]:
        page, api = self._page, self._api
        return [
            Route("/", page(self.overview_page), methods=["GET"]),
            Route("/jobs", page(self.jobs_page), methods=["GET"]),
            # Job ids are the app's to choose, slashes included: the last segment is the action.
            Route("/jobs/{job_id:path}", page(self.job_page), methods=["GET"]),
            Route("/jobs/{job_id:path}/{action}", page(self.action_form), methods=["POST"]),
            Route("/bulk", page(self.bulk_form), methods=["POST"]),
            Route("/clean", page(self.clean_form), methods=["POST"]),
            Route("/queues/{queue}/{action}", page(self.queue_form), methods=["POST"]),
            Route("/trigger", page(self.trigger_page), methods=["GET", "POST"]),
            Route("/audit", page(self.audit_page), methods=["GET"]),
            Route("/sign-in", self.sign_in, methods=["GET", "POST"]),
            Route("/sign-out", self.sign_out, methods=["POST"]),
            Route("/api/overview", api(self.overview_api), methods=["GET"]),
            Route("/api/jobs", api(self.jobs_api), methods=["GET"]),
            Route("/api/jobs/{job_id:path}", api(self.job_api), methods=["GET"]),
            Route("/api/jobs/{job_id:path}/{action}", api(self.action_api), methods=["POST"]),
            Route("/api/bulk", api(self.bulk_api), methods=["POST"]),
            Route("/api/clean", api(self.clean_api), methods=["POST"]),
            Route("/api/queues/{queue}/{action}", api(self.queue_api), methods=["POST"]),
            Route("/api/trigger", api(self.trigger_api), methods=["POST"]),
            Route("/api/audit", api(self.audit_api), methods=["GET"]),
            Route("/metrics", api(self.metrics), methods=["GET"]),
            Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="board-static"),
        ]

    # Access around every handler.

    def _page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request.state.started = time.perf_counter()
            session = self.access.session(request)
            try:
                viewer = await run_in_threadpool(self.access.viewer, request, session, api=False)
                response = await handler(Context(self, request, session, viewer))
            except Denied as denied:
                if denied.status == 401:
                    response = RedirectResponse(f"{self.base}/sign-in", status_code=303)
                else:
                    response = self._denied_page(denied)
            except ActionError as refused:
                response = self._denied_page(refused, "Not done")
            return self._finish(request, response, session)

        return endpoint

    def _api(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request.state.started = time.perf_counter()
            session = self.access.session(request)
            try:
                viewer = await run_in_threadpool(self.access.viewer, request, session, api=True)
                response = await handler(Context(self, request, session, viewer))
            except (Denied, ActionError) as refused:
                response = _json({"error": refused.reason}, refused.status)
            return self._finish(request, response, session)

        return endpoint

    def _finish(self, request: Request, response: Response, session: Session) -> Response:
        response.headers.update(SECURITY_HEADERS)
        started = getattr(request.state, "started", None)
        if started is not None:  # how long the board took, for browsers' dev tools and `make bench`
            response.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        if session.new:
            self.access.save(request, response, session)
        return response

    def _denied_page(self, denied: Denied | ActionError, title: str = "Not allowed") -> Response:
        html = self.templates.get_template("message.html").render(
            base=self.base, viewer=None, title=title, message=denied.reason
        )
        return HTMLResponse(html, status_code=denied.status)

    # Overview.

    def _queue_counts(self) -> list[dict[str, Any]]:
        """Counts per queue and state, shared by every viewer for a few seconds.

        Counting finished jobs scans them all (half a second at a million rows, see
        ``make bench``); open overviews refreshing themselves would repeat that.
        """
        cached = self._counts
        if cached is not None and time.monotonic() - cached[0] < COUNTS_TTL_SECONDS:
            return cached[1]
        counts = self.store.queue_counts()
        self._counts = (time.monotonic(), counts)
        return counts

    def overview(self) -> dict[str, Any]:
        queues = self._queue_counts()
        totals = {state: sum(int(q[state]) for q in queues) for state in STATES}
        now = datetime.now(UTC)
        last_runs = self.store.cron_last_runs()
        schedules = [
            {
                "job": job_id,
                "expression": schedule.expression,
                "enabled": schedule.enabled,
                "last": last_runs.get(job_id),
                "next": schedule.next_slot(now),
            }
            for job_id, schedule in self.runtime.cron.items()
        ]
        activity = self.store.activity(charts.WINDOW_SECONDS, charts.STEP_SECONDS)
        chart = charts.activity_chart(activity, now)
        return {
            "provider": self.runtime.settings.provider,
            "queues": queues,
            "totals": totals,
            "workers": self.store.workers(),
            "schedules": schedules,
            "activity": {
                "windowSeconds": charts.WINDOW_SECONDS,
                "stepSeconds": charts.STEP_SECONDS,
                "completed": chart.completed,
                "failed": chart.failed,
                "failureRate": chart.failure_rate,
                "seconds": {"p50": chart.p50, "p95": chart.p95, "p99": chart.p99},
                "steps": [
                    {
                        "at": row["at"],
                        "completed": row["completed"],
                        "failed": row["failed"],
                        "seconds": dict(zip(("p50", "p95", "p99"), row["seconds"] or (), strict=False)),
                    }
                    for row in activity
                    if row["at"] is not None
                ],  # fmt: skip
            },
            "chart": chart,
        }

    async def overview_page(self, ctx: Context) -> Response:
        overview = await run_in_threadpool(self.overview)
        audit = await run_in_threadpool(self.store.audit_page, 8)
        return ctx.page(
            "overview.html",
            states=list(STATES),
            audit=audit,
            width=charts.WIDTH,
            height=charts.HEIGHT,
            seconds=_seconds,
            **overview,
        )

    async def overview_api(self, ctx: Context) -> Response:
        overview = await run_in_threadpool(self.overview)
        del overview["chart"]  # the page's drawing; the API has the numbers under "activity"
        return _json(overview)

    async def metrics(self, ctx: Context) -> Response:
        overview = await run_in_threadpool(self.overview)
        return Response(metrics.render(overview), media_type=metrics.CONTENT_TYPE)

    # Jobs.

    def _jobs(self, request: Request) -> dict[str, Any]:
        where, before = _job_filter(lambda name: inputs.query(request, name))
        rows = self.store.job_page(where, before=before, limit=51)
        more = len(rows) > 50
        rows = rows[:50]
        return {"jobs": rows, "next": rows[-1]["id"] if more else None, "filter": where}

    async def jobs_page(self, ctx: Context) -> Response:
        listing = await run_in_threadpool(self._jobs, ctx.request)
        params = {name: inputs.query(ctx.request, name) for name in FILTER_FIELDS}
        params = {name: value for name, value in params.items() if value}
        return ctx.page("jobs.html", states=list(STATES), params=params, **listing)

    async def jobs_api(self, ctx: Context) -> Response:
        listing = await run_in_threadpool(self._jobs, ctx.request)
        where = listing.pop("filter")
        return _json({**listing, "filter": {k: v for k, v in vars(where).items() if v is not None}})

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.store.job(job_id)
        if job is None:
            raise ActionError(404, f"no job {job_id}")
        return {
            "job": job,
            "attempts": self.store.job_attempts(job_id),
            "tasks": self.store.job_tasks(job_id),
        }

    async def job_page(self, ctx: Context) -> Response:
        detail = await run_in_threadpool(self._job, inputs.path(ctx.request, "job_id"))
        return ctx.page("job.html", actions=ACTIONS, destructive=DESTRUCTIVE, **detail)

    async def job_api(self, ctx: Context) -> Response:
        return _json(await run_in_threadpool(self._job, inputs.path(ctx.request, "job_id")))

    # Actions.

    def _act(
        self, viewer: Viewer, action: str, job_id: str, payload: dict[str, Any] | None
    ) -> dict[str, Any]:
        if action not in ACTIONS:
            raise ActionError(404, f"no action {action!r}; the board knows {', '.join(ACTIONS)}")
        return self._audited(viewer, action, job_id, lambda: self.actions.run(action, job_id, payload))

    def _audited(
        self, viewer: Viewer, action: str, target: str | None, act: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Do ``act`` and record it in the audit log (and the process log)."""
        outcome = act()
        self._counts = None  # the admin should see what they just did
        self.store.audit(viewer.who, action, target, outcome)
        logger.info(
            "Board: %s did %s on %s.",
            viewer.who,
            action,
            target or "the filter",
            extra={"action": f"board_{action}"},
        )
        return outcome

    async def action_form(self, ctx: Context) -> Response:
        form = await _form(ctx.request)
        self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        action = inputs.path(ctx.request, "action")
        job_id = inputs.path(ctx.request, "job_id")
        if action in DESTRUCTIVE and inputs.form_field(form, "confirm") != "yes":
            raise ActionError(400, f"confirm that the job should be {action}ed: nothing was done")
        text = inputs.form_field(form, "payload", max_chars=MAX_BODY_BYTES, lines=True)
        payload = _json_object(text, "the payload") if text else None
        outcome = await run_in_threadpool(self._act, ctx.viewer, action, job_id, payload)
        target = outcome.get("retried_as") or (None if action == "delete" else job_id)
        location = f"{self.base}/jobs/{_segment(target)}" if target else f"{self.base}/jobs"
        return RedirectResponse(location, status_code=303)

    async def action_api(self, ctx: Context) -> Response:
        self.access.check_csrf(ctx.request, ctx.viewer, ctx.request.headers.get("x-csrf-token"))
        action, job_id = inputs.path(ctx.request, "action"), inputs.path(ctx.request, "job_id")
        body = await _body(ctx.request)
        payload = None
        if body.strip():
            payload = _json_object(body, "the body").get("payload")
            if payload is not None and not isinstance(payload, dict):
                raise ActionError(422, "payload must be a JSON object")
        outcome = await run_in_threadpool(self._act, ctx.viewer, action, job_id, payload)
        return _json(outcome)

    async def bulk_form(self, ctx: Context) -> Response:
        form = await _form(ctx.request, max_fields=MAX_SELECTION + 20)
        self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        # One button per (action, scope): "retry selected", "delete filter", ...
        action, _, scope = inputs.form_field(form, "bulk").partition(" ")
        if action == "delete" and inputs.form_field(form, "confirm") != "yes":
            raise ActionError(400, "confirm the bulk delete: nothing was done")
        where, _ = _job_filter(lambda name: inputs.form_field(form, name))
        ids = None if scope == "filter" else inputs.form_list(form, "id")
        await run_in_threadpool(self._audited, ctx.viewer, f"bulk {action}", None,
                                lambda: self.actions.bulk(action, where, ids))  # fmt: skip
        params = {name: inputs.form_field(form, name) for name in FILTER_FIELDS}
        params = {name: value for name, value in params.items() if value}
        return RedirectResponse(f"{self.base}/jobs?{urllib.parse.urlencode(params)}", status_code=303)

    async def bulk_api(self, ctx: Context) -> Response:
        self.access.check_csrf(ctx.request, ctx.viewer, ctx.request.headers.get("x-csrf-token"))
        body = _json_object(await _body(ctx.request) or b"{}", "the body")
        ids = inputs.json_list(body, "ids")
        filter_fields = body.get("filter") or {}
        if not isinstance(filter_fields, dict):
            raise ActionError(422, "filter must be an object of the jobs list's query fields")
        if ids is None and "filter" not in body:
            raise ActionError(422, "give ids, or a filter ({} for every job)")
        where, _ = _job_filter(lambda name: inputs.json_field(filter_fields, name, where="filter"))
        action = inputs.json_field(body, "action")
        outcome = await run_in_threadpool(self._audited, ctx.viewer, f"bulk {action}", None,
                                          lambda: self.actions.bulk(action, where, ids))  # fmt: skip
        return _json(outcome)

    async def clean_form(self, ctx: Context) -> Response:
        form = await _form(ctx.request)
        self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        if inputs.form_field(form, "confirm") != "yes":
            raise ActionError(400, "confirm the clean-up: nothing was done")
        status, days = inputs.form_field(form, "state").upper(), _days(inputs.form_field(form, "days"))
        await run_in_threadpool(
            self._audited, ctx.viewer, "clean", None, lambda: self.actions.clean(status, days)
        )
        return RedirectResponse(f"{self.base}/", status_code=303)

    async def clean_api(self, ctx: Context) -> Response:
        self.access.check_csrf(ctx.request, ctx.viewer, ctx.request.headers.get("x-csrf-token"))
        body = _json_object(await _body(ctx.request) or b"{}", "the body")
        status = inputs.json_field(body, "state").upper()
        days = _days(inputs.json_field(body, "olderThanDays"))
        return _json(await run_in_threadpool(self._audited, ctx.viewer, "clean", None,
                                             lambda: self.actions.clean(status, days)))  # fmt: skip

    def _queue(self, viewer: Viewer, queue: str, action: str) -> dict[str, Any]:
        if action not in ("pause", "resume"):
            raise ActionError(404, f"no queue action {action!r}; there are pause and resume")
        return self._audited(viewer, action, None, lambda: self.actions.pause(queue, action == "pause"))

    async def queue_form(self, ctx: Context) -> Response:
        form = await _form(ctx.request)
        self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        queue, action = inputs.path(ctx.request, "queue"), inputs.path(ctx.request, "action")
        await run_in_threadpool(self._queue, ctx.viewer, queue, action)
        return RedirectResponse(f"{self.base}/", status_code=303)

    async def queue_api(self, ctx: Context) -> Response:
        self.access.check_csrf(ctx.request, ctx.viewer, ctx.request.headers.get("x-csrf-token"))
        queue, action = inputs.path(ctx.request, "queue"), inputs.path(ctx.request, "action")
        return _json(await run_in_threadpool(self._queue, ctx.viewer, queue, action))

    def _trigger(self, viewer: Viewer, job: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._audited(viewer, "trigger", None, lambda: self.actions.trigger(job, payload))

    async def trigger_page(self, ctx: Context) -> Response:
        job, text, error = "", "{}", None
        if ctx.request.method == "POST":
            form = await _form(ctx.request)
            self.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
            job = inputs.form_field(form, "job")
            text = inputs.form_field(form, "payload", max_chars=MAX_BODY_BYTES, lines=True) or "{}"
            try:
                payload = _json_object(text, "the payload")
                outcome = await run_in_threadpool(self._trigger, ctx.viewer, job, payload)
            except ActionError as refused:
                error = refused.reason
            else:
                return RedirectResponse(f"{self.base}/jobs/{_segment(outcome['job'])}", status_code=303)
        response = ctx.page(
            "trigger.html", jobs=sorted(registry.declared()), job=job, payload=text, error=error
        )
        if error:
            response.status_code = 422
        return response

    async def trigger_api(self, ctx: Context) -> Response:
        self.access.check_csrf(ctx.request, ctx.viewer, ctx.request.headers.get("x-csrf-token"))
        body = _json_object(await _body(ctx.request) or b"{}", "the body")
        payload = body.get("payload", {})
        if not isinstance(payload, dict):
            raise ActionError(422, "payload must be a JSON object")
        job = inputs.json_field(body, "job")
        return _json(await run_in_threadpool(self._trigger, ctx.viewer, job, payload))

    # Audit.

    async def audit_page(self, ctx: Context) -> Response:
        return ctx.page("audit.html", entries=await run_in_threadpool(self.store.audit_page, 200))

    async def audit_api(self, ctx: Context) -> Response:
        return _json({"entries": await run_in_threadpool(self.store.audit_page, 200)})

    # Sign-in.

    async def sign_in(self, request: Request) -> Response:
        session = self.access.session(request)
        error = None
        status = 200
        if request.method == "POST":
            email = ""
            try:
                form = await _form(request)
                if not hmac.compare_digest(inputs.form_field(form, "csrf").encode(), session.csrf.encode()):
                    raise Denied(403, "the form's CSRF token is missing or wrong; reload the page")
                email = inputs.form_field(form, "email", max_chars=MAX_EMAIL_CHARS)
                password = inputs.form_field(form, "password", max_chars=MAX_PASSWORD_CHARS, lines=True)
                client = self.access.client(request)
                fresh = await self._checking_passwords(self.access.sign_in, email, password, client)
            except (Denied, ActionError) as refused:
                error, status = refused.reason, refused.status
                if isinstance(refused, Denied) and refused.status == 401:  # counted: at most 20 per client
                    logger.warning(
                        "Board sign-in refused for %r from %s: %s",
                        email,
                        self.access.client(request),
                        refused.reason,
                        extra={"action": "board_sign_in_refused", "status": refused.status},
                    )
            else:
                response = RedirectResponse(f"{self.base}/", status_code=303)
                return self._finish(request, response, fresh)  # its cookie replaces the visitor's
        html = self.templates.get_template("sign_in.html").render(
            base=self.base, viewer=None, csrf=session.csrf, error=error
        )
        return self._finish(request, HTMLResponse(html, status_code=status), session)

    async def _checking_passwords(self, check: Callable[..., Session], *args: Any) -> Session:
        """Run a sign-in's password check, at most ``MAX_PASSWORD_CHECKS`` at a time.

        An argon2 check holds 64 MiB for tens of milliseconds: twenty parallel guesses
        (within the per-client limit) took the process past 1 GiB. Waiting here holds
        no thread, so the rest of the app keeps its thread pool.

        Raises:
            Denied: 503 when no check could start within ``PASSWORD_CHECK_WAIT_SECONDS``.
        """
        try:
            async with asyncio.timeout(PASSWORD_CHECK_WAIT_SECONDS):
                await self._password_checks.acquire()
        except TimeoutError:
            raise Denied(503, "too many sign-ins at once; try again in a moment") from None
        try:
            return await run_in_threadpool(check, *args)
        finally:
            self._password_checks.release()

    async def sign_out(self, request: Request) -> Response:
        session = self.access.session(request)
        try:
            form = await _form(request)
            if not hmac.compare_digest(inputs.form_field(form, "csrf").encode(), session.csrf.encode()):
                raise Denied(403, "CSRF token missing")
        except (Denied, ActionError) as refused:
            return self._finish(request, self._denied_page(refused), session)
        await run_in_threadpool(self.access.sign_out, session)
        response = RedirectResponse(f"{self.base}/sign-in", status_code=303)
        self.access.forget(request, response)
        response.headers.update(SECURITY_HEADERS)
        return response


def board_routes(runtime: Runtime, *, authorize: AuthorizeHook | None = None) -> list[BaseRoute]:
    """The board mounted at ``/api/jobs/board``; nothing without a database."""
    if runtime.database is None:
        return []
    board = Board(runtime, base=runtime.settings.base_path + BOARD_PATH, authorize=authorize)
    return [Mount(BOARD_PATH, routes=board.routes())]


# Helpers.


def _session_secret(runtime: Runtime) -> bytes:
    try:
        key = dev_secrets.secondary_key(runtime.settings)
    except errors.SettingsError:
        # Sessions then last only as long as this process; the token API is unaffected.
        logger.warning(
            "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY is unset: board sign-ins end when this process stops."
        )
        return secrets.token_bytes(32)
    return hmac.new(key, b"docjobs board sessions", hashlib.sha256).digest()


def _job_filter(field: Callable[[str], str]) -> tuple[JobFilter, str | None]:
    """The jobs list's filter and cursor, each read with ``field`` (checked text, ``""`` if absent)."""
    state = field("state") or None
    if state is not None and state not in STATES:
        raise ActionError(400, f"state must be one of {', '.join(STATES)}, not {state!r}")
    return (
        JobFilter(
            state=state,
            queue=field("queue") or None,
            actor=field("job") or None,
            search=field("q") or None,
            since=_moment(field, "since"),
            until=_moment(field, "until"),
        ),
        field("before") or None,
    )


def _moment(field: Callable[[str], str], name: str) -> datetime | None:
    text = field(name)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ActionError(
            400, f"{name} must be a date and time such as 2026-11-29T10:00, not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _body(request: Request) -> bytes:
    body = await bodies.read_within(request, MAX_BODY_BYTES)
    if body is None:
        raise ActionError(413, f"the body is over {MAX_BODY_BYTES} bytes")
    return body


async def _form(request: Request, max_fields: int = 20) -> FormData:
    """The form, read within the board's own cap (chunked bodies too).

    Raises:
        ActionError: 413 for a form over ``MAX_BODY_BYTES``, 400 for too many fields or
            a malformed body.
    """
    await _body(request)  # Starlette parses the form from the body it now holds
    try:
        return await request.form(max_files=0, max_fields=max_fields)
    except HTTPException as exc:  # too many fields, a malformed body
        raise ActionError(400, f"the form cannot be read: {exc.detail}") from None


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise ActionError(400, f"the age must be a number of days, not {text!r}") from None
    if not 0 <= days < 100_000:
        raise ActionError(400, "the age must be between 0 and 100000 days")
    return days


def _json_object(data: bytes | str, what: str) -> dict[str, Any]:
    """A JSON object read by docjobs' one rule for outside JSON (no NUL, bounded depth, finite numbers).

    Raises:
        ActionError: 400 for what is not acceptable JSON, 422 for JSON that is not an object.
    """
    try:
        value = strictjson.loads(data)
    except strictjson.JsonRefused as exc:
        raise ActionError(400, f"{what} is not acceptable JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ActionError(422, f"{what} must be a JSON object")
    return value


def _json(data: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS),
        status_code=status,
        media_type="application/json",
    )


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
