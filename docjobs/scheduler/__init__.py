"""The scheduler: one cron table, its drivers, and once-per-slot firing.

- ``table``: the schedules, overridable by ``NEXT_PRIVATE_JOBS_<NAME>_CRON``;
- ``declared``: the app's own schedules (``docjobs.add_schedule``, periodiq's
  ``periodic=``), which join the table;
- ``cron``: expressions evaluated in ``NEXT_PRIVATE_JOBS_CRON_TZ``, slots in UTC;
- ``inprocess``: the thread ``docjobs web`` runs (``--no-cron`` turns it off);
- ``periodiq``: the table as periodiq's ``periodic`` actor options
  (``docjobs scheduler``, or ``periodiq docjobs.runtime:broker docjobs.actors``);
- ``firing`` and ``guard``: a slot is claimed in the cron ledger by the scheduler that
  fires it, and a worker runs only the firing that owns its slot, on time.
"""

from docjobs.scheduler.cron import CronExpression, InvalidCron
from docjobs.scheduler.declared import AppSchedule, add_schedule, remove_schedule
from docjobs.scheduler.table import DEFAULT_TABLE, CronTable, Schedule, build

__all__ = [
    "DEFAULT_TABLE",
    "AppSchedule",
    "CronExpression",
    "CronTable",
    "InvalidCron",
    "Schedule",
    "add_schedule",
    "build",
    "remove_schedule",
]
