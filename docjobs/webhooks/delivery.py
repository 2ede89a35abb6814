"""One webhook delivery attempt, recorded as a ``webhook_call`` row.

As in the reference: ``POST`` of ``{event, payload, createdAt, webhookEndpoint}``
with ``X-Documenso-Secret``, a 10 s timeout, redirects not followed (a 3xx is a
failure), the SSRF guard, and one call row per attempt whatever happens. docjobs
adds ``X-Documenso-Timestamp`` and ``X-Documenso-Signature`` (``v1=`` HMAC-SHA256
of ``"<timestamp>.<body>"`` keyed by the webhook's secret) so receivers can check
the body was not altered, without the secret travelling in clear.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from docjobs import signatures
from docjobs.webhooks.payload import iso
from docjobs.webhooks.ssrf import WebhookUrlRefused, check_url

TIMEOUT_SECONDS = 10.0
#: Response bodies longer than this are cut before they are stored.
MAX_STORED_RESPONSE_CHARS = 10_000

SECRET_HEADER = "X-Documenso-Secret"
TIMESTAMP_HEADER = "X-Documenso-Timestamp"
SIGNATURE_HEADER = "X-Documenso-Signature"


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave."""

    status: str  # SUCCESS or FAILED
    response_code: int  # 0 when no response came back
    request_body: dict[str, Any]
    response_headers: dict[str, str] | None
    response_body: Any
    #: False when another attempt cannot help (the URL is refused by the SSRF guard).
    retryable: bool = True

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"


def attempt(
    *, url: str, secret: str | None, event: str, payload: Any, bypass_hosts: Collection[str]
) -> Outcome:
    """Deliver ``payload`` once; never raises for a delivery failure."""
    body = {
        "event": event,
        "payload": payload,
        "createdAt": iso(datetime.now(UTC)),
        "webhookEndpoint": url,
    }
    raw = json.dumps(body, separators=(",", ":")).encode("utf-8")
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        SECRET_HEADER: secret or "",
        TIMESTAMP_HEADER: str(timestamp),
    }
    if secret:
        headers[SIGNATURE_HEADER] = signatures.sign(secret.encode("utf-8"), timestamp, raw)
    try:
        check_url(url, bypass_hosts)
    except WebhookUrlRefused as exc:
        return Outcome("FAILED", 0, body, None, str(exc), retryable=False)
    try:
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
            response = client.post(url, content=raw, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(
            "FAILED", 0, body, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        )
    status = "SUCCESS" if 200 <= response.status_code < 300 else "FAILED"
    return Outcome(
        status, response.status_code, body, dict(response.headers.items()), _response_body(response)
    )


def _response_body(response: httpx.Response) -> Any:
    text = response.text[:MAX_STORED_RESPONSE_CHARS]
    try:
        return json.loads(text)
    except ValueError:
        return text
