"""The admin board's store: its reads, the row updates its actions make, its audit log."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from docjobs.db import sql
from docjobs.db.pool import Database
from docjobs.db.rollups import RollupStore

Row = dict[str, Any]

#: Jobs per page of the jobs list.
PAGE_SIZE = 50
#: Rows per statement of a bulk action, so each transaction stays short.
BULK_BATCH = 5_000


@dataclass(frozen=True)
class JobFilter:
    """What the jobs list shows; ``None`` matches everything.

    Attributes:
        state: ``queued``, ``scheduled``, ``pending`` (either), ``active``, ``completed``, ``failed``
            or ``cancelled`` (``FILTER_STATES``).
        queue: A queue name.
        actor: A job id such as ``send.signing.requested.email``.
        search: Text to find anywhere in the payload (case-insensitive).
        since: Submitted at or after.
        until: Submitted before.
    """

    state: str | None = None
    queue: str | None = None
    actor: str | None = None
    search: str | None = None
    since: datetime | None = None
    until: datetime | None = None


#: Board states as (status, due) of ``background_job``; due splits PENDING.
STATES: Mapping[str, tuple[str, bool | None]] = {
    "queued": ("PENDING", True),
    "scheduled": ("PENDING", False),
    "active": ("PROCESSING", None),
    "completed": ("COMPLETED", None),
    "failed": ("FAILED", None),
    "cancelled": ("CANCELLED", None),
}
#: The states the jobs list filters by: the board's, and ``pending`` (queued or scheduled).
FILTER_STATES: Mapping[str, tuple[str, bool | None]] = {
    "queued": STATES["queued"],
    "scheduled": STATES["scheduled"],
    "pending": ("PENDING", None),
    **{state: STATES[state] for state in ("active", "completed", "failed", "cancelled")},
}
#: Status names the filter also takes, for the board state each is (the pages show both).
STATE_ALIASES = {"processing": "active"}


def counted_states(state: str | None) -> list[str]:
    """The board states (``STATES``, the overview's count columns) a filter state adds up."""
    if state is None:
        return list(STATES)
    status, due = FILTER_STATES[state]
    return [name for name, (other, when) in STATES.items() if other == status and due in (None, when)]


class BoardStore:
    """Runs ``board.sql``.

    Args:
        database: Where the job tables live.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._q = sql.board_queries()

    def _all(self, name: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        with self.database.connection() as conn:
            rows: list[Row] = self._q[name].execute(conn, params).fetchall()
        return rows

    def _one(self, name: str, params: Mapping[str, Any]) -> Row | None:
        with self.database.connection() as conn:
            row: Row | None = self._q[name].execute(conn, params).fetchone()
        return row

    # Reads.

    def queue_counts(self) -> list[Row]:
        return self._all("board_queue_counts")

    def queue_waits(self) -> list[Row]:
        """Per queue, the median and p95 wait (due to started) of the jobs that ended in the last hour."""
        return self._all("board_queue_waits")

    def job_page(
        self, where: JobFilter, *, before: str | None, limit: int = PAGE_SIZE, offset: int = 0
    ) -> list[Row]:
        """Up to ``limit`` jobs matching ``where``, newest first, after the job id ``before``.

        Args:
            offset: Matching jobs to skip first (page numbers; keep it small, it is scanned).
        """
        params = {**_filter_params(where), "before": before, "limit": limit, "offset": offset}
        return self._all("board_job_page", params)

    def job_count(self, where: JobFilter, *, cap: int) -> int:
        """How many jobs match ``where``, counted up to ``cap`` (a bounded scan)."""
        row = self._one("board_job_count", {**_filter_params(where), "cap": cap})
        assert row is not None  # count(*) always answers
        return int(row["count"])

    def job(self, job_id: str) -> Row | None:
        return self._one("board_job", {"id": job_id})

    def job_tasks(self, job_id: str) -> list[Row]:
        return self._all("board_job_tasks", {"job_id": job_id})

    def activity(self, since: datetime, until: datetime, step_seconds: int) -> list[Row]:
        """Jobs finished from ``since`` to ``until``, per step from ``since`` (board-overview's chart).

        Returns:
            A row per step that had any (``at``, ``completed``, ``failed``, ``seconds``:
            p50, p95, p99), and the span's total (``at`` None).
        """
        return self._all("board_activity", {"since": since, "until": until, "step": step_seconds})

    def job_attempts(self, job_id: str) -> list[Row]:
        return self._all("board_job_attempts", {"job_id": job_id})

    def workers(self) -> list[Row]:
        return self._all("board_workers")

    def cron_last_runs(self) -> dict[str, Row]:
        return {row["schedule"]: row for row in self._all("board_cron_last_runs")}

    # Actions (local provider: the table is the queue).

    def retry(self, job_id: str, payload: Mapping[str, Any] | None = None) -> Row | None:
        """A finished job back to PENDING, maybe with a new payload; ``None`` if it is not finished."""
        text = json.dumps(payload) if payload is not None else None
        return self._one("board_retry", {"id": job_id, "payload": text})

    def cancel(self, job_id: str) -> Row | None:
        return self._one("board_cancel", {"id": job_id})

    def promote(self, job_id: str) -> Row | None:
        return self._one("board_promote", {"id": job_id})

    def delete(self, job_id: str) -> Row | None:
        return self._one("board_delete", {"id": job_id})

    def bulk(self, action: str, where: JobFilter, ids: list[str] | None) -> list[Row]:
        """Retry or delete every job matching ``where`` (and among ``ids``, if given), in batches.

        Returns:
            The jobs changed (``id``, ``queue``).
        """
        query = {"retry": "board_bulk_retry", "delete": "board_bulk_delete"}[action]
        params = {**_filter_params(where), "ids": ids, "limit": BULK_BATCH}
        changed: list[Row] = []
        while True:
            batch = self._all(query, params)
            changed += batch
            if len(batch) < BULK_BATCH:
                return changed

    def clean(self, status: str, days: float) -> int:
        """Delete jobs of ``status`` that finished more than ``days`` ago, in batches; returns how many.

        The history rollups count the closed buckets first, so the jobs keep their place in
        the board's history (a job deleted within minutes of its end is not counted).
        """
        RollupStore(self.database).roll_up()
        deleted = 0
        while True:
            with self.database.connection() as conn:
                cursor = self._q["board_clean"].execute(
                    conn, {"status": status, "days": days, "limit": BULK_BATCH}
                )
                count = cursor.rowcount
            deleted += count
            if count < BULK_BATCH:
                return deleted

    def set_paused(self, queue: str, paused: bool) -> None:
        self._one("board_set_paused", {"queue": queue, "paused": paused})

    def set_history_status(self, job_id: str, status: str, error: str | None = None) -> Row | None:
        return self._one("board_history_set_status", {"id": job_id, "status": status, "error": error})

    # Audit.

    def audit(self, actor: str, action: str, target: str | None, detail: Mapping[str, Any]) -> None:
        self._one(
            "board_audit_add",
            {"actor": actor, "action": action, "target": target, "detail": json.dumps(detail, default=str)},
        )

    def payload_edit(self, job_id: str) -> Row | None:
        """The latest board retry that edited ``job_id``'s payload (``at``, ``actor``,
        ``payload_before``, ``target``: the job retried); ``None`` if none did."""
        return self._one("board_audit_payload_edit", {"id": job_id})

    def audit_page(self, limit: int = 100) -> list[Row]:
        return self._all("board_audit_page", {"limit": limit})

    # Users and sign-in.

    def admin_by_email(self, email: str) -> Row | None:
        return self._one("board_admin_by_email", {"email": email})

    def set_password(self, email: str, name: str | None, password_hash: str) -> Row:
        """Set ``email``'s board password and make them an ADMIN; their sessions end.

        Returns:
            The user (``id``, ``email``, ``roles``) and ``sessions_ended``.
        """
        row = self._one("board_set_password", {"email": email, "name": name, "password_hash": password_hash})
        assert row is not None  # an upsert returns its row
        return row

    # Sessions: the cookie carries a random token, these rows its hash.

    def start_session(
        self, token_hash: bytes, user_id: int, password_hash: str, *, lifetime_seconds: int, keep: int
    ) -> bool:
        """Start a session for a user whose ``password_hash`` was just verified.

        Args:
            token_hash: sha256 of the cookie's token.
            user_id: Who signed in.
            password_hash: The hash the password was verified against; the session is
                bound to it, and none starts if it changed meanwhile.
            lifetime_seconds: The session ends this long after sign-in, whatever happens.
            keep: The most sessions one user has; the oldest go first.

        Returns:
            ``False`` when the user is no longer an enabled ADMIN with that password.
        """
        params = {
            "token_hash": token_hash,
            "user_id": user_id,
            "password_hash": password_hash,
            "lifetime": lifetime_seconds,
            "keep": keep,
        }
        return self._one("board_session_start", params) is not None

    def session_user(self, token_hash: bytes) -> Row | None:
        """The user (``id``, ``email``) of a live session; ``None`` for an ended or unknown one."""
        return self._one("board_session_user", {"token_hash": token_hash})

    def end_session(self, token_hash: bytes) -> None:
        with self.database.connection() as conn:
            self._q["board_session_end"].execute(conn, {"token_hash": token_hash})

    # Sign-in attempts.

    def clear_attempts(self, key: str) -> None:
        with self.database.connection() as conn:
            self._q["board_clear_attempts"].execute(conn, {"key": key})

    def refund_attempt(self, key: str, window_seconds: int) -> None:
        """Take back one attempt of ``key`` in the current window."""
        with self.database.connection() as conn:
            self._q["board_refund_attempt"].execute(conn, {"key": key, "window": window_seconds})

    def count_attempt(self, key: str, window_seconds: int) -> int:
        """Count a sign-in attempt for ``key``; returns the attempts in the current window."""
        row = self._one("board_count_attempt", {"key": key, "window": window_seconds})
        assert row is not None
        return int(row["count"])


def _filter_params(where: JobFilter) -> dict[str, Any]:
    status, due = FILTER_STATES[where.state] if where.state else (None, None)
    return {
        "status": status,
        "due": due,
        "queue": where.queue,
        "actor": where.actor,
        "search": f"%{_escape_like(where.search)}%" if where.search else None,
        "since": where.since,
        "until": where.until,
    }


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
