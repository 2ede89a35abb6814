"""``docjobs scheduler --list``: each schedule, its last firing and its next one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from docjobs.db.cron import CronLedger
from docjobs.scheduler.table import CronTable


@dataclass(frozen=True)
class ScheduleState:
    """A schedule as the board and ``--list`` show it."""

    job_id: str
    expression: str
    timezone: str
    #: The variable that overrides it; ``None`` for the app's own schedules.
    variable: str | None
    last_slot: datetime | None
    last_status: str | None
    next_slot: datetime | None


def states(table: CronTable, ledger: CronLedger, now: datetime) -> list[ScheduleState]:
    """Every schedule of the table with its newest ledger row and next slot."""
    latest: dict[str, dict[str, Any]] = ledger.latest(list(table))
    found = []
    for schedule in table.values():
        last = latest.get(schedule.job_id)
        found.append(
            ScheduleState(
                job_id=schedule.job_id,
                expression=schedule.expression,
                timezone=table.timezone.key,
                variable=schedule.variable,
                last_slot=last["slot"] if last else None,
                last_status=last["status"] if last else None,
                next_slot=schedule.next_slot(now),
            )
        )
    return found


def render(rows: list[ScheduleState], table: CronTable) -> str:
    """A plain-text table, times in the cron zone."""

    def when(moment: datetime | None) -> str:
        return moment.astimezone(table.timezone).strftime("%Y-%m-%d %H:%M %Z") if moment else "-"

    header = ("SCHEDULE", "CRON", "LAST FIRING", "STATUS", "NEXT FIRING")
    lines = [
        (row.job_id, row.expression, when(row.last_slot), row.last_status or "-", when(row.next_slot))
        for row in rows
    ]
    widths = [max(len(line[column]) for line in (header, *lines)) for column in range(len(header))]
    out = [f"Time zone: {table.timezone.key}"]
    for line in (header, *lines):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return "\n".join(out)
