"""What a board page and its JSON twin share: the data each shows, and each action, audited.

Every page has a JSON twin under ``api/``: what a page shows, the API returns, and
what a form does, the API does. Both read it here, so they cannot drift apart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from docjobs.db.board import PAGE_SIZE, STATES
from docjobs.web.board import charts, forms, inputs
from docjobs.web.board.access import Viewer
from docjobs.web.board.actions import ACTIONS, ActionError
from docjobs.web.board.board import Board

logger = logging.getLogger(__name__)

#: How long the overview's counts are shared between viewers.
COUNTS_TTL_SECONDS = 5.0
#: Audit entries the audit page and its twin show.
AUDIT_ENTRIES = 200


class Views:
    """The board's data and actions, for pages and API alike.

    Args:
        board: The board's parts.
    """

    def __init__(self, board: Board) -> None:
        self.board = board
        self.store = board.store
        self.actions = board.actions
        self._counts: tuple[float, list[dict[str, Any]]] | None = None

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
        """Queues, totals, workers, schedules and the last hour's activity (``chart``: its drawing)."""
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
            for job_id, schedule in self.board.runtime.cron.items()
        ]
        activity = self.store.activity(charts.WINDOW_SECONDS, charts.STEP_SECONDS)
        chart = charts.activity_chart(activity, now)
        return {
            "provider": self.board.runtime.settings.provider,
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

    # Jobs.

    def jobs(self, request: Request) -> dict[str, Any]:
        """A page of the jobs list, newest first, as the query's filter and cursor choose."""
        where, before = forms.job_filter(lambda name: inputs.query(request, name))
        rows = self.store.job_page(
            where, before=before, limit=PAGE_SIZE + 1
        )  # one more: is there a next page?
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        return {"jobs": rows, "next": rows[-1]["id"] if more else None, "filter": where}

    def job(self, job_id: str) -> dict[str, Any]:
        """One job with its attempts and tasks.

        Raises:
            ActionError: 404 when there is no such job.
        """
        job = self.store.job(job_id)
        if job is None:
            raise ActionError(404, f"no job {job_id}")
        return {
            "job": job,
            "attempts": self.store.job_attempts(job_id),
            "tasks": self.store.job_tasks(job_id),
        }

    def audit(self, limit: int = AUDIT_ENTRIES) -> list[dict[str, Any]]:
        """The audit log's latest ``limit`` entries, newest first."""
        return self.store.audit_page(limit)

    # Actions.

    def act(self, viewer: Viewer, action: str, job_id: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        """Do one of ``ACTIONS`` to a job, audited.

        Raises:
            ActionError: 404 for an unknown action, or the action's own refusal.
        """
        if action not in ACTIONS:
            raise ActionError(404, f"no action {action!r}; the board knows {', '.join(ACTIONS)}")
        return self.audited(viewer, action, job_id, lambda: self.actions.run(action, job_id, payload))

    def audited(
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

    def queue(self, viewer: Viewer, queue: str, action: str) -> dict[str, Any]:
        """Pause or resume ``queue``, audited.

        Raises:
            ActionError: 404 for an action other than pause and resume.
        """
        if action not in ("pause", "resume"):
            raise ActionError(404, f"no queue action {action!r}; there are pause and resume")
        return self.audited(viewer, action, None, lambda: self.actions.pause(queue, action == "pause"))

    def trigger(self, viewer: Viewer, job: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a new ``job`` with ``payload``, audited."""
        return self.audited(viewer, "trigger", None, lambda: self.actions.trigger(job, payload))
