"""The cron table and its drivers with an injected clock: no database, no sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pendulum
import pytest

from docjobs.errors import SettingsError
from docjobs.scheduler import CronExpression, InvalidCron, build
from docjobs.scheduler.inprocess import MAX_SLEEP, RETRY_AFTER, InProcessScheduler
from docjobs.scheduler.periodiq import PeriodiqSpec
from docjobs.scheduler.table import DEFAULT_TABLE, CronTable, Schedule, variable_for
from docjobs.settings import Settings

BASE = {
    "NEXT_PRIVATE_DATABASE_URL": "postgresql://db.internal/docjobs",
    "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "k",
}
BERLIN = ZoneInfo("Europe/Berlin")
SWEEPS = (
    "internal.seal-document-sweep",
    "internal.expire-recipients-sweep",
    "internal.send-signing-reminders-sweep",
    "internal.cleanup-rate-limits",
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def table(**environ: str) -> CronTable:
    return build(Settings.from_environ({**BASE, **environ}))


def sweeps_table() -> CronTable:
    """The default table without the every-5-minutes rollup, whose slots fall between the sweeps'."""
    return table(NEXT_PRIVATE_JOBS_ROLLUP_JOB_HISTORY_CRON="off")


class FakeFirer:
    """Records what the in-process scheduler fires; may be told to fail."""

    def __init__(self) -> None:
        self.fired: list[tuple[str, datetime]] = []
        self.failing = False

    def fire(self, schedule: Schedule, slot: datetime) -> bool:
        if self.failing:
            raise OSError("database unreachable")
        self.fired.append((schedule.job_id, slot))
        return True


def run_clock(scheduler: InProcessScheduler, start: datetime, end: datetime, step: timedelta) -> None:
    """Tick the scheduler at every ``step`` (and at every wake time it asks for) in [start, end]."""
    now = start
    while now <= end:
        wake = scheduler.tick(now)
        assert wake > now
        now = min(wake, now + step)


# The table and its overrides


def test_every_default_schedule_fires_next_at_its_documented_time() -> None:
    now = utc(2026, 3, 10, 10, 7, 30)
    expected = dict.fromkeys(SWEEPS, utc(2026, 3, 10, 10, 15))
    expected["internal.cleanup-background-jobs"] = utc(2026, 3, 11, 3, 0)
    expected["internal.cleanup-webhook-calls"] = utc(2026, 3, 11, 3, 30)
    expected["internal.rollup-job-history"] = utc(2026, 3, 10, 10, 10)  # every 5 minutes
    schedules = table()
    assert expected == {job_id: schedule.next_slot(now) for job_id, schedule in schedules.items()}
    assert [entry.job_id for entry in DEFAULT_TABLE] == list(schedules)
    assert utc(2026, 3, 10, 10, 10) == schedules.next_firing(now)


def test_the_override_variable_is_named_after_the_job() -> None:
    assert "NEXT_PRIVATE_JOBS_SEAL_DOCUMENT_SWEEP_CRON" == variable_for("internal.seal-document-sweep")
    assert "NEXT_PRIVATE_JOBS_CLEANUP_WEBHOOK_CALLS_CRON" == variable_for("internal.cleanup-webhook-calls")


def test_an_override_replaces_one_schedule_and_leaves_the_others() -> None:
    schedules = table(NEXT_PRIVATE_JOBS_SEAL_DOCUMENT_SWEEP_CRON="5 * * * *")
    now = utc(2026, 3, 10, 10, 7, 30)
    assert "5 * * * *" == schedules["internal.seal-document-sweep"].expression
    assert utc(2026, 3, 10, 11, 5) == schedules["internal.seal-document-sweep"].next_slot(now)
    assert utc(2026, 3, 10, 10, 15) == schedules["internal.expire-recipients-sweep"].next_slot(now)


def test_an_alias_override_is_accepted() -> None:
    schedule = table(NEXT_PRIVATE_JOBS_CLEANUP_RATE_LIMITS_CRON="@hourly")["internal.cleanup-rate-limits"]
    assert utc(2026, 3, 10, 11, 0) == schedule.next_slot(utc(2026, 3, 10, 10, 7))


@pytest.mark.parametrize("value", ["off", "OFF", " off "])
def test_off_turns_a_schedule_off_everywhere(value: str) -> None:
    schedules = table(NEXT_PRIVATE_JOBS_CLEANUP_RATE_LIMITS_CRON=value)
    schedule = schedules["internal.cleanup-rate-limits"]
    assert not schedule.enabled
    assert "off" == schedule.expression
    assert schedule.next_slot(utc(2026, 3, 10)) is None
    assert schedule.due_slot(utc(2026, 3, 10, 10, 15)) is None
    assert "internal.cleanup-rate-limits" not in [s.job_id for s in schedules.enabled()]
    assert 6 == len(schedules.enabled())


