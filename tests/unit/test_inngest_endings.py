"""How ``docjobs.run-ended`` tells a time-out from a cancellation (``endings._timed_out``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import inngest
import pytest

from docjobs.brokers.inngest import endings
from docjobs.db.history import JobStanding

SENT = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
STARTED = SENT + timedelta(seconds=2)


@pytest.mark.parametrize(
    ("limits", "started", "cancelled_after", "reason"),
    [
        (None, STARTED, timedelta(hours=1), None),  # no limits: a plain cancellation
        (inngest.Timeouts(finish=timedelta(seconds=30)), STARTED, timedelta(seconds=33), "finish"),
        # Inngest's start is a little before the one the job recorded: a second of margin.
        (inngest.Timeouts(finish=30_000), STARTED, timedelta(seconds=31.5), "finish"),
        (inngest.Timeouts(finish=timedelta(seconds=30)), STARTED, timedelta(seconds=20), None),
        (inngest.Timeouts(start=timedelta(seconds=10)), None, timedelta(seconds=10), "start"),
        (inngest.Timeouts(start=timedelta(seconds=10)), STARTED, timedelta(seconds=60), None),  # it started
        (inngest.Timeouts(start=timedelta(seconds=10)), None, timedelta(seconds=5), None),
    ],
)
def test_a_cancellation_at_a_limit_is_told_as_that_time_out(
    limits: inngest.Timeouts | None, started: datetime | None, cancelled_after: timedelta, reason: str | None
) -> None:
    standing = JobStanding("PROCESSING" if started else "PENDING", SENT, started)
    told = endings._timed_out(standing, SENT + cancelled_after, limits)
    expected = {
        None: None,
        "finish": "timed out in Inngest after 30s (its timeouts.finish)",
        "start": "timed out in Inngest: not started within 10s (its timeouts.start)",
    }[reason]
    assert expected == told
