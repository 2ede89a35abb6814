"""Templates: their recipients, direct links, and the documents made from them (issue 22)."""

from __future__ import annotations

from docjobs.db.domain.queries import Conn, DomainQueries, Row


class TemplateQueries(DomainQueries):
    """Reads and writes templates and their recipients, and creates documents from them."""

    def insert_template(
        self,
        conn: Conn,
        *,
        team_id: int,
        owner_id: int,
        title: str,
        data_id: int,
        signing_order: str,
        subject: str | None,
        message: str | None,
        direct_link_token: str | None,
    ) -> Row:
        """A template; with ``direct_link_token``, its direct link is enabled."""
        row = self._one(
            conn,
            "template_insert",
            {
                "team_id": team_id,
                "owner_id": owner_id,
                "title": title,
                "data_id": data_id,
                "signing_order": signing_order,
                "subject": subject,
                "message": message,
                "direct_link_token": direct_link_token,
            },
        )
        assert row is not None
        return row

    def insert_template_recipient(
        self,
        conn: Conn,
        *,
        template_id: int,
        position: int,
        email: str,
        name: str,
        role: str,
        signing_order: int | None,
    ) -> Row:
        row = self._one(
            conn,
            "template_recipient_insert",
            {
                "template_id": template_id,
                "position": position,
                "email": email,
                "name": name,
                "role": role,
                "signing_order": signing_order,
            },
        )
        assert row is not None
        return row

    def template(self, conn: Conn, template_id: int) -> Row | None:
        """A template with ``owner_email``, ``owner_name`` and ``team_url``."""
        return self._one(conn, "template_get", {"id": template_id})

    def template_by_direct_link(self, conn: Conn, token: str) -> Row | None:
        """The template whose enabled direct link is ``token``."""
        return self._one(conn, "template_get_by_direct_link", {"token": token})

    def template_recipients(self, conn: Conn, template_id: int) -> list[Row]:
        """A template's recipients, by ``position`` (1, 2, ...)."""
        return self._all(conn, "template_recipient_list", {"template_id": template_id})

    def user_may_use_template(self, conn: Conn, template_id: int, user_id: int) -> bool:
        """Whether the user owns the template or belongs to its team."""
        row = self._one(conn, "template_user_may_use", {"template_id": template_id, "user_id": user_id})
        return bool(row and row["allowed"])

    def insert_document_from_template(
        self,
        conn: Conn,
        *,
        template_id: int,
        envelope_id: str,
        owner_id: int,
        source: str,
        request_key: str | None,
    ) -> Row | None:
        """A DRAFT document with the template's PDF, title, subject, message and signing order.

        Returns:
            The document, or ``None`` when ``request_key`` already made one (or the
            template is gone).
        """
        return self._one(
            conn,
            "document_insert_from_template",
            {
                "template_id": template_id,
                "envelope_id": envelope_id,
                "owner_id": owner_id,
                "source": source,
                "request_key": request_key,
            },
        )

    def document_id_by_request_key(self, conn: Conn, request_key: str) -> int | None:
        """The document ``request_key`` made, if any."""
        row = self._one(conn, "document_get_by_request_key", {"request_key": request_key})
        return None if row is None else int(row["id"])