def test_with_every_schedule_off_nothing_is_next() -> None:
    environ = {variable_for(entry.job_id): "off" for entry in DEFAULT_TABLE}
    assert table(**environ).next_firing(utc(2026, 3, 10)) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("*/15 * * *", "Wrong number of fields"),
        ("61 * * * *", "Bad minute"),
        ("0 25 * * *", "Bad hour"),
        ("0 0 * * funday", "Bad day-of-week"),
        ("0 0 31 2 *", "Bad day-of-month"),
        ("every 15 minutes", "Wrong number of fields"),
        ("* * * * * *", "expected 5, got 6"),
    ],
)
def test_a_bad_expression_stops_start_up_naming_the_variable(value: str, reason: str) -> None:
    with pytest.raises(SettingsError) as raised:
        table(NEXT_PRIVATE_JOBS_EXPIRE_RECIPIENTS_SWEEP_CRON=value)
    message = str(raised.value)
    assert message.startswith("NEXT_PRIVATE_JOBS_EXPIRE_RECIPIENTS_SWEEP_CRON: ")
    assert reason in message
    assert "\n" not in message


def test_an_override_for_no_schedule_is_an_error_listing_the_schedules() -> None:
    with pytest.raises(SettingsError) as raised:
        table(NEXT_PRIVATE_JOBS_SEAL_SWEEP_CRON="* * * * *")
    message = str(raised.value)
    assert message.startswith("NEXT_PRIVATE_JOBS_SEAL_SWEEP_CRON: no such schedule")
    assert "NEXT_PRIVATE_JOBS_SEAL_DOCUMENT_SWEEP_CRON" in message


def test_an_unknown_time_zone_is_an_error_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^NEXT_PRIVATE_JOBS_CRON_TZ: .*Mars/Olympus"):
        table(NEXT_PRIVATE_JOBS_CRON_TZ="Mars/Olympus")


def test_the_time_zone_applies_to_every_schedule() -> None:
    schedules = table(NEXT_PRIVATE_JOBS_CRON_TZ="America/New_York")
    assert "America/New_York" == schedules.timezone.key
    # 03:00 in New York in March (EDT) is 07:00 UTC.
    assert utc(2026, 3, 11, 7, 0) == schedules["internal.cleanup-background-jobs"].next_slot(
        utc(2026, 3, 10, 12)
    )


# Sunday


@pytest.mark.parametrize("expression", ["0 12 * * 0", "0 12 * * 7", "0 12 * * sun", "0 12 * * SUN"])
def test_every_form_of_sunday_means_sunday(expression: str) -> None:
    cron = CronExpression(expression, ZoneInfo("UTC"))
    assert utc(2026, 11, 29, 12) == cron.next_after(utc(2026, 11, 25, 9))  # from a Wednesday
    assert utc(2026, 12, 6, 12) == cron.next_after(utc(2026, 11, 29, 12))
    assert utc(2026, 11, 29, 12) == cron.latest_at_or_before(utc(2026, 12, 5, 23, 59))


def test_a_range_ending_in_seven_reaches_sunday() -> None:
    cron = CronExpression("0 12 * * 5-7", ZoneInfo("UTC"))
    slots = cron.slots(utc(2026, 11, 23), utc(2026, 11, 30, 23))
    assert ["Fri", "Sat", "Sun"] == [slot.strftime("%a") for slot in slots]


def test_weekly_is_midnight_between_saturday_and_sunday() -> None:
    assert utc(2026, 11, 29) == CronExpression("@weekly", ZoneInfo("UTC")).next_after(utc(2026, 11, 25))


@pytest.mark.parametrize("day_of_week", ["0", "7", "sun"])
def test_periodiq_fires_a_sunday_schedule_on_sunday_only(day_of_week: str) -> None:
    schedules = table(NEXT_PRIVATE_JOBS_CLEANUP_WEBHOOK_CALLS_CRON=f"0 12 * * {day_of_week}")
    spec = PeriodiqSpec(schedules["internal.cleanup-webhook-calls"])
    # periodiq passes pendulum datetimes, in the process's local zone.
    assert not spec.validate(pendulum.datetime(2026, 11, 28, 12, 0, 0, tz="UTC"))  # Saturday
    assert not spec.validate(pendulum.datetime(2026, 11, 30, 12, 0, 0, tz="UTC"))  # Monday
    assert spec.validate(pendulum.datetime(2026, 11, 29, 13, 0, 0, tz="Europe/Berlin"))  # Sunday 12:00 UTC
    assert utc(2026, 12, 6, 12) == spec.next_valid_date(pendulum.datetime(2026, 11, 29, 12, 0, 1, tz="UTC"))


