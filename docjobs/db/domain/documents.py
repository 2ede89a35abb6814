"""Documents, their stored PDFs, their fields and their audit logs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from docjobs.db.domain.queries import Conn, DomainQueries, Row


class DocumentQueries(DomainQueries):
    """Reads and writes documents, document data, fields and audit logs."""

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
