"""Cron expressions evaluated in a time zone, with slots as UTC instants.

Evaluation is cronsim's: five fields, names for months and weekdays, ``0`` and ``7``
both Sunday, ``L`` and ``#``; and Debian cron's rules at DST changes: a time that a
spring-forward skips runs right after the gap, a time that a fall-back repeats runs
once. An expression with a wildcard hour runs every matching instant, so ``*/15``
keeps firing every 15 minutes of real time through both changes.

Slots are compared and stored in UTC: two processes in different local zones agree
on them, and a repeated wall-clock hour gives two distinct slots, never one twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

#: The shorthands crontab(5) accepts, written out (cronsim takes five fields only).
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MINUTE = timedelta(minutes=1)


def utcnow() -> datetime:
    """The scheduler's default clock (tests inject their own)."""
    return datetime.now(UTC)


class InvalidCron(ValueError):
    """The text is not a cron expression."""


class CronExpression:
    """A parsed cron expression in a time zone.

    Args:
        text: Five fields ``minute hour day-of-month month day-of-week``, or an alias
            such as ``@daily``.
        timezone: The zone the fields are read in.

    Raises:
        InvalidCron: Naming what is wrong (``Bad minute``, ``Wrong number of fields``).
    """

    def __init__(self, text: str, timezone: ZoneInfo) -> None:
        self.text = " ".join(text.split())
        self.timezone = timezone
        self._fields = ALIASES.get(self.text.lower(), self.text)
        if len(self._fields.split()) != 5:
            # cronsim would also take a sixth field (seconds); slots are whole minutes.
            raise InvalidCron(f"Wrong number of fields: expected 5, got {len(self._fields.split())}")
        try:
            CronSim(self._fields, datetime.now(timezone))
        except CronSimError as exc:
            raise InvalidCron(str(exc)) from None

    def next_after(self, moment: datetime) -> datetime:
        """The first slot strictly after ``moment`` (any aware datetime), in UTC."""
        # From inside a repeated hour, cronsim can answer with the hour's first pass,
        # which is already past: skip anything not after moment in real time.
        for candidate in CronSim(self._fields, moment.astimezone(self.timezone)):
            slot = candidate.astimezone(UTC)
            if slot > moment:
                return slot
        raise AssertionError("unreachable: cron iterators are endless")

    def latest_at_or_before(self, moment: datetime) -> datetime:
        """The last slot at or before ``moment``, in UTC."""
        # cronsim works in whole minutes and excludes its start: start one minute
        # past moment's minute. The arithmetic is done in UTC so it is real time.
        start = moment.astimezone(UTC).replace(second=0, microsecond=0) + _MINUTE
        earlier = None
        for candidate in CronSim(self._fields, start.astimezone(self.timezone), reverse=True):
            earlier = candidate.astimezone(UTC)
            if earlier <= moment:
                break
        assert earlier is not None, "cron iterators are endless"
        # Backwards through a repeated hour cronsim can pass over the hour's first
        # pass (the one that fires): walk forward again, which gets it right.
        while (later := self.next_after(earlier)) <= moment:
            earlier = later
        return earlier

    def slots(self, start: datetime, end: datetime) -> list[datetime]:
        """Every slot in ``(start, end]``, in UTC."""
        found = []
        slot = self.next_after(start)
        while slot <= end:
            found.append(slot)
            slot = self.next_after(slot)
        return found

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"CronExpression({self.text!r}, {self.timezone.key!r})"
