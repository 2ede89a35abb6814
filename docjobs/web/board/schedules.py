"""The board's schedules page and its JSON twin: every schedule of the cron table with its
latest firings, and run now, pause and resume, audited.

A pause is a row of ``cron_schedule_state``, read by the cron ledger whichever driver fires
the slot (the in-process scheduler's claim, the worker's guard for periodiq, Inngest's cron
runs through the same guard): a paused schedule's slots are recorded as ``paused``, not run,
and not replayed after the resume. A run now is a firing of its own at the moment it is
asked (``scheduler.firing.Firer.run_now``): it takes no slot and no slot takes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dramatiq
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from docjobs import errors
from docjobs.db.cron import RUN_NOW_SENDER, CronLedger, Row
from docjobs.scheduler import declared
from docjobs.scheduler.firing import Firer
from docjobs.scheduler.table import Schedule
from docjobs.web.board import api_bodies, forms, inputs
from docjobs.web.board.access import Viewer
from docjobs.web.board.actions import ActionError
from docjobs.web.board.board import Board, Context, json_response
from docjobs.web.board.views import Views

#: The latest firings shown per schedule.
FIRINGS_SHOWN = 10
#: What the page's buttons and the API do to a schedule.
ACTIONS = ("run-now", "pause", "resume")
#: How a docjobs schedule's source reads (the app's say how they were declared).
OWN_SOURCE = "docjobs"


class Schedules:
    """The schedules' data, actions, page and API handlers.

    Args:
        board: The board's parts.
        views: For ``audited`` (every action goes to the audit log like the others).
    """

    def __init__(self, board: Board, views: Views) -> None:
        self.board = board
        self.views = views
        self.ledger = CronLedger(board.runtime.require_database())
        self.firer = Firer(board.runtime.broker, self.ledger, fired_by=RUN_NOW_SENDER)

    def listing(self) -> list[dict[str, Any]]:
        """Every schedule, docjobs' own then the app's, with its pause state and latest firings."""
        table = self.board.runtime.cron
        now = datetime.now(UTC)
        firings = self.ledger.recent(list(table), limit=FIRINGS_SHOWN)
        states = self.ledger.pause_states()
        return [
            _described(schedule, table.timezone.key, states.get(job_id), firings.get(job_id, []), now)
            for job_id, schedule in table.items()
        ]

    def act(self, viewer: Viewer, job_id: str, action: str) -> dict[str, Any]:
        """Run now, pause or resume the schedule of ``job_id``, audited as ``schedule <action>``.

        Raises:
            ActionError: 400 for an action not in ``ACTIONS``, 404 for no such schedule, 422
                for a run now of a job not declared in this app or whose payload it refuses.
        """
        if action not in ACTIONS:
            raise ActionError(400, f"no schedule action {action[:40]!r}; there are {', '.join(ACTIONS)}")
        schedule = self.board.runtime.cron.get(job_id)
        if schedule is None:
            raise ActionError(404, f"no schedule {job_id[:200]!r}")
        if action == "run-now":
            return self.views.audited(viewer, "schedule run-now", job_id, lambda: self._run_now(schedule))
        paused = action == "pause"
        return self.views.audited(
            viewer, f"schedule {action}", job_id, lambda: self._set_paused(job_id, paused, viewer.who)
        )

    def _run_now(self, schedule: Schedule) -> dict[str, Any]:
        try:
            message_id = self.firer.run_now(schedule, datetime.now(UTC))
        except dramatiq.errors.ActorNotFound:
            raise ActionError(422, f"no actor {schedule.job_id!r} is declared in this app") from None
        except errors.PayloadError as exc:
            raise ActionError(422, f"the schedule's payload is refused: {exc}") from None
        return {"schedule": schedule.job_id, "job": message_id}

    def _set_paused(self, job_id: str, paused: bool, who: str) -> dict[str, Any]:
        state = self.ledger.set_paused(job_id, paused, changed_by=who)
        return {"schedule": job_id, "paused": state["paused"]}

    # Handlers.

    async def page(self, ctx: Context) -> Response:
        """The schedules page."""
        from docjobs.web.board.pages import render  # pages import the views this module needs

        listing = await run_in_threadpool(self.listing)
        return render(ctx, "schedules.html", schedules=listing, shown=FIRINGS_SHOWN)

    async def form(self, ctx: Context) -> Response:
        """Run now, pause or resume from the page's buttons, then back to the page."""
        form = await forms.form(ctx.request)
        self.board.access.check_csrf(ctx.request, ctx.viewer, inputs.form_field(form, "csrf"))
        job_id, action = inputs.path(ctx.request, "job_id"), inputs.path(ctx.request, "action")
        await run_in_threadpool(self.act, ctx.viewer, job_id, action)
        return RedirectResponse(f"{self.board.base}/schedules", status_code=303)

    async def api_list(self, ctx: Context) -> Response:
        """Every schedule, as the page shows them."""
        return json_response({"schedules": await run_in_threadpool(self.listing)})

    async def api_action(self, ctx: Context) -> Response:
        """Run now, pause or resume a schedule (the body, if any, is ``{}``)."""
        self.board.access.check_csrf(ctx.request, ctx.viewer, ctx.request.headers.get("x-csrf-token"))
        api_bodies.read(api_bodies.EmptyBody, await forms.body(ctx.request))
        job_id, action = inputs.path(ctx.request, "job_id"), inputs.path(ctx.request, "action")
        return json_response(await run_in_threadpool(self.act, ctx.viewer, job_id, action))


def _described(
    schedule: Schedule, timezone: str, state: Row | None, firings: list[Row], now: datetime
) -> dict[str, Any]:
    app = declared.get(schedule.job_id) if schedule.variable is None else None
    return {
        "job": schedule.job_id,
        "expression": schedule.expression,
        "timezone": timezone,
        "enabled": schedule.enabled,
        "source": app.declared_by if app is not None else OWN_SOURCE,
        "variable": schedule.variable,
        "paused": bool(state and state["paused"]),
        "pausedAt": state["paused_at"] if state and state["paused"] else None,
        "changedBy": state["changed_by"] if state else None,
        "next": schedule.next_slot(now),
        "firings": [_firing(row) for row in firings],
    }


def _firing(row: Row) -> dict[str, Any]:
    return {
        "slot": row["slot"],
        "status": row["status"],
        "runNow": row["fired_by"] == RUN_NOW_SENDER,
        "job": row["job_id"],
        "firedBy": row["fired_by"],
        "startedAt": row["started_at"],
        "finishedAt": row["finished_at"],
        "error": row["error"],
    }
