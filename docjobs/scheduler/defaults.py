"""docjobs' own schedules: the rows of the cron table before the environment's overrides.

A leaf: the table (``table``) reads it to build itself, and ``declared`` reads it to
refuse an app's schedule for a job docjobs already schedules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Entry:
    """A row of the default table."""

    job_id: str
    expression: str
    #: A firing that reaches a worker later than this after its slot is skipped.
    tolerance: timedelta


#: The reference service's schedules (every 15 minutes), docjobs' retention jobs and its rollup.
DEFAULT_TABLE: tuple[Entry, ...] = (
    Entry("internal.seal-document-sweep", "*/15 * * * *", timedelta(minutes=5)),
    Entry("internal.expire-recipients-sweep", "*/15 * * * *", timedelta(minutes=5)),
    Entry("internal.send-signing-reminders-sweep", "*/15 * * * *", timedelta(minutes=5)),
    Entry("internal.cleanup-rate-limits", "*/15 * * * *", timedelta(minutes=5)),
    Entry("internal.cleanup-background-jobs", "0 3 * * *", timedelta(hours=1)),
    Entry("internal.cleanup-webhook-calls", "30 3 * * *", timedelta(hours=1)),
    # Issue 22: the board's history beyond retention (docjobs/db/rollups.py).
    Entry("internal.rollup-job-history", "*/5 * * * *", timedelta(minutes=4)),
)
