"""The app's own schedules (issue 18, item 3): declared in code, joined to the cron table, refused when wrong."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from periodiq import cron

import docjobs
from docjobs import globalbroker
from docjobs.errors import ScheduleError
from docjobs.scheduler import build, declared
from docjobs.scheduler.periodiq import PeriodiqSpec, PeriodiqWiring
from docjobs.scheduler.table import CronTable
from docjobs.settings import Settings
from tests.support import actors as test_actors

BASE = {
    "NEXT_PRIVATE_DATABASE_URL": "postgresql://db.internal/docjobs",
    "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY": "k",
}


def table(**environ: str) -> CronTable:
    return build(Settings.from_environ({**BASE, **environ}))


@pytest.fixture
def scheduled() -> Iterator[list[str]]:
    """Job ids the test schedules; their schedules are removed after it."""
    job_ids: list[str] = []
    yield job_ids
    for job_id in job_ids:
        docjobs.remove_schedule(job_id)


@pytest.fixture
def wired() -> tuple[StubBroker, CronTable]:
    """A stub broker with the periodiq wiring of a table, as the runtime builds it."""
    cron_table = table()
    return StubBroker(middleware=[PeriodiqWiring(cron_table)]), cron_table


def test_an_added_schedule_joins_a_table_built_before_it_in_the_table_zone(scheduled: list[str]) -> None:
    berlin = table(NEXT_PRIVATE_JOBS_CRON_TZ="Europe/Berlin")
    scheduled.append("app.nightly")
    docjobs.add_schedule("app.nightly", "30 2 * * *", payload={"scope": "all"}, tolerance_seconds=60)
    nightly = berlin["app.nightly"]
    assert list(berlin)[-1] == "app.nightly"
    assert datetime(2026, 7, 1, 0, 30, tzinfo=UTC) == nightly.next_slot(datetime(2026, 6, 30, 12, tzinfo=UTC))
    assert ({"scope": "all"}, timedelta(seconds=60), None) == (
        dict(nightly.payload),
        nightly.tolerance,
        nightly.variable,
    )
    assert docjobs.remove_schedule("app.nightly")
    assert "app.nightly" not in berlin


@pytest.mark.parametrize(
    ("job_id", "expression", "payload", "reason"),
    [
        ("app.x", "61 * * * *", None, r"app\.x: not a cron expression: Bad minute \(got '61 \* \* \* \*'\)"),
        ("app.x", "off", None, r"app\.x: not a cron expression: Wrong number of fields"),
        ("app.x", "* * * * *", ["not", "an object"], r"app\.x: the payload must be a JSON object, not list"),
        ("app.x", "* * * * *", {"n": float("nan")}, r"app\.x: the payload is refused"),
        ("", "* * * * *", None, "a schedule's job id must be a non-empty string"),
        ("internal.cleanup-rate-limits", "* * * * *", None, "NEXT_PRIVATE_JOBS_..._CRON"),
        (
            "test.record",
            "* * * * *",
            {"documentId": 1},
            r"payload does not fit: test\.record: key: Field required",
        ),
    ],
)
def test_a_bad_schedule_is_refused_in_one_line_and_not_added(
    job_id: str, expression: str, payload: Any, reason: str
) -> None:
    assert test_actors.record_job  # declared, so the payload is checked against it
    with pytest.raises(ScheduleError, match=reason):
        docjobs.add_schedule(job_id, expression, payload=payload)
    assert declared.get(job_id) is None


def test_one_schedule_per_job_and_declaring_it_again_is_harmless(scheduled: list[str]) -> None:
    scheduled.append("app.twice")
    first = docjobs.add_schedule("app.twice", "*/5 * * * *")
    assert first == docjobs.add_schedule("app.twice", "*/5   * * * *")
    with pytest.raises(
        ScheduleError, match=r"app\.twice: already scheduled '\*/5 \* \* \* \*' by add_schedule"
    ):
        docjobs.add_schedule("app.twice", "0 * * * *")
    assert "*/5 * * * *" == table()["app.twice"].expression


def test_a_periodiq_option_becomes_a_table_schedule(
    wired: tuple[StubBroker, CronTable], scheduled: list[str]
) -> None:
    broker, cron_table = wired
    scheduled.append("app.every-five")
    every_five = dramatiq.actor(
        lambda: None, actor_name="app.every-five", broker=broker, periodic=cron("*/5 * * * *")
    )
    assert isinstance(every_five.options["periodic"], PeriodiqSpec)
    assert "*/5 * * * *" == cron_table["app.every-five"].expression


def test_a_periodic_option_that_is_no_cron_schedule_is_refused(wired: tuple[StubBroker, CronTable]) -> None:
    broker, _ = wired
    with pytest.raises(
        ScheduleError,
        match=r"app\.odd: periodic= must be periodiq\.cron\('\.\.\.'\) or a cron string, not int",
    ):
        dramatiq.actor(lambda: None, actor_name="app.odd", broker=broker, periodic=5)


def test_a_schedule_added_after_its_actor_wires_it_and_removing_unwires_it(
    wired: tuple[StubBroker, CronTable], scheduled: list[str]
) -> None:
    broker, _ = wired
    later = dramatiq.actor(lambda: None, actor_name="app.later", broker=broker)
    assert "periodic" not in later.options
    scheduled.append("app.later")
    docjobs.add_schedule("app.later", "@hourly")
    assert isinstance(later.options["periodic"], PeriodiqSpec)
    docjobs.remove_schedule("app.later")
    assert "periodic" not in later.options


def test_a_periodiq_firing_of_a_plain_actor_gets_its_schedule_payload(
    wired: tuple[StubBroker, CronTable], scheduled: list[str]
) -> None:
    broker, _ = wired
    broker.emit_after("process_boot")
    reports = dramatiq.actor(lambda team: None, actor_name="app.reports", broker=broker)
    scheduled.append("app.reports")
    docjobs.add_schedule("app.reports", "0 6 * * mon", payload={"team": "ops"})
    sent = reports.send_with_options(scheduled_at="2026-03-09T06:00:00.5+00:00")
    assert {"team": "ops"} == sent.kwargs


def test_the_stand_in_broker_accepts_the_options_of_docjobs_stack() -> None:
    assert {
        "periodic",
        "max_retries",
        "time_limit",
        "min_backoff",
        "on_failure",
    } <= globalbroker.BROKER.actor_options
