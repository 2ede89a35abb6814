"""What the template jobs' emails say (issue 22): the direct-template notice and the bulk send's summary.

As in :mod:`docjobs.mail.emails`: domain rows in, an :class:`~docjobs.mail.message.Email`
out, rendered by the shared templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from docjobs.mail.emails import display
from docjobs.mail.message import Email, Link

Row = dict[str, Any]

#: Failed rows a bulk send's summary lists one by one; it counts the rest.
MAX_LISTED_FAILURES = 100


def document_link(document: Row, base_url: str, team_url: str | None) -> str:
    """The owner's link to a document: under its team, as the reference links it, when it has one."""
    if team_url:
        return f"{base_url}/t/{team_url}/documents/{document['envelope_id']}"
    return f"{base_url}/documents/{document['envelope_id']}"


def document_created_from_direct_template(
    document: Row, recipient: Row, template_title: str, base_url: str, team_url: str | None
) -> Email:
    """Tells a template's owner that a signer used its direct link."""
    who = display(recipient)
    return Email(
        to_address=document["owner_email"],
        to_name=document["owner_name"] or "",
        subject="Document created from direct template",
        heading="A document was created from your direct template",
        paragraphs=(
            f'{who} ({recipient["email"]}) used the direct link of your template "{template_title}" '
            f'and signed "{document["title"]}".',
        ),
        action=Link("View document", document_link(document, base_url, team_url)),
    )


def bulk_send_complete(
    user: Row,
    template_title: str,
    *,
    created: int,
    failures: Sequence[tuple[int, str]],
    sent: bool,
    base_url: str,
) -> Email:
    """The bulk send's summary to the user who started it: counts, then each failed row and why.

    Args:
        created: Documents made (and sent, with ``sent``).
        failures: ``(row number, why)`` of each row that made none, in row order.
    """
    done = "created and sent" if sent else "created"
    paragraphs = [
        f'Your bulk send from the template "{template_title}" is complete.',
        f"{created} document{'' if created == 1 else 's'} {done}; {len(failures)} row"
        f"{'' if len(failures) == 1 else 's'} failed.",
    ]
    if failures:
        paragraphs.append("These rows made no document:")
        paragraphs.extend(f"Row {number}: {why}" for number, why in failures[:MAX_LISTED_FAILURES])
        left = len(failures) - MAX_LISTED_FAILURES
        if left > 0:
            paragraphs.append(f"... and {left} more row{'' if left == 1 else 's'}.")
    return Email(
        to_address=user["email"],
        to_name=user["name"] or "",
        subject=f"Bulk Send Complete: {template_title}",
        heading=f"Bulk Send Complete: {template_title}",
        paragraphs=tuple(paragraphs),
        action=Link("View documents", f"{base_url}/documents"),
    )
