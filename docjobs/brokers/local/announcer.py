"""Telling whoever consumes a queue that a job is there, without the sender waiting.

Three ways, by who consumes it: this process's consumers are woken directly, the
web app by a coalesced, signed self-request, and other processes by a debounced
NOTIFY. A delayed job is announced only to this process (an alarm at its due
time); the others find it by polling.
"""

from __future__ import annotations

from typing import Any

import psycopg

from docjobs.brokers.local.consumers import ConsumerRegistry
from docjobs.brokers.local.selftrigger import SelfTrigger
from docjobs.brokers.local.wakeups import Alarm, Doorbell
from docjobs.db import pool
from docjobs.db.store import JobStore


class Announcer:
    """Wakes the consumers of a queue a job was sent to.

    Args:
        store: Where the doorbell's NOTIFY goes.
        consumers: This process's consumers.
        listen: Whether other processes LISTEN for doorbells (off behind PgBouncer).
        self_trigger: The web app's wake-up client, or ``None`` for none.
    """

    def __init__(
        self, store: JobStore, consumers: ConsumerRegistry, *, listen: bool, self_trigger: SelfTrigger | None
    ) -> None:
        self._store = store
        self._consumers = consumers
        self.self_trigger = self_trigger
        self.doorbell = Doorbell(store) if listen else None
        self._alarm = Alarm(consumers.wake)

    def announce(
        self, queue: str, actor: str, job_id: str, delay_ms: int | None = None, *, rung: bool = False
    ) -> None:
        """Tell whoever consumes ``queue`` that ``job_id`` is there: this process's consumers,
        else the web app (self-request), and other processes (doorbell; ``rung``: the send's
        own INSERT carried its NOTIFY)."""
        if delay_ms:
            # Not due yet: only this process knows when it will be; others poll.
            if self._consumers.has_consumer(queue):
                self._alarm.set(queue, delay_ms / 1000)
            return
        if self._consumers.has_consumer(queue):
            self._consumers.wake(queue)
        elif self.self_trigger is not None:
            self.self_trigger.wake(actor, job_id)
        if self.doorbell is not None and not rung:
            self.doorbell.ring(queue)

    def after_commit(
        self, conn: psycopg.Connection[Any], queue: str, actor: str, job_id: str, delay_ms: int | None
    ) -> None:
        """Announce a job inserted in ``conn``'s transaction once it commits (never on rollback)."""
        # NOTIFY inside the transaction is delivered at commit and dropped on rollback.
        if self.doorbell is not None and not delay_ms:
            self._store.queues.notify(queue, conn=conn)
        pool.on_commit(conn, lambda: self.announce(queue, actor, job_id, delay_ms))

    def close(self) -> None:
        """Stop the alarm, the doorbell and the self-trigger client; safe to call twice."""
        self._alarm.close()
        if self.doorbell is not None:
            self.doorbell.close()
        if self.self_trigger is not None:
            self.self_trigger.close()
