"""Claims: a worker's hold on a job's attempt, and the outcomes it writes.

Every write is fenced by the (id, attempts) pair of the claim, so a worker whose
lease ran out and was rescued can no longer change the job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import psycopg

from docjobs.db import history, sql
from docjobs.db.pool import Database

Row = dict[str, Any]


class Claim(NamedTuple):
    """A held attempt: only this (id, attempts) pair may ack, nack or retry the job."""

    id: str
    attempts: int


class ClaimStore:
    """Claims due jobs and writes the outcome of each held attempt.

    Args:
        database: Where ``background_job`` lives.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._q = sql.queries()

    def complete_and_claim(
        self,
        conn: psycopg.Connection[Any],
        *,
        queue: str,
        done: Sequence[Claim],
        limit: int,
        worker: str,
        lease_seconds: float,
    ) -> list[Row]:
        """Complete acked claims and claim up to ``limit`` due jobs, in one statement.

        Returns:
            The claimed rows in queue order.
        """
        rows = (
            self._q["job_complete_and_claim"]
            .execute(
                conn,
                {
                    "done_ids": [claim.id for claim in done],
                    "done_attempts": [claim.attempts for claim in done],
                    "queue": queue,
                    "limit": limit,
                    "worker": worker,
                    "lease_seconds": lease_seconds,
                },
            )
            .fetchall()
        )
        # UPDATE ... RETURNING does not keep the claim's order.
        rows.sort(key=lambda row: (row["priority"], row["seq"]))
        return rows

    def retry(
        self,
        claim: Claim,
        *,
        delay_ms: int,
        retried: int,
        options: dict[str, Any],
        error: str | None,
        traceback: str | None,
    ) -> bool:
        """Schedule another attempt; ``False`` when ``claim`` no longer holds the job."""
        with self.database.connection() as conn:
            row = (
                self._q["job_retry"]
                .execute(
                    conn,
                    {
                        "id": claim.id,
                        "attempts": claim.attempts,
                        "delay_ms": delay_ms,
                        "retried": retried,
                        "options": json.dumps(options),
                        "error": history.masked(error),
                        "traceback": history.masked(traceback),
                    },
                )
                .fetchone()
            )
        return row is not None

    def fail(self, claim: Claim, *, error: str | None, traceback: str | None) -> bool:
        """Mark the job FAILED; ``False`` when ``claim`` no longer holds the job."""
        with self.database.connection() as conn:
            row = (
                self._q["job_fail"]
                .execute(
                    conn,
                    {
                        "id": claim.id,
                        "attempts": claim.attempts,
                        "error": history.masked(error),
                        "traceback": history.masked(traceback),
                    },
                )
                .fetchone()
            )
        return row is not None

    def requeue(self, claims: Iterable[Claim]) -> None:
        """Give claimed, unprocessed jobs back to the queue."""
        claims = list(claims)
        if not claims:
            return
        with self.database.connection() as conn:
            self._q["job_requeue"].execute(
                conn,
                {"ids": [claim.id for claim in claims], "attempts": [claim.attempts for claim in claims]},
            )
