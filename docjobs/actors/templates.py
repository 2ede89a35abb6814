"""The template jobs (issue 22): a bulk send from a CSV, and the direct-template email.

``internal.bulk-send-template`` makes one document per CSV row, each in a short
transaction of its own (``create-document-<row>``), sends it if asked
(``send-document-<row>``), then emails the user a summary once
(``send-completion-email``). Every step is memoised and each document carries a
``request_key`` naming the job and row, so a run killed anywhere and run again
ends with one document per good row, its invitations sent once, and one summary.
A row that cannot make a document (a bad address, a missing column, a name too
long) is recorded with its reason, and the other rows go on.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Annotated, Any

import pydantic
from dramatiq.middleware import CurrentMessage
from pydantic_core import PydanticCustomError

import docjobs
from docjobs import queues
from docjobs.actors import _support as support
from docjobs.actors.payloads import RequestMetadata
from docjobs.domain import bulk_send
from docjobs.domain.specs import FlowError, Metadata
from docjobs.domain.templates import TemplateFlows
from docjobs.mail import template_emails
from docjobs.tasks import run_task

#: Rows one memoised step makes documents for. Inngest allows 1,000 steps a run: a step
#: per row (or two, with the send) would stop a 1,000-row send short there.
ROWS_PER_STEP = 25

logger = logging.getLogger("docjobs.jobs")


def _bounded_csv(content: str) -> str:
    try:
        bulk_send.check_content(content)
    except bulk_send.CsvError as exc:
        raise PydanticCustomError("bulk_csv", str(exc)) from None
    return content


#: A bulk send's CSV, refused at send when no row of it could be used (bulk_send.check_content).
BulkCsv = Annotated[
    str,
    pydantic.AfterValidator(_bounded_csv),
    pydantic.Field(
        description=(
            f"A header naming recipient_<n>_email and recipient_<n>_name columns, then up to "
            f"{bulk_send.MAX_ROWS:,} rows, one document each; at most {bulk_send.MAX_CSV_BYTES:,} bytes."
        ),
        examples=["recipient_1_email,recipient_1_name\nann@example.com,Ann\n"],
    ),
]


@docjobs.actor(
    "send.document.created.from.direct.template.email",
    display_name="Send Document Created From Direct Template Email",
    queue_name=queues.EMAIL_QUEUE,
)
def send_document_created_from_direct_template_email(*, envelope_id: str, recipient_id: int) -> None:
    """Tell a template's owner that a signer made a document with its direct link."""
    document = support.load_document_by_envelope(envelope_id)
    recipient = support.load_recipient(recipient_id, document)
    template_id = document["template_id"]
    template = (
        None if template_id is None else support.read(lambda store, conn: store.template(conn, template_id))
    )
    if template is None:
        raise support.JobAbandoned(f"document {envelope_id} was not made from a template")
    email = template_emails.document_created_from_direct_template(
        document, recipient, template["title"], support.base_url(), template["team_url"]
    )
    support.send_email("send-document-created-from-direct-template-email", email, document_id=document["id"])


@docjobs.actor("internal.bulk-send-template", display_name="Bulk Send Template")
def bulk_send_template(
    *,
    user_id: int,
    team_id: int,
    template_id: int,
    csv_content: BulkCsv,
    send_immediately: bool,
    request_metadata: RequestMetadata | None = None,
) -> None:
    """One document per CSV row from a template, sent if asked; then a summary to the user."""
    user = support.load_user(user_id)
    template = support.read(lambda store, conn: store.template(conn, template_id))
    if template is None or template["team_id"] != team_id:
        raise support.JobAbandoned(f"template {template_id} is not one of team {team_id}'s")
    if not support.read(lambda store, conn: store.user_may_use_template(conn, template_id, user_id)):
        raise support.JobAbandoned(f"user {user_id} may not use template {template_id}")
    positions = support.read(lambda store, conn: store.template_recipients(conn, template_id))
    sheet = bulk_send.check_content(csv_content)
    message = CurrentMessage.get_current_message()
    assert message is not None  # run_task needs one too
    flows = TemplateFlows(store=support.domain())
    metadata = _metadata(request_metadata)
    created = 0
    failures: list[tuple[int, str]] = []
    for first in range(0, len(sheet.rows), ROWS_PER_STEP):
        chunk = sheet.rows[first : first + ROWS_PER_STEP]
        rows = functools.partial(
            _make_documents, flows, chunk, positions, send=send_immediately,
            template_id=template_id, owner_id=user_id, job_id=message.message_id, metadata=metadata,
        )  # fmt: skip
        outcomes: list[dict[str, Any]] = run_task(f"rows-{chunk[0].ordinal}-{chunk[-1].ordinal}", rows)
        for row, outcome in zip(chunk, outcomes, strict=True):
            if "error" in outcome:
                failures.append((row.number, str(outcome["error"])))
            else:
                created += 1
    logger.info(
        "Bulk send of template %s: %s documents, %s rows failed.",
        template_id,
        created,
        len(failures),
        extra={"action": "bulk_send_done", "template_id": template_id, "failed_rows": len(failures)},
    )
    summary = template_emails.bulk_send_complete(
        user, template["title"], created=created, failures=failures, sent=send_immediately,
        base_url=support.base_url(),
    )  # fmt: skip
    support.send_email("send-completion-email", summary)


def _create_document(
    flows: TemplateFlows,
    row: bulk_send.Row,
    positions: list[dict[str, Any]],
    *,
    template_id: int,
    owner_id: int,
    job_id: str,
    metadata: Metadata,
) -> dict[str, Any]:
    """Row ``row``'s document (``{"documentId"}``), or why it has none (``{"error"}``)."""
    try:
        recipients = bulk_send.row_recipients(row, positions)
        document = flows.create_document_from_template(
            template_id,
            owner_id=owner_id,
            recipients=recipients,
            request_key=f"bulk-send:{job_id}:{row.ordinal}",
            metadata=metadata,
        )
    except (bulk_send.RowError, FlowError) as exc:
        # The row's values stay out of the log: they are people's names and addresses.
        logger.info(
            "Bulk send row %s made no document.", row.number, extra={"action": "bulk_send_row_failed"}
        )
        return {"error": str(exc)}
    return {"documentId": int(document["id"])}


def _make_documents(
    flows: TemplateFlows,
    rows: Sequence[bulk_send.Row],
    positions: list[dict[str, Any]],
    *,
    send: bool,
    template_id: int,
    owner_id: int,
    job_id: str,
    metadata: Metadata,
) -> list[dict[str, Any]]:
    """Each row's document, made (and sent, if asked) in the row's own transactions.

    Run again after a crash, a row finds the document it made (its ``request_key``) and
    a document already sent is not sent again, so the step's rows need no memo each.
    """
    outcomes = []
    for row in rows:
        outcome = _create_document(
            flows,
            row,
            positions,
            template_id=template_id,
            owner_id=owner_id,
            job_id=job_id,
            metadata=metadata,
        )
        if send and "documentId" in outcome:
            flows.send_document_once(int(outcome["documentId"]), metadata)
        outcomes.append(outcome)
    return outcomes


def _metadata(metadata: RequestMetadata | None) -> Metadata:
    if metadata is None:
        return Metadata()
    return Metadata(
        ip_address=str(metadata.ip_address) if metadata.ip_address else None, user_agent=metadata.user_agent
    )
