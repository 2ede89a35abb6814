"""Organisations and teams: created, joined, left, deleted, each with the jobs it enqueues."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence

from docjobs import jobs
from docjobs.domain._base import FlowBase
from docjobs.domain.specs import FlowError, Row

#: Characters of a name a URL made from it keeps, before its random suffix.
MAX_SLUG_CHARS = 48

_URL = re.compile(r"[a-z0-9-]+")


def url_from_name(name: str, *, fallback: str) -> str:
    """A URL segment made from ``name``: only ``[a-z0-9-]``, then a random suffix so two names may match.

    Accents are dropped (``é`` becomes ``e``) and every other run of characters becomes one
    ``-``, so markup or spaces in a name never reach a link; ``fallback`` stands in when
    nothing is left.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower())[:MAX_SLUG_CHARS].strip("-")
    return f"{slug or fallback}-{secrets.token_hex(3)}"


def checked_url(url: str) -> str:
    """``url`` if it is made of ``[a-z0-9-]`` only.

    Raises:
        FlowError: It holds any other character.
    """
    if not _URL.fullmatch(url):
        raise FlowError(f"url {url[:60]!r} may hold only lower-case letters, digits and '-'")
    return url


class OrganisationFlows(FlowBase):
    """What an organisation's members and the service's admins do, each step in one transaction."""

    def create_organisation(
        self,
        owner_id: int,
        name: str,
        *,
        url: str | None = None,
        claim: str = "free",
        member_seats: int = 0,
        document_quota: int | None = None,
        email_quota: int | None = None,
        api_quota: int | None = None,
    ) -> Row:
        """An organisation whose owner is its first ADMIN."""
        url = checked_url(url) if url else url_from_name(name, fallback="organisation")
        with self._transaction() as conn:
            organisation = self.store.insert_organisation(
                conn,
                organisation_id=f"org_{secrets.token_hex(8)}",
                name=name,
                url=url,
                owner_user_id=owner_id,
                claim=claim,
                member_seats=member_seats,
                document_quota=document_quota,
                email_quota=email_quota,
                api_quota=api_quota,
            )
            self.store.set_organisation_member(
                conn, organisation_id=organisation["id"], user_id=owner_id, role="ADMIN"
            )
        return organisation

    def join_organisation(self, organisation_id: str, user_id: int, *, role: str = "MEMBER") -> Row:
        """A user accepts an invitation; the organisation's managers are told."""
        with self._transaction() as conn:
            member = self.store.set_organisation_member(
                conn, organisation_id=organisation_id, user_id=user_id, role=role
            )
            jobs.trigger(
                "send.organisation-member-joined.email",
                {"organisationId": organisation_id, "memberUserId": user_id},
                conn=conn,
            )
        return member

    def leave_organisation(self, organisation_id: str, user_id: int) -> None:
        """A member leaves (or is removed); the organisation's managers are told."""
        with self._transaction() as conn:
            if (
                self.store.remove_organisation_member(conn, organisation_id=organisation_id, user_id=user_id)
                is None
            ):
                raise FlowError(f"user {user_id} is not a member of organisation {organisation_id}")
            jobs.trigger(
                "send.organisation-member-left.email",
                {"organisationId": organisation_id, "memberUserId": user_id},
                conn=conn,
            )

    def create_team(
        self, organisation_id: str, name: str, *, url: str | None = None, member_ids: Sequence[int] = ()
    ) -> Row:
        """A team of the organisation; its URL made from its name unless ``url`` is given."""
        url = checked_url(url) if url else url_from_name(name, fallback="team")
        with self._transaction() as conn:
            team = self.store.insert_team(
                conn,
                organisation_id=organisation_id,
                name=name,
                url=url,
            )
            for user_id in member_ids:
                self.store.add_team_member(conn, team_id=team["id"], user_id=user_id)
        return team

    def put_in_team(self, document_id: int, team_id: int) -> Row:
        """Move a document into a team."""
        with self._transaction() as conn:
            document = self.store.set_document_team(conn, document_id, team_id)
        if document is None:
            raise FlowError(f"document {document_id} does not exist")
        return document

    def delete_team(self, team_id: int) -> None:
        """Delete an empty team; each of its members is told (from the list captured here)."""
        with self._transaction() as conn:
            team = self.store.team(conn, team_id)
            if team is None:
                raise FlowError(f"team {team_id} does not exist")
            if self.store.team_owned_count(conn, team_id):
                raise FlowError(f"team {team_id} still holds documents or templates")
            members = self.store.team_members(conn, team_id)
            self.store.delete_team(conn, team_id)
            jobs.trigger(
                "send.team-deleted.email",
                {
                    "organisationId": team["organisation_id"],
                    "team": {"name": team["name"], "url": team["url"]},
                    "members": [
                        {"id": m["id"], "name": m["name"] or "", "email": m["email"]} for m in members
                    ],
                },
                conn=conn,
            )

    def admin_delete_organisation(
        self, organisation_id: str, *, requested_by_user_id: int, send_email_to_owner: bool = True
    ) -> None:
        """An admin asks for an organisation's delete, which runs as a job (in batches)."""
        with self._transaction() as conn:
            jobs.trigger(
                "internal.admin-delete-organisation",
                {
                    "organisationId": organisation_id,
                    "sendEmailToOwner": send_email_to_owner,
                    "requestedByUserId": requested_by_user_id,
                },
                conn=conn,
            )
