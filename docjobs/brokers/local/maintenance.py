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
from collections.abc import Callable, Iterable

import dramatiq
import psycopg

from docjobs.brokers.local.consumers import ClaimSettings, ConsumerRegistry, HeldJobs
from docjobs.brokers.local.wakeups import Doorbell
from docjobs.db import pool
from docjobs.db.store import JobStore

logger = logging.getLogger(__name__)

#: A worker row silent for this many leases is deleted.
STALE_WORKER_LEASES = 4


class Maintainer:
    """The heartbeat-and-rescue thread of one worker process.

    Args:
        store: The job store it beats and rescues through.
        settings: The worker id, lease and retention.
        held: The jobs whose leases each beat extends.
        consumers: Woken when a rescued job is back in their queue.
        queues: The queues this process declared, shown on the board.
        doorbell: Rings other processes for rescued jobs; ``None`` without LISTEN.
        concurrency: Worker threads, shown on the board.
    """

    def __init__(
        self,
        store: JobStore,
        settings: ClaimSettings,
        *,
        held: HeldJobs,
        consumers: ConsumerRegistry,
        queues: Callable[[], Iterable[str]],
        doorbell: Doorbell | None,
        concurrency: int,
    ) -> None:
        self.store = store
        self.settings = settings
        self.held = held
        self.consumers = consumers
        self.queues = queues
        self.doorbell = doorbell
        self.concurrency = concurrency
        self.heartbeat_seconds = settings.lease_seconds / 3
        self.maintenance_seconds = settings.lease_seconds / 2
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
            self.store.workers.delete_worker(self.settings.worker_id)
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
            self.store.workers.heartbeat(
                worker=self.settings.worker_id,
                held=self.held.held(),
                queues=sorted(self.queues()),
                concurrency=self.concurrency,
                lease_seconds=self.settings.lease_seconds,
            )
        except psycopg.Error as exc:
            logger.warning("Heartbeat failed: %s", exc, extra={"action": "heartbeat_failed"})

    def maintain(self) -> None:
        """Run one maintenance round if no other process is running one."""
        try:
            rescued = self.store.workers.maintain(
                stale_worker_seconds=self.settings.lease_seconds * STALE_WORKER_LEASES,
                retention_days=self.settings.retention_days,
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
            self.consumers.wake(queue)
            if self.doorbell is not None:
                self.doorbell.ring(queue)


class WorkerServices(dramatiq.Middleware):
    """Starts the :class:`Maintainer` with every Dramatiq worker using the broker.

    Args:
        maintainer_for: Builds the maintainer of a worker with this many threads.
    """

    def __init__(self, maintainer_for: Callable[[int], Maintainer]) -> None:
        self.maintainer_for = maintainer_for
        self._maintainers: dict[int, Maintainer] = {}

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        # Dramatiq's worker processes (`docjobs worker`, `dramatiq ...`) emit this before
        # they connect: their connections show as docjobs-worker-<host>-<pid>.
        pool.suggest_process_role("worker")

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        maintainer = self.maintainer_for(worker.worker_threads)
        self._maintainers[id(worker)] = maintainer
        maintainer.start()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Beat until the worker threads have finished, so running jobs keep their lease.
        maintainer = self._maintainers.pop(id(worker), None)
        if maintainer is not None:
            maintainer.stop()
