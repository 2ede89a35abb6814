"""Schedules an app declares in its code, beside docjobs' own cron table.

Two ways in, one table::

    docjobs.add_schedule("reports.weekly", "0 6 * * mon", payload={"team": "ops"})

    @dramatiq.actor(periodic=periodiq.cron("*/5 * * * *"))   # periodiq's own option
    def poll_inbox() -> None: ...

Either way the schedule joins the cron table that every driver reads (the
in-process scheduler, periodiq, Inngest), so each slot is fired once through the
cron ledger, and the schedule is listed by ``docjobs scheduler --list`` and on the
board. Its fields are read in ``NEXT_PRIVATE_JOBS_CRON_TZ`` like the table's; the
environment does not override it, the app's code owns it.

Declaring reads no settings and opens nothing, so a module may declare at import,
before or after the runtime is built. Tables and the periodiq wiring follow the
declarations as they come (see :func:`subscribe`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from docjobs import errors, strictjson
from docjobs.scheduler.cron import CronExpression, InvalidCron
from docjobs.scheduler.defaults import DEFAULT_TABLE

#: How late after its slot an app's firing may still start, unless it says otherwise.
DEFAULT_TOLERANCE_SECONDS = 300.0
#: How a schedule came to be, as listings name it.
ADDED = "add_schedule"
PERIODIC = "periodic="

_UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class AppSchedule:
    """A schedule an app declared.

    Attributes:
        job_id: The actor each firing sends.
        expression: The cron expression (five fields or an alias).
        payload: The payload each firing sends (camelCase, as ``jobs.trigger`` takes).
        tolerance: A firing that reaches a worker later than this after its slot is skipped.
        declared_by: ``add_schedule`` or ``periodic=``.
    """

    job_id: str
    expression: str
    payload: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    tolerance: timedelta = timedelta(seconds=DEFAULT_TOLERANCE_SECONDS)
    declared_by: str = ADDED


Listener = Callable[[str], None]

_lock = threading.RLock()
_schedules: dict[str, AppSchedule] = {}
_listeners: list[weakref.WeakMethod[Listener]] = []


def add_schedule(
    job_id: str,
    cron: str,
    *,
    payload: Mapping[str, Any] | None = None,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> AppSchedule:
    """Add a schedule to the cron table: ``job_id`` is sent with ``payload`` at every slot of ``cron``.

    Each slot is fired once, whatever number of schedulers run, and the firing that
    reaches a worker more than ``tolerance_seconds`` after its slot is skipped. The
    payload is checked against the actor's payload model when both are known.
    Declaring the same schedule again is a no-op.

    Args:
        job_id: The actor to send (a ``docjobs.actor`` or a plain Dramatiq actor).
        cron: Five fields ``minute hour day-of-month month day-of-week`` or an alias
            (``@hourly``), read in ``NEXT_PRIVATE_JOBS_CRON_TZ``.
        payload: What each firing sends; none by default.
        tolerance_seconds: How late a firing may still start.

    Returns:
        The schedule.

    Raises:
        errors.ScheduleError: The expression, payload or tolerance is not acceptable,
            the job id is one of docjobs' own schedules, or the job already has
            another schedule.

    .. versionadded:: 0.2.0
    """
    schedule = _checked(job_id, cron, payload, tolerance_seconds, ADDED)
    _check_fits_actor(schedule)
    return _add(schedule)


def periodic(job_id: str, option: object) -> AppSchedule:
    """The schedule of an actor declared with periodiq's ``periodic=`` option (checked, not added).

    Args:
        option: ``periodiq.cron("...")`` or a cron string.

    Raises:
        errors.ScheduleError: The option is neither, or is not a valid expression.
    """
    expression = _periodic_expression(job_id, option)
    return _checked(job_id, expression, None, DEFAULT_TOLERANCE_SECONDS, PERIODIC)


def declare(schedule: AppSchedule) -> AppSchedule:
    """Add a checked schedule (see :func:`periodic`); the same one again is a no-op.

    Raises:
        errors.ScheduleError: The job already has another schedule.
    """
    return _add(schedule)


def remove_schedule(job_id: str) -> bool:
    """Take an app's schedule out of the cron table; returns whether there was one.

    .. versionadded:: 0.2.0
    """
    with _lock:
        removed = _schedules.pop(job_id, None) is not None
    if removed:
        _notify(job_id)
    return removed


def schedules() -> list[AppSchedule]:
    """Every app schedule, in the order they were declared."""
    with _lock:
        return list(_schedules.values())


def get(job_id: str) -> AppSchedule | None:
    """The app schedule of ``job_id``, if it has one."""
    with _lock:
        return _schedules.get(job_id)


def subscribe(listener: Listener) -> None:
    """Call ``listener(job_id)`` (a bound method, held weakly) whenever a schedule is added or removed."""
    with _lock:
        _listeners.append(weakref.WeakMethod(listener))


def _add(schedule: AppSchedule) -> AppSchedule:
    with _lock:
        existing = _schedules.get(schedule.job_id)
        if existing == schedule:
            return existing
        if existing is not None:
            raise errors.ScheduleError(
                f"{schedule.job_id}: already scheduled {existing.expression!r} by {existing.declared_by}; "
                f"one schedule per job (remove_schedule first to change it)"
            )
        _schedules[schedule.job_id] = schedule
    _notify(schedule.job_id)
    return schedule


def _notify(job_id: str) -> None:
    with _lock:
        live = [listener for ref in _listeners if (listener := ref()) is not None]
        _listeners[:] = [ref for ref in _listeners if ref() is not None]
    for listener in live:
        listener(job_id)


def _checked(
    job_id: object, cron: object, payload: object, tolerance_seconds: object, declared_by: str
) -> AppSchedule:
    if not isinstance(job_id, str) or not job_id.strip():
        raise errors.ScheduleError(f"a schedule's job id must be a non-empty string, not {job_id!r}")
    if job_id in {entry.job_id for entry in DEFAULT_TABLE}:
        raise errors.ScheduleError(
            f"{job_id}: is one of docjobs' own schedules; "
            "change it with its NEXT_PRIVATE_JOBS_..._CRON variable"
        )
    if not isinstance(cron, str):
        raise errors.ScheduleError(
            f"{job_id}: the cron expression must be a string, not {type(cron).__name__}"
        )
    try:
        expression = CronExpression(cron, _UTC)  # the syntax; the zone is the table's
    except InvalidCron as exc:
        raise errors.ScheduleError(f"{job_id}: not a cron expression: {exc} (got {cron!r})") from None
    if isinstance(tolerance_seconds, bool) or not isinstance(tolerance_seconds, int | float):
        raise errors.ScheduleError(f"{job_id}: tolerance_seconds must be a number, not {tolerance_seconds!r}")
    if not 0 < tolerance_seconds < float("inf"):
        raise errors.ScheduleError(f"{job_id}: tolerance_seconds must be positive, not {tolerance_seconds}")
    return AppSchedule(
        job_id=job_id,
        expression=expression.text,
        payload=_checked_payload(job_id, payload),
        tolerance=timedelta(seconds=tolerance_seconds),
        declared_by=declared_by,
    )


def _check_fits_actor(schedule: AppSchedule) -> None:
    """Refuse a payload its job actor would refuse at every firing, if the actor is declared yet."""
    from docjobs import registry  # the actors; they know nothing of schedules

    actor = registry.declared().get(schedule.job_id)
    if actor is None:
        return  # checked when the actor is declared (the periodiq wiring)
    try:
        actor.validate(schedule.payload)
    except errors.PayloadError as exc:
        raise errors.ScheduleError(f"the schedule's payload does not fit: {exc}") from None


def _checked_payload(job_id: str, payload: object) -> Mapping[str, Any]:
    if payload is None:
        return MappingProxyType({})
    if not isinstance(payload, Mapping):
        raise errors.ScheduleError(
            f"{job_id}: the payload must be a JSON object, not {type(payload).__name__}"
        )
    try:
        strictjson.check(dict(payload))
    except (strictjson.JsonRefused, TypeError) as exc:
        raise errors.ScheduleError(f"{job_id}: the payload is refused: {exc}") from None
    return MappingProxyType(dict(payload))


def _periodic_expression(job_id: str, option: object) -> str:
    if isinstance(option, str):
        return option
    from periodiq import CronSpec  # only here: it brings pendulum

    # periodiq's CronSpec keeps the text it was parsed from, and writes one out otherwise.
    if isinstance(option, CronSpec):
        return str(option)
    raise errors.ScheduleError(
        f"{job_id}: periodic= must be periodiq.cron('...') or a cron string, not {type(option).__name__}"
    )
