"""The email jobs of the signing service (reference §1a and §7.1).

Each job sends through :func:`send_email`, memoised per email, and records state
(recipient sent, audit entries) in separate memoised steps, so a retry never sends
again what already went out and never writes an entry twice. A job whose document
or user is gone fails at once; one whose subject no longer qualifies (a recipient
who already signed, a disabled owner) ends quietly.

A job that emails several people delivers to each on their own
(:class:`~docjobs.actors._support.Deliveries`): one person's data never stops
another's email. Someone whose email can never be delivered (an unusable
address, a 5xx refusal) is recorded on their row and in the audit log, and the
job still completes: the failure is a fact about that person's data, which the
service shows its users, not a fault of the job that a retry could fix.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

import pydantic

import docjobs
from docjobs import queues
from docjobs.actors import _support as support
from docjobs.actors.payloads import DeletedDocumentMeta, Person, RequestMetadata
from docjobs.db.domain import Row
from docjobs.domain.completion import completion_audience
from docjobs.domain.reminders import next_reminder_at
from docjobs.mail import emails, headers
from docjobs.mail.message import Attachment
from docjobs.tasks import run_task

logger = logging.getLogger("docjobs.jobs")

CONFIRMATION_TOKEN_SECONDS = 60 * 60
RESET_TOKEN_SECONDS = 24 * 60 * 60
#: randomBytes(18) in the reference: 36 hex characters.
RESET_TOKEN_BYTES = 18
#: Longest attachment name taken from a document title, in characters, before ".pdf".
PDF_NAME_MAX_CHARS = 120


def _skip(reason: str, **fields: object) -> None:
    logger.info("Nothing to send: %s.", reason, extra={"action": "email_skipped", **fields})


@docjobs.actor(
    "send.signing.requested.email", display_name="Send Signing Email", queue_name=queues.EMAIL_QUEUE
)
def send_signing_requested_email(
    *, user_id: int, document_id: int, recipient_id: int, request_metadata: RequestMetadata | None = None
) -> None:
    """Invite one recipient, then mark them sent, schedule their first reminder and audit it."""
    document = support.load_document(document_id)
    recipient = support.load_recipient(recipient_id, document)
    if document["status"] != "PENDING" or document["deleted_at"] is not None:
        return _skip("the document is not pending", document_id=document_id)
    if recipient["signing_status"] != "NOT_SIGNED" or recipient["email_refused_at"] is not None:
        return _skip("the recipient has signed, rejected or cannot receive email", recipient_id=recipient_id)
    if document["owner_disabled"]:
        return _skip("the owner is disabled", document_id=document_id)
    email = emails.signing_request(document, recipient, support.base_url())
    if not support.send_email(
        "send-signing-email", email, recipient_id=recipient_id, document_id=document_id
    ):
        return None

    def update_recipient() -> None:
        now = datetime.now(UTC)
        with support.transaction() as conn:
            store = support.domain()
            reminder = next_reminder_at(document["reminder_settings"], sent_at=now, reminders_sent=0, now=now)
            store.mark_recipient_sent(conn, recipient_id, next_reminder_at=reminder)
            email_type = (
                "SIGNING_REQUEST" if recipient["role"] == "SIGNER" else f"{recipient['role']}_REQUEST"
            )
            support.audit_email_sent(
                conn,
                document_id=document_id,
                email_type=email_type,
                recipient=recipient,
                address=recipient["email"],
                metadata=request_metadata,
            )

    run_task("update-recipient", update_recipient)
    return None


@docjobs.actor(
    "send.recipient.signed.email", display_name="Send Recipient Signed Email", queue_name=queues.EMAIL_QUEUE
)
def send_recipient_signed_email(*, document_id: int, recipient_id: int) -> None:
    """Tell the owner that a recipient signed (unless the owner signed their own document)."""
    document = support.load_document(document_id)
    recipient = support.load_recipient(recipient_id, document)
    if recipient["email"].lower() == document["owner_email"].lower():
        return _skip("the owner signed", recipient_id=recipient_id)
    email = emails.recipient_signed(document, recipient, support.base_url())
    if support.send_email("send-recipient-signed-email", email, document_id=document_id):
        _audit_once(
            "audit-recipient-signed-email",
            document_id,
            "RECIPIENT_SIGNED",
            recipient,
            document["owner_email"],
        )
    return None


@docjobs.actor(
    "send.document.pending.email", display_name="Send Document Pending Email", queue_name=queues.EMAIL_QUEUE
)
def send_document_pending_email(*, envelope_id: str, recipient_id: int) -> None:
    """Tell a recipient who signed that others still have to."""
    document = support.load_document_by_envelope(envelope_id)
    recipient = support.load_recipient(recipient_id, document)
    email = emails.document_pending(document, recipient, support.base_url())
    if support.send_email(
        "send-document-pending-email", email, recipient_id=recipient_id, document_id=document["id"]
    ):
        _audit_once(
            "audit-document-pending-email", document["id"], "DOCUMENT_PENDING", recipient, recipient["email"]
        )


@docjobs.actor(
    "send.document.completed.emails",
    display_name="Send Document Completed Emails",
    queue_name=queues.EMAIL_QUEUE,
)
def send_document_completed_emails(
    *, envelope_id: str, request_metadata: RequestMetadata | None = None
) -> None:
    """ "Signing Complete!" with the sealed PDF, to the owner and to every recipient."""
    document = support.load_document_by_envelope(envelope_id)
    if document["owner_disabled"]:
        return _skip("the owner is disabled", document_id=document["id"])
    recipients, data = support.read(
        lambda store, conn: (
            store.recipients(conn, document["id"]),
            store.document_data(conn, document["current_data_id"]),
        )
    )
    assert data is not None  # a foreign key
    pdf = Attachment(filename=_pdf_name(document["title"]), content=bytes(data["data"]))
    # The seal listed these people on the sealed audit page: the same rule picks them here.
    audience = completion_audience(document, recipients)
    deliveries = support.Deliveries()
    if audience.owner:
        with deliveries.to("owner"):
            email = emails.document_completed(document, None, pdf, support.base_url())
            if support.send_email("send-document-completed-email-owner", email, document_id=document["id"]):
                _audit_once(
                    "audit-completed-email-owner",
                    document["id"],
                    "DOCUMENT_COMPLETED",
                    None,
                    document["owner_email"],
                )
    for recipient in audience.recipients:
        with deliveries.to(recipient["id"]):
            email = emails.document_completed(document, recipient, pdf, support.base_url())
            key = f"send-document-completed-email-{recipient['id']}"
            if support.send_email(key, email, recipient_id=recipient["id"], document_id=document["id"]):
                _audit_once(
                    f"audit-{key}",
                    document["id"],
                    "DOCUMENT_COMPLETED",
                    recipient,
                    recipient["email"],
                    request_metadata,
                )
    deliveries.finish()
    return None


@docjobs.actor(
    "send.signing.rejected.emails", display_name="Send Rejection Emails", queue_name=queues.EMAIL_QUEUE
)
def send_signing_rejected_emails(*, document_id: int, recipient_id: int) -> None:
    """Confirm the rejection to the recipient and tell the owner."""
    document = support.load_document(document_id)
    recipient = support.load_recipient(recipient_id, document)
    if recipient["signing_status"] != "REJECTED":
        return _skip("the recipient has not rejected", recipient_id=recipient_id)
    base = support.base_url()
    deliveries = support.Deliveries()
    with deliveries.to(recipient_id):
        if support.send_email(
            "send-rejection-confirmation-email",
            emails.rejection_confirmed(document, recipient, base),
            recipient_id=recipient_id,
            document_id=document_id,
        ):
            _audit_once(
                "audit-rejection-confirmation",
                document_id,
                "RECIPIENT_REJECTED",
                recipient,
                recipient["email"],
            )
    with deliveries.to("owner"):
        if support.send_email(
            "send-owner-notification-email",
            emails.rejected_to_owner(document, recipient, base),
            document_id=document_id,
        ):
            _audit_once(
                "audit-owner-notification",
                document_id,
                "DOCUMENT_REJECTED",
                recipient,
                document["owner_email"],
            )
    deliveries.finish()
    return None


@docjobs.actor(
    "send.document.cancelled.emails",
    display_name="Send Document Cancelled Emails",
    queue_name=queues.EMAIL_QUEUE,
)
def send_document_cancelled_emails(
    *,
    document_id: int,
    cancellation_reason: str | None = None,
    request_metadata: RequestMetadata | None = None,
) -> None:
    """Tell every non-CC recipient who was sent or opened the document, and did not reject it."""
    document = support.load_document(document_id)
    if document["owner_disabled"]:
        return _skip("the owner is disabled", document_id=document_id)
    recipients = support.read(lambda store, conn: store.recipients(conn, document_id))
    deliveries = support.Deliveries()
    for recipient in recipients:
        informed = recipient["send_status"] == "SENT" or recipient["read_status"] == "OPENED"
        if recipient["role"] == "CC" or not informed or recipient["signing_status"] == "REJECTED":
            continue
        if recipient["email_refused_at"] is not None:
            continue
        with deliveries.to(recipient["id"]):
            key = f"send-cancellation-email-{recipient['id']}"
            email = emails.document_cancelled(document, recipient, cancellation_reason)
            if support.send_email(key, email, recipient_id=recipient["id"], document_id=document_id):
                _audit_once(
                    f"audit-{key}",
                    document_id,
                    "DOCUMENT_CANCELLED",
                    recipient,
                    recipient["email"],
                    request_metadata,
                )
    deliveries.finish()
    return None


@docjobs.actor(
    "send.document.deleted.emails", display_name="Send Document Deleted Emails", queue_name=queues.EMAIL_QUEUE
)
def send_document_deleted_emails(
    *,
    team_id: int,
    document_name: str,
    inviter_name: str | None = None,
    inviter_email: pydantic.EmailStr,
    meta: DeletedDocumentMeta | None = None,
    recipients: list[Person],
) -> None:
    """Tell each listed recipient (captured before the document went) that it was deleted."""
    deliveries = support.Deliveries()
    for position, person in enumerate(recipients):
        # The recipients are gone with the document: the log names them by position.
        with deliveries.to(f"#{position} of the list"):
            email = emails.document_deleted(
                document_name=document_name,
                inviter_name=inviter_name,
                inviter_email=str(inviter_email),
                recipient_email=str(person.email),
                recipient_name=person.name,
            )
            support.send_email(f"send-document-deleted-emails-{person.email}", email)
    deliveries.finish()


@docjobs.actor(
    "send.recipient.removed.email", display_name="Send Recipient Removed Email", queue_name=queues.EMAIL_QUEUE
)
def send_recipient_removed_email(
    *,
    envelope_id: str,
    recipient_email: pydantic.EmailStr,
    recipient_name: str,
    inviter_name: str | None = None,
) -> None:
    """Tell a person they were removed from a document."""
    document = support.load_document_by_envelope(envelope_id)
    email = emails.recipient_removed(
        document_title=document["title"],
        recipient_email=str(recipient_email),
        recipient_name=recipient_name,
        inviter_name=inviter_name,
    )
    if support.send_email("send-recipient-removed-email", email, document_id=document["id"]):
        _audit_once(
            "audit-recipient-removed-email", document["id"], "RECIPIENT_REMOVED", None, str(recipient_email)
        )


@docjobs.actor(
    "send.owner.recipient.expired.email",
    display_name="Send Owner Recipient Expired Email",
    queue_name=queues.EMAIL_QUEUE,
)
def send_owner_recipient_expired_email(*, recipient_id: int, envelope_id: str) -> None:
    """Tell the owner that a recipient's signing window closed."""
    document = support.load_document_by_envelope(envelope_id)
    recipient = support.load_recipient(recipient_id, document)
    email = emails.owner_recipient_expired(document, recipient, support.base_url())
    if support.send_email("send-owner-recipient-expired-email", email, document_id=document["id"]):
        _audit_once(
            "audit-owner-recipient-expired",
            document["id"],
            "RECIPIENT_EXPIRED",
            recipient,
            document["owner_email"],
        )


