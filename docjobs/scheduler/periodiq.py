"""periodiq wiring: the cron table as periodiq's ``periodic`` actor option.

``periodiq docjobs.runtime:broker docjobs.actors`` (or ``docjobs scheduler``) finds
every actor with a ``periodic`` option. This middleware gives the table's enabled
schedules one when their actors are declared, as a spec evaluated by docjobs'
cron (so Sunday is Sunday in every form, the zone is ``NEXT_PRIVATE_JOBS_CRON_TZ``,
and DST neither skips nor doubles a slot). periodiq's own skip-if-late middleware
is not used: the cron guard applies each schedule's tolerance and records it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq

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


class PeriodiqWiring(dramatiq.Middleware):
    """Gives each scheduled actor its ``periodic`` option when it is declared."""

    actor_options = {"periodic"}

    def __init__(self, table: CronTable) -> None:
        self.table = table

    def after_declare_actor(self, broker: dramatiq.Broker, actor: dramatiq.Actor[Any, Any]) -> None:
        schedule = self.table.get(actor.actor_name)
        if schedule is not None and schedule.enabled:
            actor.options["periodic"] = PeriodiqSpec(schedule)
        else:
            actor.options.pop("periodic", None)


def _plain(moment: datetime) -> datetime:
    """A stdlib UTC datetime from periodiq's pendulum one (cronsim wants plain ones)."""
    return datetime.fromtimestamp(moment.timestamp(), UTC)
