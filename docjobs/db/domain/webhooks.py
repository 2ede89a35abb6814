"""Webhooks: the subscriptions, and the calls made to them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from docjobs.db.domain.queries import CLEANUP_BATCH, Conn, DomainQueries, Row


class WebhookQueries(DomainQueries):
    """Reads and writes webhooks and their calls."""

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

    def delete_old_webhook_calls(self, conn: Conn, *, days: float, now: datetime | None = None) -> int:
        """Delete one batch of old webhook calls; returns how many went."""
        return self._run(conn, "webhook_call_delete_old", {"days": days, "now": now, "limit": CLEANUP_BATCH})
