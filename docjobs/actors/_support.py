"""What the job types share: the runtime's services, email sending with memo, audit entries."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from docjobs import errors, runtime
from docjobs.actors.payloads import RequestMetadata
from docjobs.db.domain import DomainStore
from docjobs.db.pool import Connection
from docjobs.mail import transport
from docjobs.mail.errors import Undeliverable
from docjobs.mail.message import Email, render
from docjobs.tasks import run_task
from docjobs.webhooks.events import WebhookEvent
from docjobs.webhooks.payload import document_payload
from docjobs.webhooks.trigger import trigger_webhook

logger = logging.getLogger("docjobs.jobs")

T = TypeVar("T")
#: A read against the domain tables.
Reader = Callable[[DomainStore, Connection], Any]


class JobAbandoned(errors.NotRetryable):
    """What the job is about is gone; another attempt cannot help."""


def domain() -> DomainStore:
    return runtime.current().domain


def base_url() -> str:
    """Links in emails start here (``NEXT_PUBLIC_WEBAPP_URL``)."""
    return runtime.current().settings.webapp_url


@contextmanager
def connection() -> Iterator[Connection]:
    """A pooled connection to the domain tables (autocommit)."""
    with runtime.current().require_database().connection() as conn:
        yield conn


@contextmanager
def transaction() -> Iterator[Connection]:
    """A transaction on the domain tables; jobs enqueued with ``conn=`` commit with it."""
    with runtime.current().require_database().transaction() as conn:
        yield conn


def read(fn: Callable[[DomainStore, Connection], T]) -> T:
    """Run one read against the domain tables."""
    with connection() as conn:
        return fn(domain(), conn)


def load_document(document_id: int) -> dict[str, Any]:
    """A document (with its owner's name and email), or the job is abandoned."""
    document = read(lambda store, conn: store.document(conn, document_id))
    if document is None:
        raise JobAbandoned(f"document {document_id} does not exist")
    return document


def load_document_by_envelope(envelope_id: str) -> dict[str, Any]:
    """A document by envelope id, or the job is abandoned."""
    document = read(lambda store, conn: store.document_by_envelope(conn, envelope_id))
    if document is None:
        raise JobAbandoned(f"document {envelope_id} does not exist")
    return document


def load_recipient(recipient_id: int, document: dict[str, Any]) -> dict[str, Any]:
    """A recipient of ``document``, or the job is abandoned."""
    recipient = read(lambda store, conn: store.recipient(conn, recipient_id))
    if recipient is None or recipient["document_id"] != document["id"]:
        raise JobAbandoned(f"recipient {recipient_id} is not on document {document['id']}")
    return recipient


def load_user(user_id: int) -> dict[str, Any]:
    """A user, or the job is abandoned."""
    user = read(lambda store, conn: store.user(conn, user_id))
    if user is None:
        raise JobAbandoned(f"user {user_id} does not exist")
    return user


def mailer() -> transport.Mailer:
    current = runtime.current().mailer
    if current is None:
        raise errors.NotSupportedError("no mailer is configured")
    return current


def send_email(
    key: str, email: Email, *, recipient_id: int | None = None, document_id: int | None = None
) -> bool:
    """Send an email at most once per job (memoised as task ``key``).

    An email that cannot reach its recipient for good (an unusable address, a 5xx
    refusal) is recorded (the recipient is marked, and an ``EMAIL_REFUSED`` audit
    entry written), logged with the recipient's id, and the job goes on: retrying
    cannot help, and the data at fault is the recipient's, not the job's. Any
    other failure raises, and the job is retried.

    Returns:
        Whether the email was accepted by the mail server.
    """

    def send() -> dict[str, Any]:
        mail = mailer()
        try:
            mail.send(render(email, from_name=mail.from_name, from_address=mail.from_address))
        except Undeliverable as undeliverable:
            # The address stays out of the log (the audit entry holds it); some task keys hold one.
            logger.warning(
                "Email not delivered, for good (%s): recipient %s, document %s.",
                type(undeliverable).__name__ if undeliverable.code is None else undeliverable.code,
                recipient_id,
                document_id,
                extra={
                    "action": "email_undeliverable",
                    "recipient_id": recipient_id,
                    "document_id": document_id,
                },
            )
            _record_refusal(undeliverable, recipient_id=recipient_id, document_id=document_id)
            return {"sent": False, "refused": undeliverable.reason}
        return {"sent": True}

    return bool(run_task(key, send)["sent"])


class Deliveries:
    """The emails of one job to several recipients, each independent of the others' failures.

    Wrap each recipient's sending (and its audit) in ``with deliveries.to(id):``
    and call :meth:`finish` after the loop. A failure particular to one recipient
    (a 4xx reply about them, their task out of retries, anything unexpected) is
    logged with the recipient's id and held while the others go on; ``finish``
    raises it, so the job is retried and the retry skips every email memoised as
    sent. A failure of the mail server itself (refused connection, timeout) is
    raised at once: the others would fail the same way. Permanent refusals never
    get here: :func:`send_email` records them and returns ``False``.
    """

    def __init__(self) -> None:
        self._held: list[BaseException] = []

    @contextmanager
    def to(self, recipient: int | str) -> Iterator[None]:
        """Send to ``recipient`` (an id, or a label such as "owner") inside this block."""
        try:
            yield
        except Exception as exc:
            if transport.is_server_failure(exc):
                raise
            logger.warning(
                "Email to recipient %s failed (%s); the other recipients go on.",
                recipient,
                type(exc).__name__,
                extra={"action": "email_held", "recipient_id": recipient},
            )
            self._held.append(exc)

    def finish(self) -> None:
        """Raise the first held failure, preferring one another attempt may fix."""
        if not self._held:
            return
        retryable = [exc for exc in self._held if not isinstance(exc, errors.NON_RETRYABLE)]
        raise (retryable or self._held)[0]


def _record_refusal(
    undeliverable: Undeliverable, *, recipient_id: int | None, document_id: int | None
) -> None:
    with transaction() as conn:
        if recipient_id is not None:
            domain().mark_recipient_refused(conn, recipient_id)
        if document_id is not None:
            domain().add_audit_log(
                conn,
                document_id=document_id,
                type="EMAIL_REFUSED",
                data={
                    "recipientEmail": undeliverable.address,
                    "code": undeliverable.code,
                    "reason": undeliverable.reason,
                },
                email=undeliverable.address,
            )


def audit_email_sent(
    conn: Connection,
    *,
    document_id: int,
    email_type: str,
    recipient: dict[str, Any] | None,
    address: str,
    metadata: RequestMetadata | None = None,
) -> None:
    """The ``EMAIL_SENT`` audit entry of an email about a document."""
    domain().add_audit_log(
        conn,
        document_id=document_id,
        type="EMAIL_SENT",
        data={
            "emailType": email_type,
            "recipientEmail": address,
            "recipientName": recipient["name"] if recipient else None,
            "recipientRole": recipient["role"] if recipient else None,
            "recipientId": recipient["id"] if recipient else None,
            "isResending": False,
        },
        email=address,
        **_metadata(metadata),
    )


def _metadata(metadata: RequestMetadata | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    return {
        "ip_address": str(metadata.ip_address) if metadata.ip_address else None,
        "user_agent": metadata.user_agent,
    }


def audit_fields(metadata: RequestMetadata | None) -> dict[str, Any]:
    """Audit-log columns taken from a job's request metadata."""
    return _metadata(metadata)


def fire_webhook(
    conn: Connection, event: WebhookEvent, document_id: int, *, in_transaction: bool = True
) -> int:
    """Trigger ``event`` with the document's current state to its owner's webhooks."""
    store = domain()
    document = store.document(conn, document_id)
    if document is None:
        return 0
    data = document_payload(document, store.recipients(conn, document_id))
    return trigger_webhook(
        conn,
        event=event,
        user_id=int(document["owner_id"]),
        data=data,
        store=store,
        in_transaction=in_transaction,
    )
