"""Providers whose queue is elsewhere (bullmq, inngest): the job table is their history.

The board's actions are written once here: a retry sends the job again as a new
job, and a waiting job is taken out of the provider's queue, after which the
history row records the outcome. So is the relay of their job outbox.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from docjobs import errors, registry
from docjobs.brokers.base import FINISHED, ActionRefused, Broker, JobRef, refusal

if TYPE_CHECKING:
    from docjobs.brokers.history import JobHistory
    from docjobs.brokers.outbox import Outbox


class QueueElsewhere(Broker):
    """A provider whose queue is not the job table (bullmq, inngest): the table is the history.

    A retry sends the job again as a new job; a waiting job is cancelled or deleted
    by taking it out of the queue (:meth:`_withdraw`), unless a worker holds it; a
    delayed one is run now by :meth:`_promote`. The history row records the outcome.
    """

    history: JobHistory | None = None
    #: Sends made inside an app transaction (``None`` without a database: ``conn=`` is refused).
    outbox: Outbox | None = None

    def relay(self, ids: Sequence[str] | None = None) -> int:
        """Send outbox rows on: ``ids``, or those their after-commit send missed.

        Returns:
            How many jobs were sent.
        """
        return 0 if self.outbox is None else self.outbox.relay(ids)

    @abc.abstractmethod
    def _withdraw(self, job: JobRef, action: str) -> bool:
        """Take a waiting job out of the queue; ``False`` when a worker already holds it."""

    @abc.abstractmethod
    def _promote(self, job: JobRef) -> bool:
        """Make a delayed job due now; ``False`` when it is no longer scheduled."""

    def cancel(self, job: JobRef) -> None:
        if job.status != "PENDING":
            raise ActionRefused(refusal("cancel", job))
        self._take_out(job, "cancel")
        self._rows().set_history_status(job.id, "CANCELLED", "cancelled on the board")

    def delete(self, job: JobRef) -> None:
        if job.status == "PROCESSING":
            raise ActionRefused(refusal("delete", job))
        if job.status == "PENDING":
            self._take_out(job, "delete")
        self._rows().delete(job.id)

    def run_now(self, job: JobRef) -> None:
        if job.status != "PENDING" or job.run_at is None or job.run_at <= datetime.now(UTC):
            raise ActionRefused(refusal("promote", job))
        if not self._promote(job):
            raise ActionRefused(f"cannot promote job {job.id}: it is not scheduled any more")

    def retry(self, job: JobRef, payload: Mapping[str, Any] | None) -> str:
        if job.status not in FINISHED:
            raise ActionRefused(refusal("retry", job))
        try:
            actor = registry.get(job.actor)
        except errors.ActorNotFound as exc:
            raise ActionRefused(str(exc)) from exc
        try:
            message = actor.message_with_options(kwargs=dict(payload or job.payload))
            self.enqueue(message)
        except errors.PayloadError as exc:  # stored before the job's payload model (or limits) changed
            raise ActionRefused(f"its stored payload no longer validates: {exc}") from exc
        return message.message_id

    def _take_out(self, job: JobRef, action: str) -> None:
        if self.history is not None:
            self.history.flush()  # so no event of this job is written after the change
        if not self._withdraw(job, action):
            raise ActionRefused(f"cannot {action} job {job.id}: a worker has already fetched it")
