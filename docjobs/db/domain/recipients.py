"""A document's recipients: invited, opened, signed or rejected, reminded, expired."""

from __future__ import annotations

from datetime import datetime

from docjobs.db.domain.queries import Conn, DomainQueries, Row


class RecipientQueries(DomainQueries):
    """Reads and writes recipients, and claims the ones due a reminder or an expiry notice."""

    def insert_recipient(
        self,
        conn: Conn,
        *,
        document_id: int,
        email: str,
        name: str,
        role: str,
        token: str,
        signing_order: int | None,
        expires_at: datetime | None,
    ) -> Row:
        row = self._one(
            conn,
            "recipient_insert",
            {
                "document_id": document_id,
                "email": email,
                "name": name,
                "role": role,
                "token": token,
                "signing_order": signing_order,
                "expires_at": expires_at,
            },
        )
        assert row is not None
        return row

    def recipients(self, conn: Conn, document_id: int) -> list[Row]:
        return self._all(conn, "recipient_list", {"document_id": document_id})

    def recipient(self, conn: Conn, recipient_id: int) -> Row | None:
        return self._one(conn, "recipient_get", {"id": recipient_id})

    def recipient_by_token(self, conn: Conn, token: str) -> Row | None:
        return self._one(conn, "recipient_get_by_token", {"token": token})

    def mark_recipient_sent(
        self, conn: Conn, recipient_id: int, *, next_reminder_at: datetime | None
    ) -> Row | None:
        return self._one(
            conn, "recipient_mark_sent", {"id": recipient_id, "next_reminder_at": next_reminder_at}
        )

    def mark_recipient_opened(self, conn: Conn, recipient_id: int) -> Row | None:
        return self._one(conn, "recipient_mark_opened", {"id": recipient_id})

    def sign_recipient(self, conn: Conn, recipient_id: int) -> Row | None:
        """Sign; ``None`` when the recipient already signed or rejected."""
        return self._one(conn, "recipient_sign", {"id": recipient_id})

    def reject_recipient(self, conn: Conn, recipient_id: int, reason: str) -> Row | None:
        """Reject; ``None`` when the recipient already signed or rejected."""
        return self._one(conn, "recipient_reject", {"id": recipient_id, "reason": reason})

    def sign_cc_recipients(self, conn: Conn, document_id: int) -> None:
        self._run(conn, "recipient_sign_cc", {"document_id": document_id})

    def mark_recipient_refused(self, conn: Conn, recipient_id: int) -> None:
        self._run(conn, "recipient_mark_refused", {"id": recipient_id})

    def expired_recipients(self, conn: Conn, *, limit: int, now: datetime | None = None) -> list[int]:
        return [
            int(row["id"])
            for row in self._all(conn, "recipient_select_expired", {"limit": limit, "now": now})
        ]

    def claim_expired_recipient(self, conn: Conn, recipient_id: int) -> Row | None:
        """Claim an expired recipient for notification; ``None`` when it is not (or no longer) due."""
        return self._one(conn, "recipient_claim_expired", {"id": recipient_id})

    def reminder_due_recipients(self, conn: Conn, *, limit: int, now: datetime | None = None) -> list[int]:
        rows = self._all(conn, "recipient_select_reminder_due", {"limit": limit, "now": now})
        return [int(row["id"]) for row in rows]

    def claim_reminder(self, conn: Conn, recipient_id: int) -> Row | None:
        """Claim a due reminder; ``None`` when it is not (or no longer) due."""
        return self._one(conn, "recipient_claim_reminder", {"id": recipient_id})

    def set_next_reminder(self, conn: Conn, recipient_id: int, next_reminder_at: datetime | None) -> None:
        self._run(
            conn, "recipient_set_next_reminder", {"id": recipient_id, "next_reminder_at": next_reminder_at}
        )
