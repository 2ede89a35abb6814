"""What the board does to jobs, on each provider.

On ``local`` the table is the queue: an action is a row update, and consumers are
woken. On ``bullmq`` and ``inngest`` the table is the jobs' history and the queue
is elsewhere: a retry sends the job again as a new job (the answer names it); a
waiting job is cancelled or deleted by taking it out of Redis (unless a worker
already holds it) or by cancelling its Inngest run; an Inngest delay ends early on
a promote event, a scheduled bullmq job is moved to its queue; a paused queue is a
Redis set workers read, or a row Inngest functions read before they start; bulk
actions go job by job.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from docjobs import errors, registry
from docjobs.brokers.local.broker import LocalBroker
from docjobs.db.board import BoardStore, JobFilter
from docjobs.runtime import Runtime

ACTIONS = ("retry", "cancel", "promote", "delete")
BULK_ACTIONS = ("retry", "delete")
#: Finished states ``clean`` may delete.
CLEANABLE = ("COMPLETED", "FAILED", "CANCELLED")
#: The most jobs a bulk action by selection takes.
MAX_SELECTION = 1_000
#: The most jobs a bulk action by filter takes where it goes job by job (bullmq, inngest).
MAX_FILTERED = 10_000


class ActionError(Exception):
    """The action cannot be done: 404 (no such job), 409 (not in a state for it), 422 (bad payload)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BoardActions:
    """Retry, cancel, promote and delete one job.

    Args:
        runtime: The process's runtime (its broker decides how).
        store: The board's store.
    """

    def __init__(self, runtime: Runtime, store: BoardStore) -> None:
        self.runtime = runtime
        self.store = store
        self.local = isinstance(runtime.broker, LocalBroker)

    def run(self, action: str, job_id: str, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Do ``action`` to ``job_id``; returns what happened, for the audit log and the answer.

        Raises:
            ActionError: The job is missing, in the wrong state, or the payload is bad.
        """
        job = self.store.job(job_id)
        if job is None:
            raise ActionError(404, f"no job {job_id}")
        if action == "retry":
            return self._retry(job, payload)
        if payload is not None:
            raise ActionError(422, f"{action} takes no payload")
        if not self.local:
            return self._elsewhere(action, job)
        done = {"cancel": self.store.cancel, "promote": self.store.promote, "delete": self.store.delete}[
            action
        ]
        row = done(job_id)
        if row is None:
            raise ActionError(409, _refusal(action, job))
        if action == "promote":
            self._wake(row)
        return {"job": job_id, "status": _status_after(action)}

    def bulk(self, action: str, where: JobFilter, ids: list[str] | None) -> dict[str, Any]:
        """Retry or delete the jobs among ``ids`` (a selection) or matching ``where`` (``ids`` is None).

        Raises:
            ActionError: An unknown action, too big a selection, or a provider that cannot yet.
        """
        if action not in BULK_ACTIONS:
            raise ActionError(404, f"no bulk action {action!r}; there are {', '.join(BULK_ACTIONS)}")
        if ids is not None and not ids:
            raise ActionError(400, "select at least one job")
        if ids is not None and len(ids) > MAX_SELECTION:
            raise ActionError(413, f"select at most {MAX_SELECTION} jobs, or act on the filter instead")
        if not self.local:
            if ids is None:
                ids = self._matching(where)
            # One by one: each job's state decides what can be done to it, and the
            # answer tells which were refused and why.
            done: list[dict[str, Any]] = []
            refused: dict[str, str] = {}
            for job_id in ids:
                try:
                    done.append(self.run(action, job_id))
                except ActionError as exc:
                    refused[job_id] = exc.reason
            retried_as = [outcome["retried_as"] for outcome in done if "retried_as" in outcome]
            return {"action": action, "count": len(done), "refused": refused, "retried_as": retried_as}
        changed = self.store.bulk(action, where, ids)
        if action == "retry":
            for row in {row["queue"]: row for row in changed}.values():  # one per queue wakes it
                self._wake(row)
        return {"action": action, "count": len(changed), "filter": _described(where, ids)}

    def _matching(self, where: JobFilter) -> list[str]:
        """The ids a filter matches, for providers that act job by job (at most ``MAX_FILTERED``)."""
        rows = self.store.job_page(where, before=None, limit=MAX_FILTERED + 1)
        if len(rows) > MAX_FILTERED:
            raise ActionError(
                413, f"the filter matches more than {MAX_FILTERED} jobs on this provider: narrow it down"
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
        set_paused = getattr(self.runtime.broker, "set_paused", None)  # Redis's and Inngest's
        if set_paused is not None:
            set_paused(queue, paused)
        broker, store = self.runtime.broker, self.runtime.store
        if isinstance(broker, LocalBroker) and store is not None and not paused:
            broker.wake(queue)  # this process's consumers, then everyone listening
            store.notify(queue)
        return {"queue": queue, "paused": paused}

    def trigger(self, job_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send a new job, its payload validated as any send's."""
        try:
            message = registry.get(job_id).message_with_options(kwargs=dict(payload))
            self.runtime.broker.enqueue(message)  # the send-time checks may refuse it too
        except (errors.PayloadError, errors.ActorNotFound) as exc:
            raise ActionError(422, str(exc)) from exc
        return {"job": message.message_id, "actor": job_id}

    def _elsewhere(self, action: str, job: dict[str, Any]) -> dict[str, Any]:
        """Cancel, delete or promote where the queue is not the table.

        A finished job is only history. A waiting bullmq job is taken out of Redis,
        unless a worker has fetched it already (workers hold fetched and delayed
        messages in memory, out of reach); a waiting inngest job's run is cancelled.
        A running job is left alone.
        """
        if action == "promote":
            return self._promote_elsewhere(job)
        if job["status"] == "PROCESSING" or (action == "cancel" and job["status"] != "PENDING"):
            raise ActionError(409, _refusal(action, job))
        if job["status"] == "PENDING":
            if self.runtime.history is not None:
                self.runtime.history.flush()  # so no event of this job is written after the change
            self._withdraw(action, job)
        if action == "delete":
            self.store.delete(job["id"])
            return {"job": job["id"], "status": "DELETED"}
        self.store.set_history_status(job["id"], "CANCELLED", "cancelled on the board")
        return {"job": job["id"], "status": "CANCELLED"}

    def _promote_elsewhere(self, job: dict[str, Any]) -> dict[str, Any]:
        if job["status"] != "PENDING" or job["run_at"] <= datetime.now(UTC):
            raise ActionError(409, _refusal("promote", job))
        broker = self.runtime.broker
        promote_run = getattr(broker, "promote_run", None)  # the inngest broker's
        if promote_run is not None:
            promote_run(job["id"])
            return {"job": job["id"], "status": "PENDING"}
        promote = getattr(broker, "promote", None)  # the Redis broker's
        redis_id = (job["options"] or {}).get("redis_message_id")
        if promote is None or redis_id is None:
            raise ActionError(409, self._not_yet("promote"))
        if not promote(job["queue"], redis_id):
            raise ActionError(409, f"cannot promote job {job['id']}: it is not scheduled any more")
        return {"job": job["id"], "status": "PENDING"}

    def _withdraw(self, action: str, job: dict[str, Any]) -> None:
        """Make sure a waiting job never runs: out of Redis (bullmq), or its run cancelled (inngest)."""
        broker = self.runtime.broker
        cancel_run = getattr(broker, "cancel_run", None)  # the inngest broker's
        if cancel_run is not None:
            cancel_run(job["id"])
            return
        take_out = getattr(broker, "remove_waiting", None)  # the Redis broker's
        redis_id = (job["options"] or {}).get("redis_message_id")
        if take_out is None or redis_id is None:
            raise ActionError(409, self._not_yet(f"{action} of a waiting job"))
        if not take_out(job["queue"], redis_id):
            raise ActionError(409, f"cannot {action} job {job['id']}: a worker has already fetched it")

    def _not_yet(self, what: str) -> str:
        return f"{what} is not available on the {self.runtime.settings.provider} provider yet"

    def _retry(self, job: dict[str, Any], payload: Mapping[str, Any] | None) -> dict[str, Any]:
        if job["status"] not in ("FAILED", "CANCELLED", "COMPLETED"):
            raise ActionError(409, _refusal("retry", job))
        canonical = None
        if payload is not None:
            try:
                canonical = registry.get(job["actor"]).validate(payload)
            except (errors.PayloadError, errors.ActorNotFound) as exc:
                raise ActionError(422, str(exc)) from exc
        if self.local:
            row = self.store.retry(job["id"], canonical)
            if row is None:  # it changed state since it was read
                raise ActionError(409, _refusal("retry", job))
            self._wake(row)
            return {"job": job["id"], "status": "PENDING", "edited": canonical is not None}
        # The queue is elsewhere: send the job again, as a new job.
        try:
            actor = registry.get(job["actor"])
        except errors.ActorNotFound as exc:
            raise ActionError(409, str(exc)) from exc
        try:
            message = actor.message_with_options(kwargs=canonical or job["payload"])
            self.runtime.broker.enqueue(message)
        except errors.PayloadError as exc:  # stored before the job's payload model (or limits) changed
            raise ActionError(409, f"its stored payload no longer validates: {exc}") from exc
        return {"job": job["id"], "retried_as": message.message_id, "edited": canonical is not None}

    def _wake(self, row: Mapping[str, Any]) -> None:
        """Wake the consumers of a job made runnable, as a send would."""
        broker = self.runtime.broker
        assert isinstance(broker, LocalBroker)  # only the local provider's rows are its queue
        broker.announce(row["queue"], row["actor"], row["id"])


def _described(where: JobFilter, ids: list[str] | None) -> dict[str, Any]:
    if ids is not None:
        return {"selected": len(ids)}
    return {name: value for name, value in vars(where).items() if value is not None}


def _status_after(action: str) -> str:
    return {"cancel": "CANCELLED", "promote": "PENDING", "delete": "DELETED"}[action]


def _refusal(action: str, job: Mapping[str, Any]) -> str:
    allowed = {
        "retry": "a completed, failed or cancelled job",
        "cancel": "a job that has not started",
        "promote": "a delayed job",
        "delete": "a job that is not running",
    }[action]
    return f"cannot {action} job {job['id']}: it is {job['status']}; {action} works on {allowed}"
