"""A run now's ledger slot is never a cron slot (whole minutes), so neither takes the other's row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from docjobs.scheduler.firing import run_now_moment


def test_a_run_now_asked_on_the_minute_is_recorded_just_after_it() -> None:
    on_the_minute = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    assert on_the_minute + timedelta(microseconds=1) == run_now_moment(on_the_minute)


def test_a_run_now_asked_within_a_minute_keeps_its_moment() -> None:
    for moment in (
        datetime(2026, 12, 7, 6, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 12, 7, 6, 0, 59, tzinfo=UTC),
    ):
        assert moment == run_now_moment(moment)
