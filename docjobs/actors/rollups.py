"""``internal.rollup-job-history``: count finished jobs per bucket for the board's history.

Retention deletes finished jobs; the board's 24-hour and 7-day history reads these
counts (``docjobs.db.rollups`` says how each job is counted exactly once); this job
fills them, merges 5-minute buckets into hours after a day, and keeps them ``KEEP_DAYS``.
Its cron schedule belongs to the scheduler.
"""

from __future__ import annotations

import logging

import docjobs
from docjobs import runtime
from docjobs.db.rollups import KEEP_DAYS

logger = logging.getLogger("docjobs.jobs")


@docjobs.actor("internal.rollup-job-history", display_name="Rollup Job History")
def rollup_job_history() -> None:
    """Count the jobs of the buckets closed since the last round, merge day-old buckets into hours,
    drop those older than 8 days."""
    store = runtime.current().store
    if store is None:
        return  # no database: no history to count
    done = store.rollups.roll_up()
    hours = store.rollups.compact()
    dropped = store.rollups.delete_old(KEEP_DAYS)
    logger.info(
        "Rolled up job history until %s (%d bucket row(s), %d hour(s) compacted); dropped %d old one(s).",
        done.rolled_until,
        done.folded,
        hours,
        dropped,
        extra={"action": "rollup_done"},
    )
