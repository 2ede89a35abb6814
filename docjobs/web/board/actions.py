"""What the board does to jobs, through the provider's broker (``brokers.base.Broker``).

The board checks the request (the job exists, a payload fits its job) and writes
what it owns (the paused-queue row); the provider does the action. Where the
table is the queue (local) an action is a row update and a retry reruns the same
job; where the queue is elsewhere (bullmq, inngest) a retry sends the job again as
a new job (the answer names it), and bulk actions go job by job, each job's state
deciding. ``capabilities`` says which.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from docjobs import errors, registry
from docjobs.brokers.base import ActionRefused, JobRef
from docjobs.db.board import BoardStore, JobFilter
from docjobs.runtime import Runtime
from docjobs.web.board import applicable

T = TypeVar("T")

#: The actions on one job (``applicable`` says which apply to it).
ACTIONS = tuple(applicable.JOB_ACTIONS)
BULK_ACTIONS = ("retry", "delete")
#: Finished states ``clean`` may delete.
CLEANABLE = ("COMPLETED", "FAILED", "CANCELLED")
#: The most jobs a bulk action by selection takes.
MAX_SELECTION = 1_000
#: The most jobs a bulk action by filter takes where it goes job by job (bullmq, inngest).
MAX_FILTERED = 10_000


class ActionError(Exception):
    """The action cannot be done: 404 (no such job), 409 (not in a state for it), 422 (bad payload).

    Attributes:
        title: What a page refusing it is headed (``None``: by the request, "Not done" for a POST).
    """

    title: str | None = None

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BoardActions:
    """Retry, run again, run now, cancel and delete one job, and the bulk and queue actions.

    Args:
        runtime: The process's runtime (its broker does the actions).
        store: The board's store.
    """

    def __init__(self, runtime: Runtime, store: BoardStore) -> None:
        self.runtime = runtime
        self.store = store

    def run(
        self, action: str, job_id: str, payload: Mapping[str, Any] | None = None, *, confirmed: bool = False
    ) -> dict[str, Any]:
        """Do ``action`` to ``job_id``; returns what happened, for the audit log and the answer.

        Args:
            action: One of ``ACTIONS`` (or an old name in ``applicable.ALIASES``).
            confirmed: The admin said yes; ``applicable.CONFIRMED`` actions are refused without it.

        Raises:
            ActionError: The job is missing, the action does not apply to its state (409,
                checked before the provider is asked), it is not confirmed (400), its job is
                not declared (422, retry and run again) or the payload is bad.
        """
        name = applicable.ALIASES.get(action, action)
        if name not in applicable.JOB_ACTIONS:
            raise ActionError(404, f"no action {action!r}; the board knows {', '.join(ACTIONS)}")
        row = self.store.job(job_id)
        if row is None:
            raise ActionError(404, f"no job {job_id}")
        job = JobRef.from_row(row)
        broker = self.runtime.broker
        chosen = applicable.JOB_ACTIONS[name]
        why_not = applicable.refusal(chosen, job, broker.capabilities, broker.name, datetime.now(UTC))
        if why_not is not None:
            raise ActionError(409, why_not)
        if name in applicable.CONFIRMED and not confirmed:
            raise ActionError(400, applicable.unconfirmed(chosen.doing.format(job=job_id)))
        if name in ("retry", "run-again"):
            _require_declared(chosen, job)
        if name == "retry":
            return self._retry(job, payload)
        if payload is not None:
            raise ActionError(422, f"{name} takes no payload")
        if name == "run-again":  # a copy, as the trigger page sends it: the stored run stays
            return {"job": job_id, "ran_again_as": self.trigger(job.actor, job.payload)["job"]}
        do = {"cancel": broker.cancel, "run-now": broker.run_now, "delete": broker.delete}[name]
        _refused_as_409(lambda: do(job))
        return {"job": job_id, "status": _status_after(name)}

    def bulk(
        self, action: str, where: JobFilter, ids: list[str] | None, *, everything: bool = False
    ) -> dict[str, Any]:
        """Retry or delete the jobs among ``ids`` (a selection) or matching ``where`` (``ids`` is None).

        Args:
            everything: ``where`` is empty on purpose: every job is meant. An empty filter is
                refused without it (a misspelt filter field once read as none, and a bulk
                delete took every job).

        Raises:
            ActionError: An unknown action, an empty filter not meant as every job, too big a
                selection, or a provider that cannot yet.
        """
        if action not in BULK_ACTIONS:
            raise ActionError(404, f"no bulk action {action!r}; there are {', '.join(BULK_ACTIONS)}")
        if ids is None and everything and where != JobFilter():
            raise ActionError(400, 'a filter with "all": true takes no other field: every job is every job')
        if ids is None and not everything and where == JobFilter():
            raise ActionError(
                400, f'an empty filter is every job: to {action} every job, say so ({{"all": true}} as the '
                "filter); nothing was done",
            )  # fmt: skip
        if ids is not None and not ids:
            raise ActionError(400, "select at least one job")
        if ids is not None and len(ids) > MAX_SELECTION:
            raise ActionError(413, f"select at most {MAX_SELECTION} jobs, or act on the filter instead")
        broker = self.runtime.broker
        if broker.capabilities.bulk_by_filter:
            chosen: Literal["retry", "delete"] = "retry" if action == "retry" else "delete"
            count = broker.bulk(chosen, where, ids)
            return {"action": action, "count": count, "filter": _described(where, ids)}
        if ids is None:
            ids = self._matching(where)
        # One by one: each job's state decides what can be done to it, and the
        # answer tells which were refused and why.
        done: list[dict[str, Any]] = []
        refused: dict[str, str] = {}
        for job_id in ids:
            try:
                done.append(self.run(action, job_id, confirmed=True))  # the bulk action was confirmed
            except ActionError as exc:
                refused[job_id] = exc.reason
        retried_as = [outcome["retried_as"] for outcome in done if "retried_as" in outcome]
        return {"action": action, "count": len(done), "refused": refused, "retried_as": retried_as}

    def _matching(self, where: JobFilter) -> list[str]:
        """The ids a filter matches, for providers that act job by job (at most ``MAX_FILTERED``)."""
        rows = self.store.job_page(where, before=None, limit=MAX_FILTERED + 1)
        if len(rows) > MAX_FILTERED:
            raise ActionError(
                413, f"the filter matches more than {MAX_FILTERED:,} jobs on this provider: narrow it down"
            )
        return [row["id"] for row in rows]

    def clean(self, status: str, days: float) -> dict[str, Any]:
        """Delete jobs of a finished ``status`` older than ``days`` (history rows elsewhere)."""
        if status not in CLEANABLE:
            raise ActionError(400, f"state must be one of {', '.join(s.lower() for s in CLEANABLE)}")
        if not days >= 0:
            raise ActionError(400, "the age must be zero or more days")
        return {"status": status, "older_than_days": days, "count": self.store.clean(status, days)}

    def pause(self, queue: str, paused: bool) -> dict[str, Any]:
        """Stop (or let) consumers claim jobs of ``queue``."""
        if not queue or len(queue) > 200:
            raise ActionError(400, "name a queue")
        # What the board shows, what the local claim and Inngest functions read: written
        # first, so a run woken by the resume event finds its queue running.
        self.store.set_paused(queue, paused)
        _refused_as_409(lambda: self.runtime.broker.set_paused(queue, paused))
        return {"queue": queue, "paused": paused}

    def trigger(self, job_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send a new job, its payload validated as any send's."""
        try:
            message = registry.get(job_id).message_with_options(kwargs=dict(payload))
            self.runtime.broker.enqueue(message)  # the send-time checks may refuse it too
        except (errors.PayloadError, errors.ActorNotFound) as exc:
            raise ActionError(422, str(exc)) from exc
        return {"job": message.message_id, "actor": job_id}

    def _retry(self, job: JobRef, payload: Mapping[str, Any] | None) -> dict[str, Any]:
        canonical = None
        if payload is not None:
            try:
                canonical = registry.get(job.actor).validate(payload)
            except (errors.PayloadError, errors.ActorNotFound) as exc:
                raise ActionError(422, str(exc)) from exc
        broker = self.runtime.broker
        runs = _refused_as_409(lambda: broker.retry(job, canonical))
        outcome: dict[str, Any] = {"job": job.id, "edited": canonical is not None}
        if canonical is not None:  # what the failed attempts ran with; the audit entry keeps it
            outcome["payload_before"] = dict(job.payload)
        if broker.capabilities.retry_in_place:
            return {**outcome, "status": "PENDING"}
        return {**outcome, "retried_as": runs}


def _refused_as_409(act: Callable[[], T]) -> T:
    """Run a provider's action; its refusals (a state, an action it lacks) are 409s."""
    try:
        return act()
    except (ActionRefused, errors.NotSupportedError) as exc:
        raise ActionError(409, str(exc)) from exc


def _require_declared(action: applicable.JobAction, job: JobRef) -> None:
    """Refuse (422) to run again a job no actor of this app is declared as: it would fail at once."""
    if job.actor not in registry.declared():
        raise ActionError(
            422,
            f"cannot {action.doing.format(job=job.id)}: no job actor is declared as {job.actor!r} in "
            "this app (it would fail at once); declare it, or delete the job",
        )


def _described(where: JobFilter, ids: list[str] | None) -> dict[str, Any]:
    if ids is not None:
        return {"selected": len(ids)}
    return {name: value for name, value in vars(where).items() if value is not None}


def _status_after(action: str) -> str:
    return {"cancel": "CANCELLED", "run-now": "PENDING", "delete": "DELETED"}[action]
