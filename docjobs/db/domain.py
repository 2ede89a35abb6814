"""The domain store: the only code that runs the domain's queries (``domain.sql``).

Every method takes the connection to run on, so a flow can do several steps in one
transaction (``with database.transaction() as conn``) and a job can run one step
on a pooled connection.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from docjobs.db import sql

Row = dict[str, Any]
Conn = psycopg.Connection[Any]

#: Rows one cleanup statement deletes, so each transaction stays short.
CLEANUP_BATCH = 10_000


class DomainStore:
    """Reads and writes users, documents, recipients, fields, audit logs and webhooks."""

    def __init__(self) -> None:
        self._q = sql.domain_queries()

    def _one(self, conn: Conn, query: str, params: dict[str, Any] | None = None) -> Row | None:
        row: Row | None = self._q[query].execute(conn, params).fetchone()
        return row

    def _all(self, conn: Conn, query: str, params: dict[str, Any] | None = None) -> list[Row]:
        rows: list[Row] = self._q[query].execute(conn, params).fetchall()
        return rows

    def _run(self, conn: Conn, query: str, params: dict[str, Any] | None = None) -> int:
        return self._q[query].execute(conn, params).rowcount

    # Users.

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

    # Documents.

    def insert_document_data(self, conn: Conn, *, name: str, data: bytes) -> int:
        row = self._one(conn, "document_data_insert", {"name": name, "data": data})
        assert row is not None
        return int(row["id"])

    def document_data(self, conn: Conn, data_id: int) -> Row | None:
        return self._one(conn, "document_data_get", {"id": data_id})

    def insert_document(
        self,
        conn: Conn,
        *,
        envelope_id: str,
        owner_id: int,
        title: str,
        data_id: int,
        signing_order: str,
        subject: str | None,
        message: str | None,
        reminder_settings: dict[str, Any] | None,
    ) -> Row:
        row = self._one(
            conn,
            "document_insert",
            {
                "envelope_id": envelope_id,
                "owner_id": owner_id,
                "title": title,
                "data_id": data_id,
                "signing_order": signing_order,
                "subject": subject,
                "message": message,
                "reminder_settings": None if reminder_settings is None else json.dumps(reminder_settings),
            },
        )
        assert row is not None
        return row

    def document(self, conn: Conn, document_id: int) -> Row | None:
        """A document with ``owner_email``, ``owner_name`` and ``owner_disabled``."""
        return self._one(conn, "document_get", {"id": document_id})

    def document_by_envelope(self, conn: Conn, envelope_id: str) -> Row | None:
        return self._one(conn, "document_get_by_envelope", {"envelope_id": envelope_id})

    def lock_document(self, conn: Conn, document_id: int) -> Row | None:
        """Lock a document's row until the transaction ends; its id and status."""
        return self._one(conn, "document_lock", {"id": document_id})

    def set_document_status(self, conn: Conn, document_id: int, status: str) -> Row | None:
        return self._one(conn, "document_set_status", {"id": document_id, "status": status})

    def seal_document(
        self, conn: Conn, document_id: int, *, status: str, data_id: int, qr_token: str
    ) -> Row | None:
        return self._one(
            conn,
            "document_seal",
            {"id": document_id, "status": status, "data_id": data_id, "qr_token": qr_token},
        )

    def mark_document_deleted(self, conn: Conn, document_id: int) -> Row | None:
        return self._one(conn, "document_mark_deleted", {"id": document_id})

    def unsealed_documents(self, conn: Conn, *, limit: int, now: datetime | None = None) -> list[int]:
        return [
            int(row["id"])
            for row in self._all(conn, "document_select_unsealed", {"limit": limit, "now": now})
        ]

    # Recipients.

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

    # Fields.

    def insert_field(
        self,
        conn: Conn,
        *,
        document_id: int,
        recipient_id: int,
        type: str,  # noqa: A002 - the column's name
        page: int,
        position_x: float,
        position_y: float,
        width: float,
        height: float,
        required: bool,
        field_meta: dict[str, Any] | None,
    ) -> Row:
        row = self._one(
            conn,
            "field_insert",
            {
                "document_id": document_id,
                "recipient_id": recipient_id,
                "type": type,
                "page": page,
                "position_x": position_x,
                "position_y": position_y,
                "width": width,
                "height": height,
                "required": required,
                "field_meta": None if field_meta is None else json.dumps(field_meta),
            },
        )
        assert row is not None
        return row

    def fields(self, conn: Conn, document_id: int) -> list[Row]:
        return self._all(conn, "field_list", {"document_id": document_id})

    def fill_field(
        self,
        conn: Conn,
        field_id: int,
        *,
        recipient_id: int,
        custom_text: str | None,
        signature_image: bytes | None,
        typed_signature: str | None,
    ) -> Row | None:
        return self._one(
            conn,
            "field_fill",
            {
                "id": field_id,
                "recipient_id": recipient_id,
                "custom_text": custom_text,
                "signature_image": signature_image,
                "typed_signature": typed_signature,
            },
        )

    def unfilled_required_fields(self, conn: Conn, document_id: int) -> int:
        row = self._one(conn, "field_count_unfilled_required", {"document_id": document_id})
        return int(row["unfilled"]) if row else 0

    # Audit log.

    def add_audit_log(
        self,
        conn: Conn,
        *,
        document_id: int,
        type: str,  # noqa: A002 - the column's name
        data: dict[str, Any],
        user_id: int | None = None,
        email: str | None = None,
        name: str | None = None,
        ip_address: str | None = None,
        user_agent: str | None = None,
    ) -> Row:
        row = self._one(
            conn,
            "audit_log_insert",
            {
                "document_id": document_id,
                "type": type,
                "data": json.dumps(data),
                "user_id": user_id,
                "email": email,
                "name": name,
                "ip_address": ip_address,
                "user_agent": user_agent,
            },
        )
        assert row is not None
        return row

    def audit_logs(self, conn: Conn, document_id: int) -> list[Row]:
        return self._all(conn, "audit_log_list", {"document_id": document_id})

    # Webhooks.

    def insert_webhook(
        self,
        conn: Conn,
        *,
        webhook_id: str,
        user_id: int,
        url: str,
        events: Sequence[str],
        secret: str | None,
        enabled: bool = True,
    ) -> Row:
        row = self._one(
            conn,
            "webhook_insert",
            {
                "id": webhook_id,
                "user_id": user_id,
                "webhook_url": url,
                "event_triggers": list(events),
                "secret": secret,
                "enabled": enabled,
            },
        )
        assert row is not None
        return row

    def webhook(self, conn: Conn, webhook_id: str) -> Row | None:
        return self._one(conn, "webhook_get", {"id": webhook_id})

    def webhooks_for_event(self, conn: Conn, *, user_id: int, event: str) -> list[Row]:
        return self._all(conn, "webhook_list_for_event", {"user_id": user_id, "event": event})

    def set_webhook_enabled(self, conn: Conn, webhook_id: str, enabled: bool) -> None:
        self._run(conn, "webhook_set_enabled", {"id": webhook_id, "enabled": enabled})

    def delete_webhook(self, conn: Conn, webhook_id: str) -> None:
        self._run(conn, "webhook_delete", {"id": webhook_id})

    def add_webhook_call(
        self,
        conn: Conn,
        *,
        webhook_id: str,
        job_id: str | None,
        status: str,
        url: str,
        event: str,
        request_body: Any,
        response_code: int,
        response_headers: dict[str, str] | None,
        response_body: Any,
    ) -> Row:
        row = self._one(
            conn,
            "webhook_call_insert",
            {
                "webhook_id": webhook_id,
                "job_id": job_id,
                "status": status,
                "url": url,
                "event": event,
                "request_body": json.dumps(request_body),
                "response_code": response_code,
                "response_headers": None if response_headers is None else json.dumps(response_headers),
                "response_body": None if response_body is None else json.dumps(response_body),
            },
        )
        assert row is not None
        return row

    def webhook_calls(self, conn: Conn, webhook_id: str) -> list[Row]:
        return self._all(conn, "webhook_call_list", {"webhook_id": webhook_id})

    # Cleanup, tokens.

    def delete_old_webhook_calls(self, conn: Conn, *, days: float, now: datetime | None = None) -> int:
        """Delete one batch of old webhook calls; returns how many went."""
        return self._run(conn, "webhook_call_delete_old", {"days": days, "now": now, "limit": CLEANUP_BATCH})

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
