"""What the organisation and team emails say (reference §1a; the admin's delete, §1b).

Same shape as :mod:`docjobs.mail.emails`: rows in, an :class:`~docjobs.mail.message.Email`
out. Links point at the organisation's pages under ``NEXT_PUBLIC_WEBAPP_URL``.
"""

from __future__ import annotations

from docjobs.mail.emails import Row, display
from docjobs.mail.message import Email, Link

#: The limit-alert subjects by kind: a limit nearly reached, or one already hit.
NEARING_SUBJECT = "Approaching Your Plan Limits"
REVIEW_SUBJECT = "Organisation Review Required"
#: What each counter of a limit alert counts.
COUNTER_NOUNS = {"document": "documents", "email": "emails", "api": "API requests"}


def _members_link(organisation: Row, base_url: str) -> Link:
    return Link("View members", f"{base_url}/o/{organisation['url']}/settings/members")


def member_joined(organisation: Row, member: Row, manager: Row, base_url: str) -> Email:
    """Tells a manager of the organisation that ``member`` joined it."""
    who = display(member)
    return Email(
        to_address=manager["email"],
        to_name=manager["name"] or "",
        subject="A new member has joined your organisation",
        heading=f'{who} joined "{organisation["name"]}"',
        paragraphs=(f'{who} ({member["email"]}) is now a member of "{organisation["name"]}".',),
        action=_members_link(organisation, base_url),
    )


def member_left(organisation: Row, member: Row, manager: Row, base_url: str) -> Email:
    """Tells a manager of the organisation that ``member`` left it."""
    who = display(member)
    return Email(
        to_address=manager["email"],
        to_name=manager["name"] or "",
        subject="A member has left your organisation",
        heading=f'{who} left "{organisation["name"]}"',
        paragraphs=(f'{who} ({member["email"]}) is no longer a member of "{organisation["name"]}".',),
        action=_members_link(organisation, base_url),
    )


def team_deleted(*, team_name: str, team_url: str, member: Row) -> Email:
    """Tells a member of a team that the team was deleted."""
    return Email(
        to_address=member["email"],
        to_name=member["name"] or "",
        subject=f'Team "{team_name}" has been deleted on Documenso',
        heading=f'Team "{team_name}" has been deleted',
        paragraphs=(
            f'The team "{team_name}" ({team_url}) you were a member of has been deleted, '
            "with its documents and templates.",
        ),
    )


def limit_alert(
    organisation: Row, admin: Row, *, counter: str, kind: str, period: str, base_url: str
) -> Email:
    """Tells an admin of the organisation that it nears or reached a limit of its plan."""
    noun = COUNTER_NOUNS[counter]
    if kind == "quotaNearing":
        subject, what = NEARING_SUBJECT, f"is close to its monthly quota of {noun}"
    elif kind == "quota":
        subject, what = REVIEW_SUBJECT, f"has reached its monthly quota of {noun}"
    else:
        subject, what = REVIEW_SUBJECT, f"is sending {noun} faster than its plan allows"
    return Email(
        to_address=admin["email"],
        to_name=admin["name"] or "",
        subject=subject,
        heading=subject,
        paragraphs=(
            f'"{organisation["name"]}" {what} ({period}).',
            "Review your plan to keep working without interruption.",
        ),
        action=Link("Review plan", f"{base_url}/o/{organisation['url']}/settings/billing"),
    )


def limit_alert_to_support(
    organisation: Row, *, counter: str, kind: str, period: str, support_address: str
) -> Email:
    """The plain-text notice to support, with the organisation's plan numbers."""
    quotas = {
        "document": organisation["document_quota"],
        "email": organisation["email_quota"],
        "api": organisation["api_quota"],
    }
    lines = [f"{name} quota: {'unlimited' if value is None else value}" for name, value in quotas.items()]
    return Email(
        to_address=support_address,
        to_name="",
        subject=f"[Limits] {organisation['name']} ({organisation['id']}): {counter} {kind} {period}",
        heading=f"Organisation limit alert: {counter} {kind}",
        paragraphs=(
            f"Organisation: {organisation['name']} ({organisation['id']}, /o/{organisation['url']})",
            f"Claim: {organisation['claim']}; counter: {counter}; kind: {kind}; period: {period}",
            "; ".join(lines),
            f"Members: {organisation['member_count']} of {organisation['member_seats']} paid seats "
            "(0: seats not counted)",
        ),
        text_only=True,
    )


def organisation_deleted(organisation: Row, base_url: str) -> Email:
    """Tells the owner that an administrator deleted their organisation."""
    return Email(
        to_address=organisation["owner_email"],
        to_name=organisation["owner_name"] or "",
        subject="Your organisation has been deleted",
        heading=f'"{organisation["name"]}" has been deleted',
        paragraphs=(
            f'An administrator deleted your organisation "{organisation["name"]}" with its teams, '
            "templates and documents. Documents that were still out for signing stay with their owners.",
        ),
        action=Link("Open Documenso", f"{base_url}/"),
    )
