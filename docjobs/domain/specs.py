"""What the flows take and refuse: the specs of a new document, who acts, and the flows' error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from docjobs import errors

Row = dict[str, Any]


class FlowError(errors.DocjobsError, ValueError):
    """The action does not apply to the document or recipient in its current state."""


@dataclass(frozen=True)
class RecipientSpec:
    """A recipient to add to a new document."""

    email: str
    name: str = ""
    role: str = "SIGNER"
    signing_order: int | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class FieldSpec:
    """A field for a recipient (by index in the recipient list), at page percentages."""

    recipient: int
    type: str
    page: int = 1
    position_x: float = 10.0
    position_y: float = 10.0
    width: float = 20.0
    height: float = 5.0
    required: bool = True
    field_meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class Metadata:
    """Who acts: recorded in the audit log and passed to the jobs."""

    ip_address: str | None = None
    user_agent: str | None = None

    def payload(self) -> dict[str, str] | None:
        values = {"ipAddress": self.ip_address, "userAgent": self.user_agent}
        present = {key: value for key, value in values.items() if value is not None}
        return present or None

    def columns(self) -> dict[str, str | None]:
        return {"ip_address": self.ip_address, "user_agent": self.user_agent}