@docjobs.actor(
    "send.signup.confirmation.email", display_name="Send Confirmation Email", queue_name=queues.EMAIL_QUEUE
)
def send_signup_confirmation_email(*, email: pydantic.EmailStr, force: bool = False) -> None:
    """Create a one-hour verification token and ask the user to confirm their address."""
    user = support.read(lambda store, conn: store.user_by_email(conn, str(email)))
    if user is None:
        raise support.JobAbandoned(f"no user has the email address {email}")
    if user["email_verified"] is not None and not force:
        return _skip("the email address is verified already", user_id=user["id"])
    token = run_task(
        "create-verification-token",
        lambda: _new_token(user["id"], "confirmation-email", CONFIRMATION_TOKEN_SECONDS),
    )
    support.send_email("send-confirmation-email", emails.signup_confirmation(user, token, support.base_url()))
    return None


@docjobs.actor(
    "send.password.reset.success.email",
    display_name="Send Password Reset Email",
    queue_name=queues.EMAIL_QUEUE,
)
def send_password_reset_success_email(*, user_id: int) -> None:
    """Confirm a password change to the user."""
    user = support.load_user(user_id)
    support.send_email(
        "send-password-reset-success-email", emails.password_reset_success(user, support.base_url())
    )


@docjobs.actor(
    "send.admin.user.created.email",
    display_name="Send Admin User Created Email",
    queue_name=queues.EMAIL_QUEUE,
)
def send_admin_user_created_email(*, user_id: int) -> None:
    """Create a 24-hour password-reset token and welcome a user an admin created."""
    user = support.load_user(user_id)
    token = run_task(
        "create-password-reset-token", lambda: _new_token(user_id, "password-reset", RESET_TOKEN_SECONDS)
    )
    support.send_email(
        "send-admin-user-created-email", emails.admin_user_created(user, token, support.base_url())
    )


def _new_token(user_id: int, identifier: str, seconds: int) -> str:
    token = secrets.token_hex(RESET_TOKEN_BYTES)
    with support.connection() as conn:
        support.domain().insert_verification_token(
            conn, identifier=identifier, token=token, user_id=user_id, seconds=seconds
        )
    return token


def _audit_once(
    key: str,
    document_id: int,
    email_type: str,
    recipient: Row | None,
    address: str,
    metadata: RequestMetadata | None = None,
) -> None:
    def write() -> None:
        with support.connection() as conn:
            support.audit_email_sent(
                conn,
                document_id=document_id,
                email_type=email_type,
                recipient=recipient,
                address=address,
                metadata=metadata,
            )

    run_task(key, write)


def _pdf_name(title: str) -> str:
    """The attachment's file name: the title on one line, capped, ending in ``.pdf``."""
    name = headers.header_text(title, max_chars=PDF_NAME_MAX_CHARS) or "document"
    return name if name.lower().endswith(".pdf") else f"{name}.pdf"