# Daylight saving time (Europe/Berlin: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00)


def test_a_daily_time_in_the_spring_forward_gap_runs_once_right_after_it() -> None:
    cron = CronExpression("30 2 * * *", BERLIN)
    slots = cron.slots(utc(2026, 3, 27, 12), utc(2026, 3, 30, 12))
    assert [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)] == slots
    assert "2026-03-29 03:00 CEST" == slots[1].astimezone(BERLIN).strftime("%Y-%m-%d %H:%M %Z")


def test_a_daily_time_in_the_repeated_hour_runs_once() -> None:
    cron = CronExpression("30 2 * * *", BERLIN)
    slots = cron.slots(utc(2026, 10, 23, 12), utc(2026, 10, 26, 12))
    assert [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)] == slots


@pytest.mark.parametrize("night", [utc(2026, 3, 28, 22), utc(2026, 10, 24, 22)])
def test_every_fifteen_minutes_stays_every_fifteen_real_minutes_through_a_change(night: datetime) -> None:
    slots = CronExpression("*/15 * * * *", BERLIN).slots(night, night + timedelta(hours=6))
    assert 24 == len(slots) == len(set(slots))
    assert {timedelta(minutes=15)} == {
        later - earlier for earlier, later in zip(slots, slots[1:], strict=False)
    }


@pytest.mark.parametrize("night", [utc(2026, 3, 28, 22), utc(2026, 10, 24, 22)])
@pytest.mark.parametrize(
    "expression", ["30 2 * * *", "*/15 * * * *", "0 * * * *", "15,45 2 * * *", "59 1 * * *"]
)
def test_next_and_latest_slots_agree_minute_by_minute_through_a_change(
    night: datetime, expression: str
) -> None:
    cron = CronExpression(expression, BERLIN)
    window = cron.slots(night - timedelta(days=2), night + timedelta(days=2))
    for minute in range(6 * 60):
        moment = night + timedelta(minutes=minute, seconds=30)
        assert max(slot for slot in window if slot <= moment) == cron.latest_at_or_before(moment), moment
        assert min(slot for slot in window if slot > moment) == cron.next_after(moment), moment
    assert len(window) == len(set(window))


@pytest.mark.parametrize("night", [utc(2026, 3, 28, 22), utc(2026, 10, 24, 22)])
def test_the_in_process_scheduler_neither_skips_nor_doubles_a_slot_at_a_change(night: datetime) -> None:
    environ = {variable_for(entry.job_id): "off" for entry in DEFAULT_TABLE}
    environ["NEXT_PRIVATE_JOBS_CRON_TZ"] = "Europe/Berlin"
    environ["NEXT_PRIVATE_JOBS_CLEANUP_RATE_LIMITS_CRON"] = "*/15 * * * *"
    environ["NEXT_PRIVATE_JOBS_CLEANUP_WEBHOOK_CALLS_CRON"] = "30 2 * * *"
    firer = FakeFirer()
    scheduler = InProcessScheduler(table(**environ), firer)  # type: ignore[arg-type]
    run_clock(scheduler, night, night + timedelta(hours=6), timedelta(seconds=20))
    quarter_hours = [slot for job_id, slot in firer.fired if job_id == "internal.cleanup-rate-limits"]
    assert CronExpression("*/15 * * * *", BERLIN).slots(
        night - timedelta(seconds=1), night + timedelta(hours=6)
    ) == (quarter_hours)
    daily = [slot for job_id, slot in firer.fired if job_id == "internal.cleanup-webhook-calls"]
    assert 1 == len(daily)


# Latest slot only, tolerance, and the in-process scheduler's loop


def test_only_the_latest_slot_is_due_and_only_within_the_tolerance() -> None:
    sweep = table()["internal.seal-document-sweep"]  # every 15 minutes, tolerance 5 minutes
    assert utc(2026, 3, 10, 10, 15) == sweep.due_slot(utc(2026, 3, 10, 10, 15))
    assert utc(2026, 3, 10, 10, 15) == sweep.due_slot(utc(2026, 3, 10, 10, 20))
    assert sweep.due_slot(utc(2026, 3, 10, 10, 20, 1)) is None
    retention = table()["internal.cleanup-background-jobs"]  # 03:00, tolerance 1 hour
    assert utc(2026, 3, 10, 3) == retention.due_slot(utc(2026, 3, 10, 3, 59))
    assert retention.due_slot(utc(2026, 3, 10, 4, 1)) is None


