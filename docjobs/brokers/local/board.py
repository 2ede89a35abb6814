"""The board's actions on the local provider: the table is the queue, so each is a row update.

After the update, a job that can run again is announced as a send would announce it,
so a consumer starts it without waiting for a poll.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from docjobs.brokers.base import ActionRefused, Broker, JobRef, refusal

if TYPE_CHECKING:
    from docjobs.db.board import JobFilter
    from docjobs.db.store import JobStore


class QueueInTable(Broker):
    """A provider whose queue is the job table (local): the board's actions update its rows."""

    store: JobStore

    @abc.abstractmethod
    def announce(self, queue: str, actor: str, job_id: str, delay_ms: int | None = None) -> None:
        """Tell whoever consumes ``queue`` that ``job_id`` is there."""

    @abc.abstractmethod
    def wake(self, queue_name: str | None = None) -> None:
        """Wake this process's consumers of a queue (of every queue when ``None``)."""

    def set_paused(self, queue: str, paused: bool) -> None:
        """The claim reads the board's row; a resumed queue's consumers are woken."""
        if not paused:
            self.wake(queue)  # this process's consumers, then everyone listening
            self.store.queues.notify(queue)

    def cancel(self, job: JobRef) -> None:
        if self._rows().cancel(job.id) is None:
            raise ActionRefused(refusal("cancel", job))

    def delete(self, job: JobRef) -> None:
        if self._rows().delete(job.id) is None:
            raise ActionRefused(refusal("delete", job))

    def run_now(self, job: JobRef) -> None:
        row = self._rows().promote(job.id)
        if row is None:
            raise ActionRefused(refusal("promote", job))
        self.announce(row["queue"], row["actor"], row["id"])

    def retry(self, job: JobRef, payload: Mapping[str, Any] | None) -> str:
        row = self._rows().retry(job.id, payload)
        if row is None:  # it changed state since it was read
            raise ActionRefused(refusal("retry", job))
        self.announce(row["queue"], row["actor"], row["id"])
        return job.id

    def bulk(self, action: Literal["retry", "delete"], where: JobFilter, ids: list[str] | None) -> int:
        changed = self._rows().bulk(action, where, ids)
        if action == "retry":
            for row in {row["queue"]: row for row in changed}.values():  # one per queue wakes it
                self.announce(row["queue"], row["actor"], row["id"])
        return len(changed)
