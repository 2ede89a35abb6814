"""The worker side of the scheduler: each (schedule, slot) runs once, and not late.

Whatever sent a firing (the in-process scheduler, any number of periodiq processes,
a retry), the worker asks the cron ledger before running it: the message that owns
the slot runs; a duplicate is skipped; a firing that arrives later than its
schedule's tolerance is skipped and recorded as late; a slot of a paused schedule is
skipped and recorded as paused. periodiq itself has no protection against two
schedulers (reference/dramatiq-inngest.md §2); this is it. Inngest's cron runs ask
the same guard (``brokers.inngest.functions``), through :meth:`CronGuard.admit`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import dramatiq
import psycopg
from dramatiq.middleware import MiddlewareError, SkipMessage

from docjobs.db.cron import CronLedger
from docjobs.scheduler.cron import utcnow
from docjobs.scheduler.firing import RUN_NOW_OPTION, SLOT_OPTION
from docjobs.scheduler.table import CronTable, Schedule

logger = logging.getLogger("docjobs.scheduler")

#: Who fired a slot whose row a worker writes: a sender that claims nothing.
UNCLAIMED_SENDER = "periodiq"
#: Longest error text kept in the ledger.
ERROR_LIMIT = 2000


class Firing(NamedTuple):
    """What a message fires: a schedule's slot, or (``run_now``) the board's firing at a moment."""

    schedule: Schedule
    slot: datetime
    run_now: bool


class CronLedgerUnavailable(MiddlewareError):
    """The cron ledger could not be asked; the firing is retried rather than run unguarded."""


class CronGuard(dramatiq.Middleware):
    """Runs a scheduled firing only if it owns its slot and is on time.

    Args:
        table: The cron table (tolerances, and slots for periodiq's send times).
        ledger: The cron ledger.
        clock: The current time (tests inject one).
        sender: Who fired a slot whose row this guard writes (``inngest`` for Inngest's cron).
    """

    def __init__(
        self,
        table: CronTable,
        ledger: CronLedger,
        *,
        clock: Callable[[], datetime] = utcnow,
        sender: str = UNCLAIMED_SENDER,
    ) -> None:
        self.table = table
        self.ledger = ledger
        self.clock = clock
        self.sender = sender

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        if not self.admit(message):
            raise SkipMessage()

    def admit(self, message: dramatiq.Message[Any] | dramatiq.MessageProxy) -> bool:
        """Whether ``message`` may run: it is no firing, or it owns its slot, on time and not paused.

        Raises:
            CronLedgerUnavailable: The ledger could not be asked.
        """
        firing = self.firing_of(message)
        if firing is None:
            return True  # not a scheduled firing: a manual trigger runs as usual
        schedule, slot, run_now = firing
        late_by = self.clock() - slot
        try:
            decision = self.ledger.decide(
                schedule=schedule.job_id,
                slot=slot,
                job_id=message.message_id,
                fired_by=self.sender,
                late=not run_now and late_by > schedule.tolerance,
                run_now=run_now,
            )
        except psycopg.Error as exc:
            raise CronLedgerUnavailable(f"the cron ledger is unavailable: {exc}") from exc
        if decision == "running":
            return True
        fields = {"schedule": schedule.job_id, "slot": slot.isoformat(), "message_id": message.message_id}
        if decision == "late":
            logger.warning(
                "Skipped %s for %s: it reached a worker %.0f s after its slot (tolerance %.0f s).",
                schedule.job_id,
                slot.isoformat(),
                late_by.total_seconds(),
                schedule.tolerance.total_seconds(),
                extra={"action": "cron_late", **fields},
            )
        elif decision == "paused":
            logger.info(
                "Skipped %s for %s: the schedule is paused.",
                schedule.job_id,
                slot.isoformat(),
                extra={"action": "cron_paused", **fields},
            )
        else:
            logger.info(
                "Skipped %s for %s: %s.",
                schedule.job_id,
                slot.isoformat(),
                "it already ran" if decision == "succeeded" else "another firing owns the slot",
                extra={"action": "cron_duplicate", **fields},
            )
        return False

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if isinstance(exception, CronLedgerUnavailable):
            return
        self.record_end(message, exception)

    def record_end(
        self, message: dramatiq.Message[Any] | dramatiq.MessageProxy, exception: BaseException | None
    ) -> None:
        """Record how a firing that :meth:`admit` let run ended (nothing for other messages)."""
        firing = self.firing_of(message)
        if firing is None:
            return
        schedule, slot, _ = firing
        error = None if exception is None else f"{type(exception).__name__}: {exception}"[:ERROR_LIMIT]
        try:
            self.ledger.finish(
                schedule=schedule.job_id,
                slot=slot,
                job_id=message.message_id,
                succeeded=exception is None,
                error=error,
            )
        except psycopg.Error as exc:
            logger.warning("Could not record the end of %s for %s: %s", schedule.job_id, slot, exc)

    def firing_of(self, message: dramatiq.Message[Any] | dramatiq.MessageProxy) -> Firing | None:
        """The schedule and slot a message fires, or ``None`` for other messages."""
        sent_for = message.options.get(SLOT_OPTION)
        if sent_for is None:
            # Most messages: no table lookup, asked twice per job (issue 21: ~7 us a job).
            return None
        schedule = self.table.get(message.actor_name)
        if schedule is None:
            return None
        try:
            moment = datetime.fromisoformat(str(sent_for))
        except ValueError:
            logger.warning("Ignoring the unreadable %s=%r of %s.", SLOT_OPTION, sent_for, message.message_id)
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if message.options.get(RUN_NOW_OPTION):
            return Firing(schedule, moment.astimezone(UTC), run_now=True)  # its own moment, no slot
        # periodiq sends at the slot plus a fraction of a second, or later when it
        # starts within a slot's tolerance: either way the latest slot is the one.
        slot = schedule.slot_of(moment) or moment.astimezone(UTC).replace(second=0, microsecond=0)
        return Firing(schedule, slot, run_now=False)
