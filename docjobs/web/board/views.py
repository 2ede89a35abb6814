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

from docjobs.brokers.base import JobRef
from docjobs.db.board import PAGE_SIZE, STATES, JobFilter, counted_states
from docjobs.web.board import applicable, chart_svg, charts, forms, inputs, queue_waits
from docjobs.web.board.access import Viewer
from docjobs.web.board.actions import ActionError
from docjobs.web.board.board import Board

logger = logging.getLogger(__name__)

#: How long the overview's counts are shared between viewers.
COUNTS_TTL_SECONDS = 5.0
#: Audit entries the audit page and its twin show.
AUDIT_ENTRIES = 200
#: Jobs the list's count stops at: it scans until then, and pages refresh every 2 s.
#: Beyond, a state or queue filter reads the overview's shared counts; others say "more than".
COUNT_CAP = 1_000
#: Log lines a job's page and its twin show: the newest (a job keeps up to joblogs.MAX_LINES_PER_JOB).
JOB_LOG_LINES = 200
#: The deepest numbered page: OFFSET scans the rows it skips, so page numbers stop where
#: that is still cheap; "Older" goes on by keyset (``before=``), at the same cost on any page.
MAX_PAGE = 200


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
        # Issue 22: each queue's depth and wait times beside its counts.
        counts = queue_waits.with_waits(
            counts, self.store.queue_waits(), self.board.runtime.broker.queue_depths()
        )
        self._counts = (time.monotonic(), counts)
        return counts

    def overview(self, window: charts.Window = charts.DEFAULT_WINDOW) -> dict[str, Any]:
        """Queues, totals, workers, schedules and the ``window``'s activity (``chart``: its drawing)."""
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
        # board-overview: every bucket of the chosen window, and the chart drawn from them.
        start, end = charts.span(window, now)
        activity = charts.activity(self.store.activity(start, end, window.step_seconds), window, start)
        return {
            "provider": self.board.runtime.settings.provider,
            "queues": queues,
            "totals": totals,
            "workers": self.store.workers(),
            "schedules": schedules,
            "activity": activity.as_json(),
            "chart": chart_svg.draw(activity),
        }

    # Jobs.

    def jobs(self, request: Request) -> dict[str, Any]:
        """A page of the jobs list, newest first, as the query's filter and page (or cursor) choose.

        Returns:
            ``jobs``; ``next``, the cursor of the page after; ``filter``; ``total`` matching jobs
            and ``totalExact`` (false: more than ``total``); ``page``, its number (``None`` when
            reached by cursor); ``lastPage``, the last numbered page with jobs (``None`` when the
            total is not exact).

        Raises:
            ActionError: 400 for a bad filter, page number or cursor.
        """
        where, before = forms.job_filter(lambda name: inputs.query(request, name))
        if before and self.store.job(before) is None:
            raise forms.BadFilter(
                f"before must be the id of a job on the list (the cursor of its Older link), "
                f"not {before[:60]!r}: no such job, or it was deleted since"
            )
        page = None if before else _page_number(inputs.query(request, "page"))
        offset = (page - 1) * PAGE_SIZE if page else 0
        # One more than a page: is there a next one?
        rows = self.store.job_page(where, before=before, limit=PAGE_SIZE + 1, offset=offset)
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        if page is not None and not more and (rows or page == 1):  # the last page: all are counted
            total, exact = offset + len(rows), True
        else:
            total, exact = self._job_total(where)
            if page is not None and rows:  # counts may be a few seconds old: never fewer than the page shows
                shown = offset + len(rows)
                total = max(total, shown + more) if exact else max(total, shown)
        last_page = min(max(1, -(-total // PAGE_SIZE)), MAX_PAGE) if exact else None
        return {
            "jobs": rows,
            "next": rows[-1]["id"] if more else None,
            "filter": where,
            "total": total,
            "totalExact": exact,
            "page": page,
            "lastPage": last_page,
        }

    def _job_total(self, where: JobFilter) -> tuple[int, bool]:
        """How many jobs match, and whether exactly: counted afresh up to ``COUNT_CAP``; beyond,
        a state and queue filter reads the overview's shared counts (at most a few seconds old,
        which a total that large does not show), any other says "more than" ``COUNT_CAP``."""
        count = self.store.job_count(where, cap=COUNT_CAP + 1)
        if count <= COUNT_CAP:
            return count, True
        if where.actor is None and where.search is None and where.since is None and where.until is None:
            states = counted_states(where.state)
            queues = [q for q in self._queue_counts() if where.queue is None or q["queue"] == where.queue]
            return max(count, sum(int(q[state]) for q in queues for state in states)), True
        return COUNT_CAP, False

    def job(self, job_id: str) -> dict[str, Any]:
        """One job with its attempts, tasks, and the progress and newest log lines it reported.

        Raises:
            ActionError: 404 when there is no such job.
        """
        job = self.store.job(job_id)
        if job is None:
            raise ActionError(404, f"no job {job_id}")
        broker = self.board.runtime.broker
        now = datetime.now(UTC)
        offered = applicable.offered(JobRef.from_row(job), broker.capabilities, broker.name, now)
        return {
            "job": job,
            "attempts": self.store.job_attempts(job_id),
            "tasks": self.store.job_tasks(job_id),
            "actions": [action.name for action in offered],
            # A retry with an edited payload: who, when, and the payload before it.
            "payloadEdit": self.store.payload_edit(job_id),
            # board-joblogs: the progress and newest lines the job reported (docjobs.log_line).
            "log": self._job_log(job_id),
        }

    def _job_log(self, job_id: str) -> dict[str, Any]:
        store = self.board.runtime.store
        if store is None:  # pragma: no cover - the board is built only with a database
            return {"progress": None, "written": 0, "updatedAt": None, "lines": []}
        return store.logs.read(job_id, limit=JOB_LOG_LINES)

    def audit(self, limit: int = AUDIT_ENTRIES) -> list[dict[str, Any]]:
        """The audit log's latest ``limit`` entries, newest first."""
        return self.store.audit_page(limit)

    # Actions.

    def act(
        self,
        viewer: Viewer,
        action: str,
        job_id: str,
        payload: dict[str, Any] | None,
        *,
        confirmed: bool,
    ) -> dict[str, Any]:
        """Do one of ``ACTIONS`` to a job, audited.

        Args:
            confirmed: The admin said yes (the form's ``confirm=yes``, the API's ``"confirm": true``);
                the actions in ``applicable.CONFIRMED`` are refused without it (after the 409 of
                one that does not apply, which tells more).

        Raises:
            ActionError: 404 for an unknown action, 400 for one not confirmed, or the action's own refusal.
        """
        name = applicable.ALIASES.get(action, action)  # audited under its name of today
        # An unknown action is refused (404) by ``run``, before anything is done or audited.
        return self.audited(
            viewer, name, job_id, lambda: self.actions.run(name, job_id, payload, confirmed=confirmed)
        )

    def bulk(
        self,
        viewer: Viewer,
        action: str,
        where: JobFilter,
        ids: list[str] | None,
        *,
        everything: bool,
        confirmed: bool,
    ) -> dict[str, Any]:
        """Retry or delete the jobs among ``ids`` or matching ``where``, audited.

        Args:
            everything: An empty filter means every job, on purpose (the API's ``{"all": true}``).
            confirmed: The admin said yes; a delete is refused without it.

        Raises:
            ActionError: 400 for a delete not confirmed, or the bulk action's own refusal.
        """
        if action == "delete" and not confirmed:
            raise ActionError(400, applicable.unconfirmed("the bulk delete"))
        return self.audited(
            viewer,
            f"bulk {action}",
            None,
            lambda: self.actions.bulk(action, where, ids, everything=everything),
        )

    def clean(self, viewer: Viewer, status: str, days: float, *, confirmed: bool) -> dict[str, Any]:
        """Delete finished jobs of ``status`` older than ``days``, audited.

        Raises:
            ActionError: 400 when not confirmed, or the clean-up's own refusal.
        """
        if not confirmed:
            raise ActionError(400, applicable.unconfirmed("the clean-up"))
        return self.audited(viewer, "clean", None, lambda: self.actions.clean(status, days))

    def audited(
        self, viewer: Viewer, action: str, target: str | None, act: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Do ``act`` and record it in the audit log (and the process log).

        Args:
            target: The job acted on; ``None`` for none, or for a job ``act`` makes (its answer's ``job``).
        """
        outcome = act()
        self._counts = None  # the admin should see what they just did
        target = target or outcome.get("job")  # a triggered job's id is known once it is sent
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

    def trigger_needs_confirming(self) -> bool:
        """Whether a trigger must be confirmed: in production a job does its work for real
        (a document sealed, an email sent), so the page asks first and the server checks."""
        return not self.board.runtime.settings.is_development

    def trigger(
        self, viewer: Viewer, job: str, payload: dict[str, Any], *, confirmed: bool
    ) -> dict[str, Any]:
        """Send a new ``job`` with ``payload``, audited.

        Raises:
            ActionError: 400 in production when not confirmed, or the send's own refusal.
        """
        if self.trigger_needs_confirming() and not confirmed:
            raise ActionError(400, applicable.unconfirmed(f"triggering {job} in production"))
        return self.audited(viewer, "trigger", None, lambda: self.actions.trigger(job, payload))


def _page_number(text: str) -> int:
    """The ``page`` query parameter (1 when absent).

    Raises:
        BadFilter: Unless it is a whole number from 1 to ``MAX_PAGE``.
    """
    if not text:
        return 1
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        shown = text[:20]
        raise forms.BadFilter(f"page must be a whole number from 1 to {MAX_PAGE}, not {shown!r}")
    return int(text)
