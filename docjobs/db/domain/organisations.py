"""Organisations, their members and teams, and the bounded batches that delete an organisation."""

from __future__ import annotations

from collections.abc import Sequence

from docjobs.db.domain.queries import Conn, DomainQueries, Row

#: Roles that hold MANAGE_ORGANISATION: they hear of members joining and leaving.
MANAGER_ROLES = ("ADMIN", "MANAGER")
#: Roles that hold the plan: they get the limit alerts.
ADMIN_ROLES = ("ADMIN",)


#: What hangs under a document, in the order it is deleted (fields before their recipients).
DOCUMENT_CHILDREN = ("audit_logs", "fields", "recipients")


class OrganisationQueries(DomainQueries):
    """Reads and writes organisations, their members, teams and team members."""

    def insert_organisation(
        self,
        conn: Conn,
        *,
        organisation_id: str,
        name: str,
        url: str,
        owner_user_id: int,
        claim: str = "free",
        member_seats: int = 0,
        document_quota: int | None = None,
        email_quota: int | None = None,
        api_quota: int | None = None,
    ) -> Row:
        row = self._one(
            conn,
            "organisation_insert",
            {
                "id": organisation_id,
                "name": name,
                "url": url,
                "owner_user_id": owner_user_id,
                "claim": claim,
                "member_seats": member_seats,
                "document_quota": document_quota,
                "email_quota": email_quota,
                "api_quota": api_quota,
            },
        )
        assert row is not None
        return row

    def organisation(self, conn: Conn, organisation_id: str) -> Row | None:
        """An organisation with ``owner_email``, ``owner_name`` and ``member_count``."""
        return self._one(conn, "organisation_get", {"id": organisation_id})

    def set_organisation_member(self, conn: Conn, *, organisation_id: str, user_id: int, role: str) -> Row:
        """Add a member (or change their role)."""
        row = self._one(
            conn,
            "organisation_member_upsert",
            {"organisation_id": organisation_id, "user_id": user_id, "role": role},
        )
        assert row is not None
        return row

    def remove_organisation_member(self, conn: Conn, *, organisation_id: str, user_id: int) -> Row | None:
        """Remove a member from the organisation and its teams; None if they were not one."""
        return self._one(
            conn, "organisation_member_delete", {"organisation_id": organisation_id, "user_id": user_id}
        )

    def organisation_members(self, conn: Conn, organisation_id: str, *, roles: Sequence[str]) -> list[Row]:
        """Members with one of ``roles``: ``user_id``, ``role``, ``email``, ``name``."""
        return self._all(
            conn, "organisation_member_list", {"organisation_id": organisation_id, "roles": list(roles)}
        )

    def insert_team(self, conn: Conn, *, organisation_id: str, name: str, url: str) -> Row:
        row = self._one(conn, "team_insert", {"organisation_id": organisation_id, "name": name, "url": url})
        assert row is not None
        return row

    def team(self, conn: Conn, team_id: int) -> Row | None:
        return self._one(conn, "team_get", {"id": team_id})

    def add_team_member(self, conn: Conn, *, team_id: int, user_id: int) -> None:
        self._run(conn, "team_member_insert", {"team_id": team_id, "user_id": user_id})

    def team_members(self, conn: Conn, team_id: int) -> list[Row]:
        """A team's members: ``id``, ``email``, ``name`` of each user."""
        return self._all(conn, "team_member_list", {"team_id": team_id})

    def team_owned_count(self, conn: Conn, team_id: int) -> int:
        """How many documents and templates the team holds."""
        row = self._one(conn, "team_count_owned", {"id": team_id})
        assert row is not None
        return int(row["owned"])

    def delete_team(self, conn: Conn, team_id: int) -> Row | None:
        return self._one(conn, "team_delete", {"id": team_id})

    def set_document_team(self, conn: Conn, document_id: int, team_id: int | None) -> Row | None:
        return self._one(conn, "document_set_team", {"id": document_id, "team_id": team_id})

    # The admin's delete (docjobs.actors.organisations): each call is one bounded batch.

    def detach_pending_documents(self, conn: Conn, organisation_id: str, *, limit: int) -> int:
        """Take up to ``limit`` documents out for signing out of the organisation's teams."""
        return self._run(
            conn,
            "organisation_detach_pending_documents",
            {"organisation_id": organisation_id, "limit": limit},
        )

    def organisation_document_chunk(self, conn: Conn, organisation_id: str, *, limit: int) -> list[int]:
        """Ids of up to ``limit`` of the organisation's documents to delete."""
        params = {"organisation_id": organisation_id, "limit": limit}
        return [row["id"] for row in self._all(conn, "organisation_document_chunk", params)]

    def delete_document_children(self, conn: Conn, kind: str, document_ids: list[int], *, limit: int) -> int:
        """Delete up to ``limit`` rows of one of :data:`DOCUMENT_CHILDREN` under the documents."""
        if kind not in DOCUMENT_CHILDREN:
            raise ValueError(f"not a kind of row under a document: {kind!r}")
        return self._run(conn, f"document_delete_{kind}", {"ids": document_ids, "limit": limit})

    def delete_emptied_documents(self, conn: Conn, document_ids: list[int]) -> tuple[int, int]:
        """Delete the documents with nothing left under them, then their PDFs nothing else uses.

        Returns:
            How many documents, and how many PDFs, went.
        """
        return self._delete_with_pdfs(conn, "document_delete_emptied", document_ids)

    def organisation_template_chunk(self, conn: Conn, organisation_id: str, *, limit: int) -> list[int]:
        """Ids of up to ``limit`` of the organisation's templates."""
        params = {"organisation_id": organisation_id, "limit": limit}
        return [row["id"] for row in self._all(conn, "organisation_template_chunk", params)]

    def delete_template_recipients(self, conn: Conn, template_ids: list[int], *, limit: int) -> int:
        return self._run(conn, "template_delete_recipients", {"ids": template_ids, "limit": limit})

    def delete_emptied_templates(self, conn: Conn, template_ids: list[int]) -> tuple[int, int]:
        """Delete the templates with no recipients left, then their PDFs nothing else uses."""
        return self._delete_with_pdfs(conn, "template_delete_emptied", template_ids)

    def delete_organisation_team_members(self, conn: Conn, organisation_id: str, *, limit: int) -> int:
        params = {"organisation_id": organisation_id, "limit": limit}
        return self._run(conn, "organisation_delete_team_members", params)

    def delete_organisation_teams(self, conn: Conn, organisation_id: str, *, limit: int) -> int:
        """Delete up to ``limit`` of the organisation's teams that hold nothing any more."""
        return self._run(
            conn, "organisation_delete_teams", {"organisation_id": organisation_id, "limit": limit}
        )

    def delete_organisation_members(self, conn: Conn, organisation_id: str, *, limit: int) -> int:
        params = {"organisation_id": organisation_id, "limit": limit}
        return self._run(conn, "organisation_delete_members", params)

    def _delete_with_pdfs(self, conn: Conn, query: str, ids: list[int]) -> tuple[int, int]:
        owners = self._all(conn, query, {"ids": ids})
        pdf_ids = sorted({row[key] for row in owners for key in ("original_data_id", "current_data_id")})
        pdfs = self._run(conn, "document_data_delete_unused", {"ids": pdf_ids}) if pdf_ids else 0
        return len(owners), pdfs

    def delete_organisation_row(self, conn: Conn, organisation_id: str) -> int:
        """Delete the organisation once nothing is left under it; 1 if it went."""
        return self._run(conn, "organisation_delete", {"organisation_id": organisation_id})
