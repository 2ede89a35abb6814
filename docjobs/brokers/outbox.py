"""Sends made inside an app transaction, for providers whose queue is elsewhere (bullmq, inngest).

A send with ``conn=`` writes ``job_outbox`` rows in the caller's transaction and
sends them once it commits, so a job exists exactly when the change it announces
does. Rows whose after-commit send failed or never ran (a crash, a connection
docjobs does not manage, whose commit it cannot see) are sent by a relay: bullmq's
keepers each round, inngest's web process from a thread. Sending a row twice is
harmless on both (an id key, Inngest's event ids).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from docjobs.db.outbox import OutboxStore, Row
from docjobs.db.pool import on_commit

logger = logging.getLogger(__name__)

#: An outbox row older than this missed its after-commit send: the relay sends it.
OUTBOX_STALE_SECONDS = 5.0
#: How often a relay thread looks for such rows.
RELAY_INTERVAL_SECONDS = 5.0
#: How long stopping a relay thread waits for its round to end.
RELAY_STOP_TIMEOUT_SECONDS = 5.0

#: An outbox row as written: id, queue, the encoded message.
OutboxEntry = tuple[str, str, bytes]


class Outbox:
    """The ``job_outbox`` rows of one broker, and how they reach its queue.

    Args:
        store: The outbox table.
        deliver: Sends rows (``id``, ``queue``, ``data``) on; rows stay if it raises.
        relayed_by: Who sends the rows an after-commit send missed, for the log.
    """

    def __init__(self, store: OutboxStore, deliver: Callable[[list[Row]], None], *, relayed_by: str) -> None:
        self.store = store
        self.deliver = deliver
        self.relayed_by = relayed_by

    def add(self, conn: psycopg.Connection[Any], entries: Sequence[OutboxEntry]) -> None:
        """Write ``entries`` in ``conn``'s transaction; they are sent once it commits."""
        self.store.add(conn, entries)
        ids = [entry[0] for entry in entries]
        # On a connection docjobs does not manage the commit is invisible: the relay sends them.
        on_commit(conn, lambda: self._relay_after_commit(ids))

    def relay(self, ids: Sequence[str] | None = None) -> int:
        """Send outbox rows: ``ids``, or those their after-commit send missed.

        Returns:
            How many jobs were sent.
        """
        return self.store.take(self.deliver, ids=ids, stale_seconds=OUTBOX_STALE_SECONDS)

    def relay_thread(self) -> OutboxRelay:
        """A thread that calls :meth:`relay` every ``RELAY_INTERVAL_SECONDS``."""
        return OutboxRelay(self.relay, RELAY_INTERVAL_SECONDS)

    def _relay_after_commit(self, ids: list[str]) -> None:
        try:
            self.relay(ids)
        except Exception as exc:  # noqa: BLE001 - the commit stands; the rows wait for the relay
            logger.warning(
                "%d job(s) wait in the outbox for %s to send them: %s", len(ids), self.relayed_by, exc
            )


class OutboxRelay:
    """Calls ``relay`` every ``interval_seconds`` from a daemon thread; start and stop are idempotent."""

    def __init__(self, relay: Callable[[], int], interval_seconds: float) -> None:
        self.relay = relay
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread unless it runs."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="docjobs-outbox-relay", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for its round to end; safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(RELAY_STOP_TIMEOUT_SECONDS)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self.relay()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive a bad round
                logger.warning(
                    "Sending the job outbox failed, retrying in %.1f s: %s", self.interval_seconds, exc
                )
