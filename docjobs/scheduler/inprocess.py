"""The in-process scheduler: a thread in ``docjobs web`` that fires due slots.

A single-process deployment needs nothing else, as with the reference service's
local provider. Unlike the reference (a 30-35 s poll), it sleeps until the next
slot, so a firing leaves within milliseconds of its time; and every process may
run one, since the cron ledger lets one firing per slot through.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import dramatiq

from docjobs.scheduler.cron import utcnow
from docjobs.scheduler.firing import Firer
from docjobs.scheduler.table import CronTable

logger = logging.getLogger("docjobs.scheduler")

#: Longest sleep between looks at the clock (a changed clock, a missed wake-up).
MAX_SLEEP = timedelta(seconds=60)
#: How soon a firing that failed (database down) is tried again.
RETRY_AFTER = timedelta(seconds=5)


class InProcessScheduler:
    """Fires the table's due slots from a background thread.

    Args:
        table: The cron table.
        firer: Claims and sends a slot.
        clock: The current time (tests inject one and call :meth:`tick`).
    """

    def __init__(self, table: CronTable, firer: Firer, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.table = table
        self.firer = firer
        self.clock = clock
        self._handled: dict[str, datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: datetime) -> datetime:
        """Fire every schedule's due slot not handled yet; returns when to look again."""
        retry = False
        for schedule in self.table.enabled():
            slot = schedule.due_slot(now)
            handled = self._handled.get(schedule.job_id)
            if slot is None or (handled is not None and slot <= handled):
                continue
            try:
                fired = self.firer.fire(schedule, slot)
            except dramatiq.errors.ActorNotFound:
                logger.error("Cannot fire %s: no such actor is declared.", schedule.job_id)
                fired = False
            except Exception as exc:  # noqa: BLE001 - keep scheduling; retried shortly
                logger.warning(
                    "Firing %s for %s failed, retrying: %s", schedule.job_id, slot.isoformat(), exc
                )
                retry = True
                continue
            self._handled[schedule.job_id] = slot
            if fired:
                logger.info(
                    "Fired %s for %s.",
                    schedule.job_id,
                    slot.isoformat(),
                    extra={"action": "cron_fired", "schedule": schedule.job_id, "slot": slot.isoformat()},
                )
        wake = now + MAX_SLEEP
        upcoming = self.table.next_firing(now)
        if upcoming is not None:
            wake = min(wake, upcoming)
        return min(wake, now + RETRY_AFTER) if retry else wake

    def start(self) -> None:
        """Start the thread (once); it fires the latest slot at once if it is due."""
        if self._thread is None and self.table.enabled():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="docjobs-scheduler", daemon=True)
            self._thread.start()
            logger.info(
                "In-process scheduler started for %d schedule(s).",
                len(self.table.enabled()),
                extra={"action": "scheduler_started"},
            )

    def stop(self) -> None:
        """Stop the thread and wait for it; safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wake = self.tick(self.clock())
            except Exception:  # noqa: BLE001 - the thread must outlive any bug in a tick
                logger.exception("The scheduler's tick failed.")
                wake = self.clock() + RETRY_AFTER
            self._stop.wait(max((wake - self.clock()).total_seconds(), 0.0))