def test_a_scheduler_that_was_down_does_not_catch_up() -> None:
    firer = FakeFirer()
    scheduler = InProcessScheduler(sweeps_table(), firer)  # type: ignore[arg-type]
    scheduler.tick(utc(2026, 3, 10, 9, 50))
    assert {utc(2026, 3, 10, 9, 45)} == {slot for _, slot in firer.fired}
    firer.fired.clear()
    # Down from 09:50 to 10:44: the 10:00, 10:15 and 10:30 slots are gone for good.
    wake = scheduler.tick(utc(2026, 3, 10, 10, 44))
    assert [] == firer.fired
    assert utc(2026, 3, 10, 10, 45) == wake
    scheduler.tick(utc(2026, 3, 10, 10, 45, 0, 3000))
    assert {(job_id, utc(2026, 3, 10, 10, 45)) for job_id in SWEEPS} == set(firer.fired)


def test_a_scheduler_started_within_the_tolerance_fires_the_latest_slot_once() -> None:
    firer = FakeFirer()
    scheduler = InProcessScheduler(sweeps_table(), firer)  # type: ignore[arg-type]
    run_clock(scheduler, utc(2026, 3, 10, 3, 20), utc(2026, 3, 10, 3, 29), timedelta(seconds=7))
    assert sorted(
        [(job_id, utc(2026, 3, 10, 3, 15)) for job_id in SWEEPS]
        + [("internal.cleanup-background-jobs", utc(2026, 3, 10, 3, 0))]
    ) == sorted(firer.fired)


def test_the_scheduler_sleeps_until_the_next_slot_and_at_most_a_minute() -> None:
    firer = FakeFirer()
    scheduler = InProcessScheduler(table(), firer)  # type: ignore[arg-type]
    assert utc(2026, 3, 10, 10, 15) == scheduler.tick(utc(2026, 3, 10, 10, 14, 30))
    assert utc(2026, 3, 10, 10, 1) + MAX_SLEEP == scheduler.tick(utc(2026, 3, 10, 10, 1))


def test_a_failed_firing_is_retried_soon_and_fired_once_it_works() -> None:
    firer = FakeFirer()
    scheduler = InProcessScheduler(sweeps_table(), firer)  # type: ignore[arg-type]
    firer.failing = True
    now = utc(2026, 3, 10, 10, 15, 0, 5000)
    assert now + RETRY_AFTER == scheduler.tick(now)
    firer.failing = False
    scheduler.tick(now + RETRY_AFTER)
    scheduler.tick(now + RETRY_AFTER * 2)
    assert sorted((job_id, utc(2026, 3, 10, 10, 15)) for job_id in SWEEPS) == sorted(firer.fired)


def test_the_periodiq_spec_sends_each_slot_once_per_process() -> None:
    spec = PeriodiqSpec(table()["internal.seal-document-sweep"])
    assert spec.validate(pendulum.datetime(2026, 3, 10, 10, 15, 0, tz="UTC"))
    assert not spec.validate(pendulum.datetime(2026, 3, 10, 10, 15, 1, tz="UTC"))
    assert not spec.validate(pendulum.datetime(2026, 3, 10, 10, 29, 59, tz="UTC"))
    assert spec.validate(pendulum.datetime(2026, 3, 10, 10, 30, 0, tz="UTC"))
    assert utc(2026, 3, 10, 10, 45) == spec.next_valid_date(
        pendulum.datetime(2026, 3, 10, 10, 30, 0, tz="UTC")
    )
    assert "*/15 * * * * (UTC)" == str(spec)


def test_the_periodiq_spec_of_a_late_start_fires_within_the_tolerance_only() -> None:
    sweep = table()["internal.seal-document-sweep"]
    assert PeriodiqSpec(sweep).validate(pendulum.datetime(2026, 3, 10, 10, 19, tz="UTC"))
    assert not PeriodiqSpec(sweep).validate(pendulum.datetime(2026, 3, 10, 10, 21, tz="UTC"))


def test_invalid_cron_is_a_value_error_with_the_reason() -> None:
    with pytest.raises(InvalidCron, match="Bad minute"):
        CronExpression("60 * * * *", ZoneInfo("UTC"))
