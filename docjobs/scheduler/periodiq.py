"""periodiq wiring: the cron table as periodiq's ``periodic`` actor option.

``periodiq docjobs.runtime:broker docjobs.actors`` (or ``docjobs scheduler``) finds
every actor with a ``periodic`` option. This middleware gives the table's enabled
schedules one when their actors are declared, as a spec evaluated by docjobs'
cron (so Sunday is Sunday in every form, the zone is ``NEXT_PRIVATE_JOBS_CRON_TZ``,
and DST neither skips nor doubles a slot). periodiq's own skip-if-late middleware
is not used: the cron guard applies each schedule's tolerance and records it.

An app's actor declared with its own ``periodic=cron(...)`` gets the same: its
option becomes an app schedule of the table (``declared.add_periodic``) and is
replaced by the table's spec, so its slots go through the cron ledger too. A
schedule added with ``docjobs.add_schedule`` after its actor was declared is wired
when it is added. periodiq sends a firing without a payload: the schedule's is
filled in (by the job actor itself, or here before a plain actor's is enqueued).
"""

from __future__ import annotations

import threading
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
from dramatiq.middleware import MiddlewareError

from docjobs import errors, registry
from docjobs.scheduler import declared
from docjobs.scheduler.table import CronTable, Schedule

#: Where an off schedule's "next firing" lies, for a periodiq that asks anyway.
_FAR_AWAY = timedelta(days=366)


class PeriodiqSpec:
    """What periodiq asks of a ``periodic`` option: ``validate`` and ``next_valid_date``.

    ``validate(now)`` is true once per slot: for the latest slot within the
    schedule's tolerance that this process has not sent yet. A periodiq started
    just after a slot therefore fires it, as another scheduler's stand-in; the
    cron guard drops the firing if that slot already ran.
    """

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self._last_sent: datetime | None = None

    def validate(self, now: datetime) -> bool:
        slot = self.schedule.due_slot(_plain(now))
        if slot is None or (self._last_sent is not None and slot <= self._last_sent):
            return False
        self._last_sent = slot
        return True

    def next_valid_date(self, last: datetime) -> datetime:
        moment = _plain(last)
        return self.schedule.next_slot(moment) or moment + _FAR_AWAY

    def __str__(self) -> str:
        return (
            f"{self.schedule.expression} ({self.schedule.cron.timezone.key if self.schedule.cron else 'off'})"
        )


class ScheduleRefused(errors.ScheduleError, MiddlewareError):
    """An actor's schedule is not acceptable: the actor is not declared."""


class PeriodiqWiring(dramatiq.Middleware):
    """Gives each scheduled actor its ``periodic`` option when it is declared, or scheduled later.

    Raises (from ``declare_actor``, which then declares nothing):
        ScheduleRefused: An actor's own ``periodic=`` is not a cron schedule, or its
            schedule's payload does not fit the actor.
    """

    actor_options = {"periodic"}

    def __init__(self, table: CronTable) -> None:
        self.table = table
        self._lock = threading.Lock()
        self._brokers: weakref.WeakSet[dramatiq.Broker] = weakref.WeakSet()
        declared.subscribe(self.schedule_changed)

    def before_declare_actor(self, broker: dramatiq.Broker, actor: dramatiq.Actor[Any, Any]) -> None:
        # Checked here, before anything is declared or added: after-hooks cannot refuse.
        own = actor.options.get("periodic")
        try:
            pending = None
            if own is not None and not isinstance(own, PeriodiqSpec):
                pending = declared.periodic(actor.actor_name, own)
            schedule = self.table.get(actor.actor_name)
            payload = pending.payload if pending is not None else schedule.payload if schedule else None
            if payload is not None and isinstance(actor, registry.JobActor):
                actor.validate(payload)
            if pending is not None:
                declared.declare(pending)
        except errors.PayloadError as exc:
            raise ScheduleRefused(f"the schedule's payload does not fit: {exc}") from None
        except errors.ScheduleError as exc:
            raise ScheduleRefused(str(exc)) from None

    def after_declare_actor(self, broker: dramatiq.Broker, actor: dramatiq.Actor[Any, Any]) -> None:
        with self._lock:
            self._brokers.add(broker)
        self._wire(actor)

    def schedule_changed(self, job_id: str) -> None:
        """Wire (or unwire) an actor already declared when its app schedule is added (or removed)."""
        with self._lock:
            brokers = list(self._brokers)
        for broker in brokers:
            actor = broker.actors.get(job_id)
            if actor is not None:
                self._wire(actor)

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int) -> None:
        # periodiq's firing of a plain actor: it carries the slot and no arguments.
        if message.args or message.kwargs or message.options.get(registry.SLOT_OPTION) is None:
            return
        schedule = self.table.get(message.actor_name)
        if schedule is not None and schedule.payload:
            message.kwargs.update(schedule.payload)

    def _wire(self, actor: dramatiq.Actor[Any, Any]) -> None:
        schedule = self.table.get(actor.actor_name)
        if schedule is None or not schedule.enabled:
            actor.options.pop("periodic", None)
            return
        if isinstance(actor, registry.JobActor):
            # Checked before the actor was declared, or before the schedule was added.
            actor.firing_payload = actor.validate(schedule.payload)
        actor.options["periodic"] = PeriodiqSpec(schedule)


def _plain(moment: datetime) -> datetime:
    """A stdlib UTC datetime from periodiq's pendulum one (cronsim wants plain ones)."""
    return datetime.fromtimestamp(moment.timestamp(), UTC)
