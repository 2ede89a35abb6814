"""What the board does to jobs, on each provider.

On ``local`` the table is the queue: an action is a row update, and consumers are
woken. On ``bullmq`` and ``inngest`` the table is the jobs' history and the queue
is elsewhere, so a retry sends the job again as a new job (its row links to the
one it retries), and actions that would reach into Redis or Inngest are refused
with 409 for now.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from docjobs import errors, registry
from docjobs.brokers.postgres.broker import PostgresBroker
from docjobs.db.board import BoardStore
from docjobs.runtime import Runtime

ACTIONS = ("retry", "cancel", "promote", "delete")


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
        self.local = isinstance(runtime.broker, PostgresBroker)

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
            raise ActionError(
                409, f"{action} is not available on the {self.runtime.settings.provider} provider yet"
            )
        done = {"cancel": self.store.cancel, "promote": self.store.promote, "delete": self.store.delete}[
            action
        ]
        row = done(job_id)
        if row is None:
            raise ActionError(409, _refusal(action, job))
        if action == "promote":
            self._wake(row["queue"])
        return {"job": job_id, "status": _status_after(action)}

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
            self._wake(row["queue"])
            return {"job": job["id"], "status": "PENDING", "edited": canonical is not None}
        # The queue is elsewhere: send the job again, as a new job.
        try:
            actor = registry.get(job["actor"])
        except errors.ActorNotFound as exc:
            raise ActionError(409, str(exc)) from exc
        try:
            message = actor.message_with_options(kwargs=canonical or job["payload"])
        except errors.PayloadError as exc:  # stored before the job's payload model changed
            raise ActionError(409, f"its stored payload no longer validates: {exc}") from exc
        self.runtime.broker.enqueue(message)
        return {"job": job["id"], "retried_as": message.message_id, "edited": canonical is not None}

    def _wake(self, queue: str) -> None:
        assert self.runtime.store is not None  # the local provider has one
        self.runtime.store.notify(queue)
        broker = self.runtime.broker
        if isinstance(broker, PostgresBroker):
            broker.wake(queue)


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
