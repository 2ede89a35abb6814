"""The cron guard looks a job up in the cron table only for a scheduled firing (issue 21).

Every message a worker runs passes the guard twice (before and after it runs). Looking
its actor up in the table (own schedules, then the app's declared ones, under a lock)
cost ~7 us a job for messages that carry no slot and so can never be a firing.
"""

from __future__ import annotations

from typing import Any, cast
from zoneinfo import ZoneInfo

import dramatiq

from docjobs.scheduler.firing import SLOT_OPTION
from docjobs.scheduler.guard import CronGuard
from docjobs.scheduler.table import CronTable, Schedule


class CountingTable(CronTable):
    """A cron table without schedules that counts the lookups made of it."""

    def __init__(self) -> None:
        super().__init__([], ZoneInfo("UTC"), app_schedules=False)
        self.lookups: list[str] = []

    def __getitem__(self, job_id: str) -> Schedule:
        self.lookups.append(job_id)
        return super().__getitem__(job_id)


def message(options: dict[str, Any]) -> dramatiq.Message[Any]:
    return dramatiq.Message(
        queue_name="default", actor_name="app.job", args=(), kwargs={}, options=options, message_id="m-1"
    )


def run_through(guard: CronGuard, sent: dramatiq.Message[Any]) -> None:
    """The guard's hooks around one processed message, as a worker calls them."""
    proxy = dramatiq.MessageProxy(sent)
    broker = cast(Any, None)
    guard.before_process_message(broker, proxy)
    guard.after_process_message(broker, proxy, result=None)


def test_a_message_without_a_slot_is_not_looked_up() -> None:
    table = CountingTable()
    guard = CronGuard(table, cast(Any, None))  # no ledger: a non-firing must not reach it

    run_through(guard, message({}))

    assert table.lookups == []


def test_a_message_with_a_slot_is_still_looked_up() -> None:
    table = CountingTable()
    guard = CronGuard(table, cast(Any, None))  # no schedule for it: the ledger is not asked

    run_through(guard, message({SLOT_OPTION: "2026-12-06T23:00:00+00:00"}))

    assert table.lookups == ["app.job", "app.job"]
