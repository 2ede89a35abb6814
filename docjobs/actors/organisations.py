"""The organisation and team jobs (reference §1a), and an admin's organisation delete (§1b).

The emails follow :mod:`docjobs.actors.emails`: one memoised send per person, with
the reference's task keys, each person delivered to on their own
(:class:`~docjobs.actors._support.Deliveries`), so a retry sends nobody a second
email and one bad address does not stop the others.

``internal.admin-delete-organisation`` removes an organisation and what it owns in
bounded, resumable batches: see :mod:`docjobs.actors._organisation_delete`.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable
from typing import Any, Literal

import pydantic

import docjobs
from docjobs import queues, runtime
from docjobs.actors import _organisation_delete as deletion
from docjobs.actors import _support as support
from docjobs.actors.payloads import PayloadModel
from docjobs.db.domain.organisations import ADMIN_ROLES, MANAGER_ROLES
from docjobs.mail import organisations as mail
from docjobs.mail.message import Email
from docjobs.tasks import run_task

logger = logging.getLogger("docjobs.jobs")

#: The reference's internal FREE claim: its organisations get no limit alerts.
FREE_CLAIM = "free"


class TeamRef(PayloadModel):
    """The deleted team, captured before it went."""

    name: str
    url: str


class TeamMember(PayloadModel):
    """A member of the deleted team, captured before it went."""

    id: int
    email: pydantic.EmailStr
    name: str | None = None


def _skip(reason: str, **fields: object) -> None:
    logger.info("Nothing to send: %s.", reason, extra={"action": "email_skipped", **fields})


def _load_organisation(organisation_id: str) -> dict[str, Any]:
    organisation = support.read(lambda store, conn: store.organisation(conn, organisation_id))
    if organisation is None:
        raise support.JobAbandoned(f"organisation {organisation_id} does not exist")
    return organisation


def _members(organisation_id: str, roles: tuple[str, ...]) -> list[dict[str, Any]]:
    return support.read(lambda store, conn: store.organisation_members(conn, organisation_id, roles=roles))


#: An announcement: (organisation, member, manager, base URL) -> the email to the manager.
Announcement = Callable[[dict[str, Any], dict[str, Any], dict[str, Any], str], Email]


def _tell_managers(key: str, organisation_id: str, member_user_id: int, compose: Announcement) -> None:
    """Email every manager of the organisation but ``member_user_id`` what ``compose`` says."""
    organisation = _load_organisation(organisation_id)
    member = support.load_user(member_user_id)
    managers = [m for m in _members(organisation_id, MANAGER_ROLES) if m["user_id"] != member_user_id]
    if not managers:
        return _skip("the organisation has no other manager", organisation_id=organisation_id)
    base = support.base_url()
    deliveries = support.Deliveries()
    for manager in managers:
        with deliveries.to(manager["user_id"]):
            email = compose(organisation, member, manager, base)
            support.send_email(f"{key}--{member_user_id}_{manager['user_id']}", email)
    deliveries.finish()
    return None


@docjobs.actor(
    "send.organisation-member-joined.email",
    display_name="Send Organisation Member Joined Email",
    queue_name=queues.EMAIL_QUEUE,
)
def send_organisation_member_joined_email(*, organisation_id: str, member_user_id: int) -> None:
    """Tell every manager (ADMIN, MANAGER) of the organisation, but the new member, who joined."""
    _tell_managers(
        "send-organisation-member-joined-email", organisation_id, member_user_id, mail.member_joined
    )


@docjobs.actor(
    "send.organisation-member-left.email",
    display_name="Send Organisation Member Left Email",
    queue_name=queues.EMAIL_QUEUE,
)
def send_organisation_member_left_email(*, organisation_id: str, member_user_id: int) -> None:
    """Tell every manager (ADMIN, MANAGER) of the organisation, but the leaver, who left."""
    _tell_managers("send-organisation-member-left-email", organisation_id, member_user_id, mail.member_left)


@docjobs.actor(
    "send.team-deleted.email", display_name="Send Team Deleted Email", queue_name=queues.EMAIL_QUEUE
)
def send_team_deleted_email(*, organisation_id: str, team: TeamRef, members: list[TeamMember]) -> None:
    """Tell each member of a deleted team (captured before the delete) that it went."""
    deliveries = support.Deliveries()
    for member in members:
        with deliveries.to(member.id):
            email = mail.team_deleted(
                team_name=team.name,
                team_url=team.url,
                member={"email": str(member.email), "name": member.name},
            )
            support.send_email(f"send-team-deleted-email--{team.url}_{member.id}", email)
    deliveries.finish()


@docjobs.actor(
    "send.organisation-limit-alert.email",
    display_name="Send Organisation Limit Alert Email",
    queue_name=queues.EMAIL_QUEUE,
)
def send_organisation_limit_alert_email(
    *,
    organisation_id: str,
    counter: Literal["document", "email", "api"],
    kind: Literal["rateLimit", "quota", "quotaNearing"],
    period: str,
) -> None:
    """Tell the organisation's admins it nears or hit a plan limit, and support, with the numbers.

    The support notice goes to ``NEXT_PUBLIC_SUPPORT_EMAIL``; unset, it is skipped
    (logged): a self-hosted service has no Documenso support desk to tell.
    """
    organisation = _load_organisation(organisation_id)
    if organisation["claim"] == FREE_CLAIM:
        return _skip("the organisation is on the free claim", organisation_id=organisation_id)
    base = support.base_url()
    deliveries = support.Deliveries()
    for admin in _members(organisation_id, ADMIN_ROLES):
        with deliveries.to(admin["user_id"]):
            email = mail.limit_alert(
                organisation, admin, counter=counter, kind=kind, period=period, base_url=base
            )
            support.send_email(f"send-organisation-limit-alert-email-{admin['user_id']}", email)
    support_address = runtime.current().settings.support_email
    if support_address is None:
        _skip("NEXT_PUBLIC_SUPPORT_EMAIL is not set, so support is not told", organisation_id=organisation_id)
    else:
        with deliveries.to("support"):
            notice = mail.limit_alert_to_support(
                organisation, counter=counter, kind=kind, period=period, support_address=support_address
            )
            support.send_email("send-organisation-limit-alert-support-email", notice)
    deliveries.finish()
    return None


@docjobs.actor("internal.admin-delete-organisation", display_name="Admin Delete Organisation")
def admin_delete_organisation(
    *, organisation_id: str, send_email_to_owner: bool, requested_by_user_id: int
) -> None:
    """Delete an organisation and all it owns in bounded batches, then tell its owner if asked.

    A missing organisation is a no-op. Documents out for signing are detached, not
    deleted (see the module's docstring).
    """
    # Memoised: a run after the delete still knows whom to email.
    organisation = run_task("get-organisation", lambda: _snapshot(organisation_id))
    if organisation is None:
        logger.info(
            "Organisation %s does not exist; nothing to delete.",
            organisation_id,
            extra={"action": "organisation_missing", "organisation_id": organisation_id},
        )
        return None
    for name, step in deletion.STEPS:
        # One memoised task per round: a rerun skips the finished rounds (and steps).
        for number in itertools.count(1):
            done = run_task(
                f"delete-organisation-{name}-{number}",
                functools.partial(deletion.round_of, step, organisation_id),
            )
            if not done["more"]:
                break
    run_task("delete-organisation", lambda: deletion.delete_row(organisation_id))
    logger.info(
        "Organisation %s deleted at the request of user %s.",
        organisation_id,
        requested_by_user_id,
        extra={
            "action": "organisation_deleted",
            "organisation_id": organisation_id,
            "requested_by_user_id": requested_by_user_id,
        },
    )
    if send_email_to_owner:
        support.send_email(
            "send-organisation-deleted-email", mail.organisation_deleted(organisation, support.base_url())
        )
    return None


def _snapshot(organisation_id: str) -> dict[str, Any] | None:
    """What the owner's email needs, JSON-native (a task's result)."""
    found = support.read(lambda store, conn: store.organisation(conn, organisation_id))
    if found is None:
        return None
    return {key: found[key] for key in ("id", "name", "url", "owner_email", "owner_name")}
