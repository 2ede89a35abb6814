"""Fire a schedule's job for a slot, once across every scheduler process."""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from docjobs import registry
from docjobs.brokers.base import Broker
from docjobs.db.cron import CronLedger
from docjobs.scheduler.table import Schedule

#: The message option carrying the slot a firing is for (periodiq's name, so one
#: guard reads the firings of every driver).
SLOT_OPTION = registry.SLOT_OPTION
#: The message option that marks the board's run-now firing: its ``SLOT_OPTION`` is the
#: moment it was asked for, not a cron slot, so it neither takes nor is taken by one.
RUN_NOW_OPTION = "docjobs_run_now"

logger = logging.getLogger("docjobs.scheduler")


def run_now_moment(now: datetime) -> datetime:
    """The ledger slot of a run-now asked at ``now``: never a whole minute, as cron slots are."""
    if now.second == 0 and now.microsecond == 0:
        return now + timedelta(microseconds=1)
    return now


def process_name(driver: str) -> str:
    """How the ledger names a firing process: ``driver@host:pid``."""
    return f"{driver}@{socket.gethostname()}:{os.getpid()}"


class Firer:
    """Claims a slot in the cron ledger and sends the schedule's job for it.

    The claim and the enqueue share one transaction where the provider can send in
    one (``capabilities.transactional_send``), so a scheduler that dies half-way
    leaves neither; elsewhere the message is sent before the claim commits, and
    the worker-side guard settles the rare duplicate that a crash between the two
    can leave.

    Args:
        broker: Where the job goes.
        ledger: The cron ledger.
        fired_by: The firing process's name in the ledger.
    """

    def __init__(self, broker: Broker, ledger: CronLedger, *, fired_by: str) -> None:
        self.broker = broker
        self.ledger = ledger
        self.fired_by = fired_by

    def fire(self, schedule: Schedule, slot: datetime) -> bool:
        """Send ``schedule``'s job for ``slot`` unless it was already fired.

        Returns:
            Whether this call fired it.

        Raises:
            dramatiq.errors.ActorNotFound: The schedule's actor is not declared.
            errors.PayloadError: The schedule's payload does not fit its actor.
        """
        actor = self.broker.get_actor(schedule.job_id)
        message = actor.message_with_options(
            args=(), kwargs=dict(schedule.payload), **{SLOT_OPTION: slot.isoformat()}
        )
        with self.ledger.database.transaction() as conn:
            claimed = self.ledger.claim(
                conn, schedule=schedule.job_id, slot=slot, job_id=message.message_id, fired_by=self.fired_by
            )
            if claimed is None:
                return False
            if claimed == "paused":  # recorded as skipped, nothing sent
                logger.info(
                    "Skipped %s for %s: the schedule is paused.",
                    schedule.job_id,
                    slot.isoformat(),
                    extra={"action": "cron_paused", "schedule": schedule.job_id, "slot": slot.isoformat()},
                )
                return False
            # Where the send can join the claim's transaction, both commit or neither does.
            self.broker.enqueue(message, conn=conn if self.broker.capabilities.transactional_send else None)
        return True

    def run_now(self, schedule: Schedule, now: datetime) -> str:
        """Send ``schedule``'s job at once, outside its slots (paused or not), recorded in the ledger.

        Returns:
            The message id.

        Raises:
            dramatiq.errors.ActorNotFound: The schedule's actor is not declared.
            errors.PayloadError: The schedule's payload does not fit its actor.
        """
        moment = run_now_moment(now)
        actor = self.broker.get_actor(schedule.job_id)
        message = actor.message_with_options(
            args=(), kwargs=dict(schedule.payload), **{SLOT_OPTION: moment.isoformat(), RUN_NOW_OPTION: True}
        )
        with self.ledger.database.transaction() as conn:
            self.ledger.claim_run_now(
                conn, schedule=schedule.job_id, moment=moment, job_id=message.message_id
            )
            self.broker.enqueue(message, conn=conn if self.broker.capabilities.transactional_send else None)
        return message.message_id
