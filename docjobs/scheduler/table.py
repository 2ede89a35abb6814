"""The cron table: which job runs when, and how late a firing may still run.

Every schedule of docjobs' own can be changed with ``NEXT_PRIVATE_JOBS_<NAME>_CRON``
(``<NAME>`` is the job id without ``internal.``, upper-cased, dashes as underscores)
or turned off with ``off``; the zone is ``NEXT_PRIVATE_JOBS_CRON_TZ`` (default UTC).
The app's schedules (``docjobs.add_schedule``, periodiq's ``periodic=``; see
``declared``) follow them in the table, as they are declared. Every driver (the
in-process scheduler, periodiq, Inngest) reads this one table.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from docjobs import errors
from docjobs.scheduler import declared
from docjobs.scheduler.cron import CronExpression, InvalidCron
from docjobs.scheduler.defaults import DEFAULT_TABLE, Entry
from docjobs.settings import Settings

__all__ = [
    "DEFAULT_TABLE",
    "OFF",
    "CronTable",
    "Entry",
    "Schedule",
    "build",
    "variable_for",
]

OFF = "off"


def variable_for(job_id: str) -> str:
    """The environment variable that overrides a job's schedule."""
    name = job_id.removeprefix("internal.").upper().replace("-", "_").replace(".", "_")
    return f"NEXT_PRIVATE_JOBS_{name}_CRON"


@dataclass(frozen=True)
class Schedule:
    """One job's schedule as configured.

    Attributes:
        job_id: The actor it sends.
        cron: The expression, or ``None`` when turned off.
        tolerance: How late after its slot a firing may still start.
        variable: The environment variable that overrides it; ``None`` for the app's.
        payload: What each firing sends (the app's schedules may have one).
    """

    job_id: str
    cron: CronExpression | None
    tolerance: timedelta
    variable: str | None
    payload: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @property
    def enabled(self) -> bool:
        return self.cron is not None

    @property
    def expression(self) -> str:
        return str(self.cron) if self.cron is not None else OFF

    def due_slot(self, now: datetime) -> datetime | None:
        """The slot to fire at ``now``: the latest one, if no older than the tolerance.

        Only the latest slot is ever due, so a scheduler that was down does not
        catch up on the slots it missed (as the reference service).
        """
        if self.cron is None:
            return None
        slot = self.cron.latest_at_or_before(now)
        return slot if now - slot <= self.tolerance else None

    def slot_of(self, moment: datetime) -> datetime | None:
        """The slot a firing sent at ``moment`` belongs to (the latest at or before it)."""
        return self.cron.latest_at_or_before(moment) if self.cron is not None else None

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot strictly after ``after``; ``None`` when off."""
        return self.cron.next_after(after) if self.cron is not None else None


class CronTable(Mapping[str, Schedule]):
    """The configured schedules by job id, in table order, then the app's as declared.

    Args:
        schedules: docjobs' own, as configured.
        timezone: The zone every schedule's fields are read in.
        app_schedules: Whether the app's declared schedules join the table (a live
            view: one declared later is in it at once).
    """

    def __init__(self, schedules: list[Schedule], timezone: ZoneInfo, *, app_schedules: bool = True) -> None:
        self._own = {schedule.job_id: schedule for schedule in schedules}
        self.timezone = timezone
        self._with_app = app_schedules
        self._app_lock = threading.Lock()
        self._app: dict[str, tuple[declared.AppSchedule, Schedule]] = {}

    def _converted(self, app: declared.AppSchedule) -> Schedule:
        with self._app_lock:
            cached = self._app.get(app.job_id)
            if cached is None or cached[0] != app:
                cached = (app, _app_schedule(app, self.timezone))
                self._app[app.job_id] = cached
            return cached[1]

    def _schedules(self) -> dict[str, Schedule]:
        if not self._with_app:
            return self._own
        merged = dict(self._own)
        for app in declared.schedules():
            merged.setdefault(app.job_id, self._converted(app))
        return merged

    def __getitem__(self, job_id: str) -> Schedule:
        # Asked for every message a worker runs (the cron guard): no merged copy here.
        own = self._own.get(job_id)
        if own is not None:
            return own
        app = declared.get(job_id) if self._with_app else None
        if app is None:
            raise KeyError(job_id)
        return self._converted(app)

    def __iter__(self) -> Iterator[str]:
        return iter(self._schedules())

    def __len__(self) -> int:
        return len(self._schedules())

    def enabled(self) -> list[Schedule]:
        """The schedules that are not turned off."""
        return [schedule for schedule in self._schedules().values() if schedule.enabled]

    def next_firing(self, after: datetime) -> datetime | None:
        """The earliest slot of any schedule after ``after``; ``None`` when all are off."""
        slots = [slot for schedule in self.enabled() if (slot := schedule.next_slot(after)) is not None]
        return min(slots, default=None)


def build(settings: Settings, entries: tuple[Entry, ...] = DEFAULT_TABLE) -> CronTable:
    """The table with the environment's overrides applied.

    Raises:
        errors.SettingsError: An override names no schedule or is not a cron
            expression, naming the variable.
    """
    timezone = ZoneInfo(settings.cron_timezone)
    by_variable = {variable_for(entry.job_id): entry for entry in entries}
    for variable in settings.cron_overrides:
        if variable not in by_variable:
            known = ", ".join(sorted(by_variable))
            raise errors.SettingsError(f"{variable}: no such schedule; the schedules are {known}")
    schedules = []
    for variable, entry in by_variable.items():
        text = settings.cron_overrides.get(variable, entry.expression).strip()
        cron = None if text.lower() == OFF else _parse(variable, text, timezone)
        schedules.append(Schedule(entry.job_id, cron, entry.tolerance, variable))
    return CronTable(schedules, timezone)


def _app_schedule(app: declared.AppSchedule, timezone: ZoneInfo) -> Schedule:
    """An app's schedule in the table's zone (its syntax was checked when it was declared)."""
    return Schedule(app.job_id, CronExpression(app.expression, timezone), app.tolerance, None, app.payload)


def _parse(variable: str, text: str, timezone: ZoneInfo) -> CronExpression:
    try:
        return CronExpression(text, timezone)
    except InvalidCron as exc:
        raise errors.SettingsError(
            f"{variable}: not a cron expression: {exc} (got {text!r}); "
            "use five fields 'minute hour day-of-month month day-of-week', an alias such as @daily, "
            "or off"
        ) from None
