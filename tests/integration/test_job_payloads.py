"""Every job refuses a bad payload at send, naming the field, and enqueues nothing."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from docjobs import errors, jobs, registry
from docjobs.runtime import Runtime

BAD_PAYLOADS: dict[str, tuple[dict[str, Any] | list[Any], str | None]] = {
    "send.signing.requested.email": ({"userId": 1, "documentId": "seven", "recipientId": 1}, "documentId"),
    "send.recipient.signed.email": ({"documentId": 1}, "recipientId"),
    "send.document.pending.email": ({"envelopeId": 5, "recipientId": 1}, "envelopeId"),
    "send.document.completed.emails": ({"envelopeId": "e", "requestMetadata": {"ipAddress": "nope"}},
                                       "requestMetadata.ipAddress"),
    "send.signing.rejected.emails": ({"documentId": 1, "recipientId": "one"}, "recipientId"),
    "send.document.cancelled.emails": ({"documentId": None}, "documentId"),
    "send.document.deleted.emails": ({"teamId": 1, "documentName": "d", "inviterEmail": "olivia@example.com",
                                      "recipients": [{"email": "not-an-address"}]}, "recipients.0.email"),
    "send.recipient.removed.email": ({"envelopeId": "e", "recipientEmail": "nope", "recipientName": "n"},
                                     "recipientEmail"),
    "send.owner.recipient.expired.email": ({"recipientId": 1}, "envelopeId"),
    "send.signup.confirmation.email": ({"email": "x"}, "email"),
    "send.password.reset.success.email": ({}, "userId"),
    "send.admin.user.created.email": ({"userId": [1]}, "userId"),
    "internal.execute-webhook": ({"event": "DOCUMENT_EXPLODED", "webhookId": "w", "data": {}}, "event"),
    "internal.seal-document": ({"documentId": 1, "sendEmail": "maybe"}, "sendEmail"),
    "internal.process-recipient-expired": ({"recipientId": "x"}, "recipientId"),
    "internal.process-signing-reminder": ({}, "recipientId"),
    "internal.seal-document-sweep": ([1], None),
    "internal.expire-recipients-sweep": ([1], None),
    "internal.send-signing-reminders-sweep": ([1], None),
    "internal.cleanup-rate-limits": ([1], None),
    "internal.cleanup-background-jobs": ([1], None),
    "internal.cleanup-webhook-calls": ([1], None),
    "send.document.created.from.direct.template.email": ({"envelopeId": "e"}, "recipientId"),
    "internal.bulk-send-template": ({"userId": 1, "teamId": 1, "templateId": 1, "sendImmediately": True,
                                     "csvContent": "name\nAnn\n"}, "csvContent"),
    "send.organisation-member-joined.email": ({"organisationId": "org_1", "memberUserId": "x"}, "memberUserId"),
    "send.organisation-member-left.email": ({"memberUserId": 1}, "organisationId"),
    "send.team-deleted.email": ({"organisationId": "org_1", "team": {"name": "t", "url": "t"},
                                "members": [{"id": 1, "email": "nope"}]}, "members.0.email"),
    "send.organisation-limit-alert.email": ({"organisationId": "org_1", "counter": "pages", "kind": "quota",
                                             "period": "2026-12"}, "counter"),
    "internal.admin-delete-organisation": ({"organisationId": "org_1", "sendEmailToOwner": "maybe",
                                            "requestedByUserId": 1}, "sendEmailToOwner"),
    "internal.rollup-job-history": ([1], None),
}  # fmt: skip


def test_every_docjobs_job_is_covered(pg_runtime: Runtime) -> None:
    declared = {
        job_id for job_id in registry.declared() if not job_id.startswith(("test.", "demo.", "unit."))
    }
    assert declared == set(BAD_PAYLOADS)


@pytest.mark.parametrize("job_id", sorted(BAD_PAYLOADS))
def test_a_bad_payload_is_refused_at_send(pg_runtime: Runtime, database_url: str, job_id: str) -> None:
    payload, field = BAD_PAYLOADS[job_id]
    with pytest.raises(errors.PayloadError) as raised:
        jobs.trigger(job_id, payload)  # type: ignore[arg-type]
    assert field == raised.value.field
    assert str(raised.value).startswith(f"{job_id}: ")
    if field is not None:
        assert f": {field}: " in str(raised.value)
    with psycopg.connect(database_url) as conn:
        assert (0,) == conn.execute("SELECT count(*) FROM background_job").fetchone()
