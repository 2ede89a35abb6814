"""The self-trigger client: wakes the web app's consumer with a signed HTTP request.

The reference service races each request against a 150 ms timer on the sender's
path and forgets it; a lost request leaves the job PENDING forever. Here sending
never touches the sender's path: :meth:`SelfTrigger.wake` records the newest job and
returns, and one background thread posts at most one request per
``min_interval_seconds``, naming the newest job. A burst of a thousand sends makes a
handful of requests. Losing one costs nothing: consumers also listen for NOTIFY and
poll, so the job still runs within the poll interval.
"""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import urlsplit, urlunsplit

import httpx

from docjobs import signatures
from docjobs.brokers.local.coalesce import CoalescingSender

logger = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL_SECONDS = 0.1
DEFAULT_TIMEOUT_SECONDS = 5.0
#: A failing endpoint is reported at most this often.
WARNING_INTERVAL_SECONDS = 60.0


def request_path(actor: str, job_id: str) -> str:
    """The endpoint path for a job, as in the reference: ``/api/jobs/<job id>/<row id>``."""
    return f"/api/jobs/{actor}/{job_id}"


def request_body(actor: str, job_id: str) -> bytes:
    """The JSON body naming the job; the signature covers it."""
    return json.dumps({"name": actor, "jobId": job_id}, separators=(",", ":")).encode("utf-8")


class SelfTrigger:
    """Sends coalesced, signed wake-up requests in the background.

    Args:
        base_url: ``NEXT_PRIVATE_INTERNAL_WEBAPP_URL`` (or the public URL), with any base path.
        key: The signing secret.
        min_interval_seconds: The least time between two requests.
    """

    def __init__(
        self,
        base_url: str,
        key: bytes,
        *,
        min_interval_seconds: float = DEFAULT_MIN_INTERVAL_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = key
        self._client = httpx.Client(timeout=timeout_seconds, follow_redirects=False)
        # Only the newest job is named: one request wakes the consumer for all of them.
        self._sender: CoalescingSender[tuple[str, str]] = CoalescingSender(
            self._post,
            lambda pending, newest: newest,
            min_interval_seconds=min_interval_seconds,
            name="docjobs-self-trigger",
        )
        self._last_warning = float("-inf")
        self.sent = 0

    def wake(self, actor: str, job_id: str) -> None:
        """Ask for a request naming this job; returns at once."""
        self._sender.put((actor, job_id))

    def close(self, timeout: float = 2.0) -> None:
        """Send what is pending, then stop the thread; safe to call twice."""
        if self._sender.close(timeout):
            self._client.close()  # else a slow request still uses it; the thread dies with the process

    def _post(self, job: tuple[str, str]) -> None:
        actor, job_id = job
        body = request_body(actor, job_id)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            signatures.JOB_ID_HEADER: job_id,
            signatures.TIMESTAMP_HEADER: str(timestamp),
            signatures.SIGNATURE_HEADER: signatures.sign(self._key, timestamp, body),
        }
        url = self.base_url + request_path(actor, job_id)
        try:
            response = self._client.post(url, content=body, headers=headers)
            self.sent += 1
            if response.status_code >= 400:
                self._warn("Self-trigger request to %s answered %d.", _redacted(url), response.status_code)
        except httpx.HTTPError as exc:
            reason = str(exc).replace(url, _redacted(url)) or type(exc).__name__
            self._warn("Self-trigger request to %s failed: %s.", _redacted(url), reason)

    def _warn(self, message: str, *args: object) -> None:
        # Consumers poll, so a failing endpoint delays jobs by at most the poll
        # interval; say so once a minute rather than once per request.
        now = time.monotonic()
        if now - self._last_warning >= WARNING_INTERVAL_SECONDS:
            self._last_warning = now
            logger.warning(message, *args, extra={"action": "self_trigger_failed"})
        else:
            logger.debug(message, *args)


def _redacted(url: str) -> str:
    """The URL without any user or password in it, for logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
