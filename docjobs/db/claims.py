"""Claims: a worker's hold on a job's attempt, and the outcomes it writes.

Every write is fenced by the (id, attempts) pair of the claim, so a worker whose
lease ran out and was rescued can no longer change the job.

Run times are the worker's, not the writes': a claim may wait in the worker's
prefetch buffer before a thread takes it, and acks are written in batches, up to a
poll interval after the job ended (issue 20). So each outcome carries when its actor
began and ended on the worker's monotonic clock, and the write turns them into
offsets back from the database's ``now()``: the row's times stay on the database's
clock (as ``submitted_at`` and ``run_at`` are) whatever the worker host's clock says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import psycopg

from docjobs.db import history, sql
from docjobs.db.documents import json_document
from docjobs.db.pool import Database

Row = dict[str, Any]


#: The statements on held jobs are planned at each run, for the table as it is then: a plan
#: PostgreSQL kept from when the table was small scans all of it once it is not (queries.sql).
PREPARE_HELD_JOB_STATEMENTS = False


class Claim(NamedTuple):
    """A held attempt: only this (id, attempts) pair may ack, nack or retry the job."""

    id: str
    attempts: int


class Ran(NamedTuple):
    """When an attempt's actor began and ended, in ``time.monotonic()`` seconds of this process.

    ``began`` is ``None`` when the actor never started (no such actor, or a
    middleware skipped the message): the row keeps its claim time as the start.
    """

    began: float | None
    ended: float


class Done(NamedTuple):
    """An acked attempt: the claim that held it and when its actor ran."""

    claim: Claim
    ran: Ran


def _run_offsets(ran: Ran | None, now: float) -> tuple[float, float | None]:
    """(milliseconds since the run ended, milliseconds it ran) at ``now``; an unknown run ends now."""
    if ran is None:
        return 0.0, None
    ended_ago_ms = max(now - ran.ended, 0.0) * 1000
    ran_ms = None if ran.began is None else max(ran.ended - ran.began, 0.0) * 1000
    return ended_ago_ms, ran_ms


def done_document(done: Sequence[Done], now: float) -> str:
    """The acked attempts as the one JSON document ``job_complete_and_claim`` reads, at ``now``.

    One document, not an array per column: psycopg adapts arrays element by element,
    in Python, on every batch (issue 21).
    """
    acks = []
    for finished in done:
        ended_ago_ms, ran_ms = _run_offsets(finished.ran, now)
        acks.append(
            {
                "id": finished.claim.id,
                "attempts": finished.claim.attempts,
                "ended_ago_ms": ended_ago_ms,
                "ran_ms": ran_ms,
            }
        )
    return json_document(acks).decode()


def _decoded(text: str) -> Any:
    """A JSON column of a claimed row, returned as text: most are empty, and need no parser.

    The standard library's parser, as psycopg's jsonb loader used: it keeps integers
    beyond 64 bits exact (orjson reads them as floats).
    """
    if text == "{}":
        return {}
    if text == "[]":
        return []
    return json.loads(text)


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
        done: Sequence[Done],
        limit: int,
        worker: str,
        lease_seconds: float,
    ) -> list[Row]:
        """Complete acked claims and claim up to ``limit`` due jobs, in one statement.

        Each completed job's ``started_at`` and ``completed_at`` become when its actor
        began and ended (``Done.ran``), not when it was claimed or this batch written.

        Returns:
            The claimed rows in queue order.
        """
        rows = (
            self._q["job_complete_and_claim"]
            .execute(
                conn,
                {
                    "done": done_document(done, time.monotonic()),
                    "queue": queue,
                    "limit": limit,
                    "worker": worker,
                    "lease_seconds": lease_seconds,
                },
                prepare=PREPARE_HELD_JOB_STATEMENTS,
            )
            .fetchall()
        )
        for row in rows:
            row["args"] = _decoded(row["args"])
            row["payload"] = _decoded(row["payload"])
            row["options"] = _decoded(row["options"])
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
        ran: Ran | None = None,
    ) -> bool:
        """Schedule another attempt; ``False`` when ``claim`` no longer holds the job.

        The failed attempt is kept with when it ran (``ran``; unknown: from its claim until now).
        """
        with self.database.connection() as conn:
            ended_ago_ms, ran_ms = _run_offsets(ran, time.monotonic())
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
                        "ended_ago_ms": ended_ago_ms,
                        "ran_ms": ran_ms,
                    },
                    prepare=PREPARE_HELD_JOB_STATEMENTS,
                )
                .fetchone()
            )
        return row is not None

    def fail(self, claim: Claim, *, error: str | None, traceback: str | None, ran: Ran | None = None) -> bool:
        """Mark the job FAILED; ``False`` when ``claim`` no longer holds the job.

        The job and its failed attempt are kept with when it ran (``ran``; unknown: from its claim until now).
        """
        with self.database.connection() as conn:
            ended_ago_ms, ran_ms = _run_offsets(ran, time.monotonic())
            row = (
                self._q["job_fail"]
                .execute(
                    conn,
                    {
                        "id": claim.id,
                        "attempts": claim.attempts,
                        "error": history.masked(error),
                        "traceback": history.masked(traceback),
                        "ended_ago_ms": ended_ago_ms,
                        "ran_ms": ran_ms,
                    },
                    prepare=PREPARE_HELD_JOB_STATEMENTS,
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
                prepare=PREPARE_HELD_JOB_STATEMENTS,
            )
