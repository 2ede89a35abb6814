"""Organisations, their members and teams, and the bounded batches that delete an organisation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from docjobs.db.domain.queries import Conn, DomainQueries, Row

#: Roles that hold MANAGE_ORGANISATION: they hear of members joining and leaving.
MANAGER_ROLES = ("ADMIN", "MANAGER")
#: Roles that hold the plan: they get the limit alerts.
ADMIN_ROLES = ("ADMIN",)


@dataclass(frozen=True)
class DeleteStep:
    """One step of deleting an organisation, run in batches until it finds nothing."""

    name: str
    query: str
    #: Rows one selected row accounts for (a document goes with up to two PDFs).
    rows_per_item: int = 1
    with_pdfs: bool = False


#: Deleting an organisation, children before parents, so no cascade deletes more
#: than a batch. Documents still out for signing are detached first, not deleted
#: (see docjobs.actors.organisations).
ORGANISATION_DELETE_STEPS = (
    DeleteStep("detach-pending-documents", "organisation_detach_pending_documents"),
    DeleteStep("audit-logs", "organisation_delete_audit_logs"),
    DeleteStep("fields", "organisation_delete_fields"),
    DeleteStep("recipients", "organisation_delete_recipients"),
    DeleteStep("documents", "organisation_delete_documents", rows_per_item=3, with_pdfs=True),
    DeleteStep("template-recipients", "organisation_delete_template_recipients"),
    DeleteStep("templates", "organisation_delete_templates", rows_per_item=2, with_pdfs=True),
    DeleteStep("team-members", "organisation_delete_team_members"),
    DeleteStep("teams", "organisation_delete_teams"),
    DeleteStep("members", "organisation_delete_members"),
)


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

    def delete_step(self, conn: Conn, step: DeleteStep, organisation_id: str, *, max_rows: int) -> int:
        """Run one batch of ``step``, deleting (or detaching) at most ``max_rows`` rows.

        A step with PDFs deletes its documents or templates, then those of their PDFs
        nothing else uses: run it in a transaction, so both commit together.

        Returns:
            The rows it deleted or detached; 0 once the step has nothing left to do.
        """
        limit = max(1, max_rows // step.rows_per_item)
        params = {"organisation_id": organisation_id, "limit": limit}
        if not step.with_pdfs:
            return self._run(conn, step.query, params)
        owners = self._all(conn, step.query, params)
        pdf_ids = sorted({row[key] for row in owners for key in ("original_data_id", "current_data_id")})
        pdfs = self._run(conn, "document_data_delete_unused", {"ids": pdf_ids}) if pdf_ids else 0
        return len(owners) + pdfs

    def delete_organisation_row(self, conn: Conn, organisation_id: str) -> int:
        """Delete the organisation once nothing is left under it; 1 if it went."""
        return self._run(conn, "organisation_delete", {"organisation_id": organisation_id})
