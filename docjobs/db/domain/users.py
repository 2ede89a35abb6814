"""Users, their verification tokens, and the sign-in rate limits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from docjobs.db.domain.queries import CLEANUP_BATCH, Conn, DomainQueries, Row


class UserQueries(DomainQueries):
    """Reads and writes users, verification tokens and rate-limit buckets."""

    def insert_user(
        self, conn: Conn, *, email: str, name: str | None, roles: Sequence[str], verified: bool
    ) -> Row:
        row = self._one(
            conn,
            "user_insert",
            {
                "email": email,
                "name": name,
                "roles": list(roles),
                "email_verified": _now() if verified else None,
            },
        )
        assert row is not None
        return row

    def user(self, conn: Conn, user_id: int) -> Row | None:
        return self._one(conn, "user_get", {"id": user_id})

    def user_by_email(self, conn: Conn, email: str) -> Row | None:
        return self._one(conn, "user_get_by_email", {"email": email})

    def verify_user_email(self, conn: Conn, user_id: int) -> Row | None:
        return self._one(conn, "user_verify_email", {"id": user_id})

    def delete_old_rate_limits(self, conn: Conn, *, now: datetime | None = None) -> int:
        """Delete one batch of rate-limit buckets older than a day; returns how many went."""
        return self._run(conn, "rate_limit_delete_old", {"now": now, "limit": CLEANUP_BATCH})

    def insert_verification_token(
        self, conn: Conn, *, identifier: str, token: str, user_id: int, seconds: int
    ) -> Row:
        row = self._one(
            conn,
            "verification_token_insert",
            {"identifier": identifier, "token": token, "user_id": user_id, "seconds": seconds},
        )
        assert row is not None
        return row

    def verification_tokens(self, conn: Conn, *, user_id: int, identifier: str) -> list[Row]:
        return self._all(conn, "verification_token_list", {"user_id": user_id, "identifier": identifier})


def _now() -> datetime:
    return datetime.now(UTC)
