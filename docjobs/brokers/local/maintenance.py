"""Heartbeats and the rescuer: nothing stays PROCESSING after its worker died.

Each worker process beats every third of the lease: it upserts its ``worker`` row
and extends ``lease_until`` of every job it holds, in one statement. A job whose
lease ran out therefore belongs to a process that stopped beating (killed, frozen,
cut off from the database). Every half lease, each process tries to become the
round's maintainer with ``pg_try_advisory_xact_lock``; the one that gets it puts
expired jobs back to PENDING (or FAILED once they are out of retries, so a job that
kills its worker cannot loop forever), forgets silent workers and deletes finished
jobs past retention. The others skip the round.

A rescued job may still be running on a frozen worker that wakes up later; its
late ack names an old attempt and is ignored (see the consumer).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import dramatiq
import psycopg

from docjobs.db import pool

if TYPE_CHECKING:
    from docjobs.brokers.local.broker import LocalBroker

logger = logging.getLogger(__name__)

#: A worker row silent for this many leases is deleted.
STALE_WORKER_LEASES = 4


class Maintainer:
    """The heartbeat-and-rescue thread of one worker process.

    Args:
        broker: The broker whose worker id, store and lease to use.
        concurrency: Worker threads, shown on the board.
    """

    def __init__(self, broker: LocalBroker, concurrency: int) -> None:
        self.broker = broker
        self.concurrency = concurrency
        self.heartbeat_seconds = broker.lease_seconds / 3
        self.maintenance_seconds = broker.lease_seconds / 2
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Beat once, then keep beating in the background; safe to call twice."""
        if self._thread is not None:
            return
        self._beat()
        self._thread = threading.Thread(target=self._run, name="docjobs-maintainer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop beating and forget this worker; safe to call twice or before start."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.join(timeout)
        try:
            self.broker.store.delete_worker(self.broker.worker_id)
        except psycopg.Error as exc:
            logger.warning("Could not remove worker row: %s", exc)

    def _run(self) -> None:
        since_maintenance = 0.0
        while not self._stopping.wait(self.heartbeat_seconds):
            self._beat()
            since_maintenance += self.heartbeat_seconds
            if since_maintenance >= self.maintenance_seconds:
                since_maintenance = 0.0
                self.maintain()

    def _beat(self) -> None:
        try:
            self.broker.store.heartbeat(
                worker=self.broker.worker_id,
                held=self.broker.held(),
                queues=sorted(self.broker.queues),
                concurrency=self.concurrency,
                lease_seconds=self.broker.lease_seconds,
            )
        except psycopg.Error as exc:
            logger.warning("Heartbeat failed: %s", exc, extra={"action": "heartbeat_failed"})

    def maintain(self) -> None:
        """Run one maintenance round if no other process is running one."""
        try:
            rescued = self.broker.store.maintain(
                stale_worker_seconds=self.broker.lease_seconds * STALE_WORKER_LEASES,
                retention_days=self.broker.retention_days,
            )
        except psycopg.Error as exc:
            logger.warning("Maintenance round failed: %s", exc, extra={"action": "maintenance_failed"})
            return
        for job in rescued or ():
            logger.warning(
                "Rescued job %s (%s) from a worker that stopped heartbeating; it is now %s.",
                job["id"],
                job["actor"],
                job["status"],
                extra={"action": "job_rescued", "message_id": job["id"], "status": job["status"]},
            )
        for queue in {job["queue"] for job in rescued or () if job["status"] == "PENDING"}:
            self.broker.wake(queue)
            if self.broker.doorbell is not None:
                self.broker.doorbell.ring(queue)


class WorkerServices(dramatiq.Middleware):
    """Starts the :class:`Maintainer` with every Dramatiq worker using the broker."""

    def __init__(self) -> None:
        self._maintainers: dict[int, Maintainer] = {}

    def after_process_boot(self, broker: Any) -> None:
        # Dramatiq's worker processes (`docjobs worker`, `dramatiq ...`) emit this before
        # they connect: their connections show as docjobs-worker-<host>-<pid>.
        pool.suggest_process_role("worker")

    def after_worker_boot(self, broker: Any, worker: dramatiq.Worker) -> None:
        maintainer = Maintainer(broker, concurrency=worker.worker_threads)
        self._maintainers[id(worker)] = maintainer
        maintainer.start()

    def after_worker_shutdown(self, broker: Any, worker: dramatiq.Worker) -> None:
        # Beat until the worker threads have finished, so running jobs keep their lease.
        maintainer = self._maintainers.pop(id(worker), None)
        if maintainer is not None:
            maintainer.stop()
