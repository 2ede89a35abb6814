"""Payload parts shared by several jobs."""

from __future__ import annotations

import pydantic
from pydantic.alias_generators import to_camel


class PayloadModel(pydantic.BaseModel):
    """camelCase on the wire, snake_case in Python, unknown keys dropped (as the reference's zod).

    Validators are built on first use (``defer_build``), as the job payloads' are, so a worker
    that never runs an email job neither builds them nor imports ``email_validator``.
    """

    model_config = pydantic.ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", defer_build=True
    )


class RequestMetadata(PayloadModel):
    """Who caused the job: recorded in audit logs."""

    ip_address: pydantic.IPvAnyAddress | None = None
    user_agent: str | None = None


class DeletedDocumentMeta(PayloadModel):
    """Email settings of a deleted document, captured before it went."""

    email_id: str | None = None
    email_reply_to: str | None = None
    language: str | None = None


class Person(PayloadModel):
    """A name and an email address."""

    email: pydantic.EmailStr
    name: str = ""
