"""Job history rollups: finished jobs counted per 5-minute bucket, job type and queue.

Retention deletes finished rows of ``background_job`` (every provider's history);
the board's 24-hour and 7-day history reads these counts instead.

How each finished job is counted exactly once: a round folds the *closed* buckets
after the last one done (``background_job_rollup_state.rolled_until``) into
``background_job_rollup`` and moves ``rolled_until`` on, in one transaction that
holds the state row. A second round at the same time skips (``SKIP LOCKED``); a
round run twice finds nothing new; a crash rolls the fold back with the state, so
the next round does the same buckets again. Retention deletes only rows from
before ``rolled_until`` (``job_delete_finished``), and rolls up first, so it is
never held back by a rollup schedule turned off.

A bucket closes :data:`GRACE_SECONDS` after its end: a row must be written within
that of its ``completed_at`` to be counted (a local ack is; a bullmq history event
is within a fraction of a second, unless PostgreSQL was down when the job ended).
A row written later into a bucket already done is not counted: the price of not
marking every row, which would double retention's writes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from docjobs.db import sql
from docjobs.db.pool import Database

#: One bucket of the rollups.
BUCKET_SECONDS = 300
#: How long after its end a bucket is counted (rows written late into it are not).
GRACE_SECONDS = 120
#: Buckets older than this are deleted by ``internal.rollup-job-history`` (the board shows 7 days).
KEEP_DAYS = 8.0
#: Buckets older than this are merged into hours: the 24-hour view reads 5-minute buckets,
#: the 7-day one hours (so a week of a busy install is a few thousand rows per job type).
COMPACT_AFTER_SECONDS = 25 * 3600
#: Upper bounds (ms, exclusive) of the wait and run histograms' bins; the last bin has no bound.
#: rollups.sql writes the 12 bins out: change both together.
HISTOGRAM_BOUNDS_MS: tuple[int, ...] = (
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000,
)  # fmt: skip
#: The most one transaction folds, so a first rollup of 30 days of rows stays a run of short ones.
MAX_SPAN = timedelta(hours=6)
#: Longest one call spends folding (the next one goes on).
BUDGET_SECONDS = 5.0

Row = dict[str, Any]


@dataclass(frozen=True)
class RollupRound:
    """What one call of :meth:`RollupStore.roll_up` did.

    Attributes:
        rolled_until: Every finished job before this is counted (``None``: another process
            was rolling up, so this call did nothing).
        folded: Bucket rows written or added to.
    """

    rolled_until: datetime | None
    folded: int


class RollupStore:
    """Runs ``rollups.sql``: fills, trims and reads ``background_job_rollup``.

    Args:
        database: Where the job tables live.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._q = sql.rollup_queries()

    def roll_up(self, *, now: datetime | None = None) -> RollupRound:
        """Count the finished jobs of every closed bucket not counted yet.

        Args:
            now: The database's clock unless given (tests).

        Returns:
            Where the counts end, and how many bucket rows were written.
        """
        deadline = time.monotonic() + BUDGET_SECONDS
        folded = 0
        with self.database.connection() as conn:
            while True:
                with conn.transaction():
                    state = self._hold_state(conn, now)
                    if state is None:
                        return RollupRound(None, folded)
                    done: datetime | None = state["rolled_until"]
                    closed: datetime = state["closed_until"]
                    if done is not None and done >= closed:
                        return RollupRound(done, folded)
                    # No job finished between the last round's end and the next job's bucket:
                    # start there, so a quiet week or a first round is not 6 hours at a time.
                    following = self._next_bucket(conn, done)
                    start = closed if following is None else min(following, closed)
                    until = min(closed, start + MAX_SPAN)
                    if start < until:
                        folded += self._fold(conn, start, until)
                    self._advance(conn, until, now)
                if until >= closed or time.monotonic() > deadline:
                    return RollupRound(until, folded)

    def _hold_state(self, conn: psycopg.Connection[Any], now: datetime | None) -> Row | None:
        params = {"now": now, "grace": GRACE_SECONDS, "step": BUCKET_SECONDS}
        row: Row | None = self._q["rollup_hold_state"].execute(conn, params).fetchone()
        if row is None and self._q["rollup_create_state"].execute(conn).rowcount:
            row = self._q["rollup_hold_state"].execute(conn, params).fetchone()
        return row

    def _next_bucket(self, conn: psycopg.Connection[Any], since: datetime | None) -> datetime | None:
        params = {"since": since, "step": BUCKET_SECONDS}
        row = self._q["rollup_next_finished"].execute(conn, params).fetchone()
        return row["bucket"] if row else None

    def _fold(self, conn: psycopg.Connection[Any], since: datetime, until: datetime) -> int:
        params = {
            "since": since,
            "until": until,
            "step": BUCKET_SECONDS,
            "bounds": list(HISTOGRAM_BOUNDS_MS),
        }
        return max(self._q["rollup_fold"].execute(conn, params, prepare=False).rowcount, 0)

    def _advance(self, conn: psycopg.Connection[Any], until: datetime, now: datetime | None) -> None:
        self._q["rollup_advance"].execute(conn, {"until": until, "now": now})

    def compact(self, *, now: datetime | None = None) -> int:
        """Merge counted 5-minute buckets older than :data:`COMPACT_AFTER_SECONDS` into hours.

        In one transaction holding the state row, as a rollup round does; nothing when
        one is running (the next call goes on).

        Returns:
            Hour rows written or added to.
        """
        with self.database.connection() as conn, conn.transaction():
            params = {"now": now, "age": COMPACT_AFTER_SECONDS}
            state: Row | None = self._q["rollup_hold_compaction"].execute(conn, params).fetchone()
            if state is None:
                return 0
            done: datetime | None = state["compacted_until"]
            if done is not None and done >= state["until"]:
                return 0
            span = {"since": done, "until": state["until"]}
            merged = max(self._q["rollup_compact"].execute(conn, span, prepare=False).rowcount, 0)
            self._q["rollup_compacted"].execute(conn, {"until": state["until"]})
        return merged

    def state(self) -> Row:
        """``rolled_until`` (every finished job before it is counted; ``None`` before the first
        round), ``rolled_at`` (when a round last moved it) and ``compacted_until``."""
        with self.database.connection() as conn:
            row: Row | None = self._q["rollup_state"].execute(conn).fetchone()
        return row or {"rolled_until": None, "rolled_at": None, "compacted_until": None}

    def delete_old(self, days: float = KEEP_DAYS, *, now: datetime | None = None) -> int:
        """Delete buckets older than ``days``; how many rows went."""
        with self.database.connection() as conn:
            return max(self._q["rollup_delete_old"].execute(conn, {"days": days, "now": now}).rowcount, 0)

    def by_actor(self, since: datetime, until: datetime) -> list[Row]:
        """Per job type over the buckets of ``[since, until)``: ``completed``, ``failed``,
        ``cancelled``, ``retried``, ``wait_*`` and ``run_*`` (count, ms sum, ms max, histogram)."""
        with self.database.connection() as conn:
            params = {"since": since, "until": until}
            rows: list[Row] = self._q["rollup_by_actor"].execute(conn, params).fetchall()
        return rows

    def series(self, since: datetime, until: datetime, step_seconds: int) -> list[Row]:
        """Per step of ``step_seconds`` from ``since`` (the busy steps only): ``at``, ``completed``,
        ``failed``, ``wait_ms_sum`` and ``wait_count``."""
        with self.database.connection() as conn:
            params = {"since": since, "until": until, "step": step_seconds}
            rows: list[Row] = self._q["rollup_series"].execute(conn, params).fetchall()
        return rows


def percentile_seconds(histogram: Sequence[int], maximum_ms: int, fraction: float) -> float | None:
    """The ``fraction`` percentile of a histogram over :data:`HISTOGRAM_BOUNDS_MS`, in seconds.

    The upper bound of the bin it falls in, never above the largest value seen: an
    estimate that errs high by at most one bin. ``None`` for an empty histogram.
    """
    total = sum(histogram)
    if total == 0:
        return None
    rank = max(math.ceil(fraction * total), 1)
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            bound = HISTOGRAM_BOUNDS_MS[index] if index < len(HISTOGRAM_BOUNDS_MS) else maximum_ms
            return min(bound, maximum_ms) / 1000
    return maximum_ms / 1000  # pragma: no cover - the ranks add up to the total
