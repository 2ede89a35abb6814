"""One webhook delivery attempt, recorded as a ``webhook_call`` row.

As in the reference: ``POST`` of ``{event, payload, createdAt, webhookEndpoint}``
with ``X-Documenso-Secret``, redirects not followed (a 3xx is a failure), the
SSRF guard, and one call row per attempt whatever happens. docjobs adds
``X-Documenso-Timestamp`` and ``X-Documenso-Signature`` (``v1=`` HMAC-SHA256 of
``"<timestamp>.<body>"`` keyed by the webhook's secret) so receivers can check
the body was not altered, without the secret travelling in clear.

Where the reference is weak, an attempt here:

- connects only to an address the SSRF guard checked, resolved once, through
  :class:`transport.GuardedBackend` (no second lookup to rebind, no proxy);
- ends by one total deadline of :data:`TIMEOUT_SECONDS` (the reference's 10 s
  time-out) covering the lookup, connect, TLS, request and the whole response;
- reads at most :data:`MAX_RESPONSE_BYTES` of the answer and then closes the
  connection, so a huge answer costs neither memory nor time.
"""

from __future__ import annotations

import codecs
import email.message
import functools
import json
import ssl
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx

from docjobs import signatures, strictjson
from docjobs.webhooks import ssrf, transport
from docjobs.webhooks.payload import iso

#: The whole attempt (lookup, connect, TLS, request, response) must end within this.
TIMEOUT_SECONDS = 10.0
#: Reading the answer stops here and the connection is closed.
MAX_RESPONSE_BYTES = 1024 * 1024
#: Response bodies longer than this are cut before they are stored.
MAX_STORED_RESPONSE_CHARS = 10_000

SECRET_HEADER = "X-Documenso-Secret"
TIMESTAMP_HEADER = "X-Documenso-Timestamp"
SIGNATURE_HEADER = "X-Documenso-Signature"
USER_AGENT = "docjobs-webhooks"

# What an attempt can fail with once the request is under way, other than the guard.
_TRANSPORT_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
)


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave."""

    status: str  # SUCCESS or FAILED
    response_code: int  # 0 when no complete response came back
    request_body: dict[str, Any]
    response_headers: dict[str, str] | None
    response_body: Any
    #: False when another attempt cannot help (the URL is refused by the SSRF guard).
    retryable: bool = True
    #: Why reading the answer stopped before its end (it was longer than MAX_RESPONSE_BYTES).
    cut_short: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"


@dataclass
class _Answer:
    """What came back so far."""

    code: int = 0
    headers: dict[str, str] | None = None
    content_type: str | None = None
    body: bytearray | None = None


def attempt(
    *,
    url: str,
    secret: str | None,
    event: str,
    payload: Any,
    bypass_hosts: Collection[str],
    resolver: ssrf.Resolver | None = None,
) -> Outcome:
    """Deliver ``payload`` once; never raises for a delivery failure.

    Args:
        resolver: Looks the host up; the system resolver when ``None``.
    """
    deadline = transport.Deadline(TIMEOUT_SECONDS)
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
        "User-Agent": USER_AGENT,
        SECRET_HEADER: secret or "",
        TIMESTAMP_HEADER: str(timestamp),
    }
    if secret:
        headers[SIGNATURE_HEADER] = signatures.sign(secret.encode("utf-8"), timestamp, raw)
    answer = _Answer()
    try:
        target = ssrf.check_url(url)
        backend = transport.GuardedBackend(
            bypass_hosts=bypass_hosts, resolver=resolver or ssrf.system_resolver, deadline=deadline
        )
        cut_short = _post(target, raw, headers, backend, deadline, answer)
    except ssrf.WebhookUrlRefused as exc:
        return Outcome("FAILED", 0, body, None, str(exc), retryable=False)
    except (ssrf.WebhookLookupFailed, *_TRANSPORT_ERRORS) as exc:
        return Outcome("FAILED", 0, body, answer.headers, _failure(exc, answer))
    status = "SUCCESS" if 200 <= answer.code < 300 else "FAILED"
    stored = _stored_body(bytes(answer.body or b""), answer.content_type)
    return Outcome(status, answer.code, body, answer.headers, stored, cut_short=cut_short)


def _post(
    target: httpx.URL,
    raw: bytes,
    headers: dict[str, str],
    backend: transport.GuardedBackend,
    deadline: transport.Deadline,
    answer: _Answer,
) -> str | None:
    """POST ``raw`` and read the answer into ``answer``; returns why reading stopped early, if it did."""
    url = httpcore.URL(
        scheme=target.raw_scheme, host=target.raw_host, port=target.port, target=target.raw_path
    )
    # Every per-operation timeout is the total: the backend cuts each to what is left.
    timeouts = dict.fromkeys(("connect", "read", "write", "pool"), deadline.seconds)
    # httpcore would write an IPv6 literal's Host without brackets; httpx.URL leaves out default ports.
    host = f"[{target.host}]" if ":" in target.host else target.raw_host.decode("ascii")
    sent = [("Host", host if target.port is None else f"{host}:{target.port}"), *headers.items()]
    with (
        httpcore.ConnectionPool(
            ssl_context=_ssl_context(), network_backend=backend, max_connections=1, retries=0
        ) as pool,
        pool.stream("POST", url, headers=sent, content=raw, extensions={"timeout": timeouts}) as response,
    ):
        answer.code = response.status
        received = httpx.Headers(response.headers)
        answer.headers = dict(received.items())
        answer.content_type = received.get("content-type")
        answer.body = bytearray()
        for chunk in response.iter_stream():
            answer.body += chunk
            if len(answer.body) > MAX_RESPONSE_BYTES:
                # Leaving the block closes the connection without reading the rest.
                del answer.body[MAX_RESPONSE_BYTES:]
                return f"the response is longer than {MAX_RESPONSE_BYTES} bytes; reading stopped there"
    return None


def _failure(exc: Exception, answer: _Answer) -> str:
    """The stored reason for a failed attempt: the error and what had come back."""
    if isinstance(exc, httpcore.LocalProtocolError):
        # h11 quotes the offending header value, which may be the webhook's secret.
        return "LocalProtocolError: the request has a header value HTTP does not allow"
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if answer.body is not None:
        reason += f" (after status {answer.code} and {len(answer.body)} bytes of body)"
    return reason


def _stored_body(content: bytes, content_type: str | None) -> Any:
    """The answer as stored: its JSON if it is acceptable JSON, else its text, cut."""
    text = content.decode(_charset(content_type), errors="replace")[:MAX_STORED_RESPONSE_CHARS]
    try:
        return strictjson.loads(text)
    except strictjson.JsonRefused:
        return text.replace("\x00", "\ufffd")  # PostgreSQL's jsonb cannot hold NUL


def _charset(content_type: str | None) -> str:
    """The charset the answer declares, when Python knows it; UTF-8 otherwise."""
    message = email.message.Message()
    message["content-type"] = content_type or ""
    try:
        return codecs.lookup(message.get_content_charset() or "utf-8").name
    except LookupError:
        return "utf-8"


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """certifi's trust store, as httpx used by default, without reading the environment."""
    return httpx.create_ssl_context(trust_env=False)
