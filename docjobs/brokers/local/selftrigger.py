"""The self-trigger client: wakes the web app's consumer with a signed HTTP request.

The reference service races each request against a 150 ms timer on the sender's
path and forgets it; a lost request leaves the job PENDING forever. Here sending
never touches the sender's path: :meth:`SelfTrigger.wake` records the newest job and
returns, and one background thread posts at most one request per
``min_interval_seconds``, naming the newest job. A burst of a thousand sends makes a
handful of requests. Losing one costs nothing: consumers also listen for NOTIFY and
poll, so the job still runs within the poll interval.

A process that sends while no web app answers (a script, ``docjobs trigger``, a
worker) fails every request. Where workers listen for NOTIFY that is not news: the
first failure is one warning naming ``NEXT_PRIVATE_INTERNAL_WEBAPP_URL`` and saying
whether a worker is alive to take the job; later ones are debug lines. Without
listeners (behind PgBouncer) the job waits for a poll, so a failing endpoint is
reported once a minute.

After a failed request the client waits before the next one (0.5 s doubling to 30 s,
:mod:`docjobs.backoff`), merging the wake-ups meanwhile into one: a sender with no web
app to wake (a script, a worker, the benchmark) would otherwise pay an HTTP attempt
every ``min_interval_seconds`` (issue 21: ~50 us of CPU per send). The newest job is
still named once the wait ends, and consumers poll meanwhile.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from docjobs import signatures
from docjobs.backoff import retry_delays
from docjobs.brokers.local.coalesce import CoalescingSender

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

DEFAULT_MIN_INTERVAL_SECONDS = 0.1
DEFAULT_TIMEOUT_SECONDS = 5.0
#: A failing endpoint is reported at most this often (when nothing listens for NOTIFY).
WARNING_INTERVAL_SECONDS = 60.0
#: The variable that points the requests at the web app.
URL_VARIABLE = "NEXT_PRIVATE_INTERNAL_WEBAPP_URL"


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
        workers_listen: Other processes' consumers LISTEN for the doorbell, so a
            request nobody answers delays no job: warn of it once, then at debug.
        live_workers: Counts the workers alive now, for that one warning (it says
            whether any will take the job).
    """

    def __init__(
        self,
        base_url: str,
        key: bytes,
        *,
        min_interval_seconds: float = DEFAULT_MIN_INTERVAL_SECONDS,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        workers_listen: bool = False,
        live_workers: Callable[[], int] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.workers_listen = workers_listen
        self._live_workers = live_workers
        self._key = key
        self._timeout_seconds = timeout_seconds
        # Made by the first request, on the sender's thread: most worker processes never
        # send one, and httpx would cost each of them ~6 MiB (issue 21).
        self._client: httpx.Client | None = None
        # Only the newest job is named: one request wakes the consumer for all of them.
        self._sender: CoalescingSender[tuple[str, str]] = CoalescingSender(
            self._post,
            lambda pending, newest: newest,
            min_interval_seconds=min_interval_seconds,
            name="docjobs-self-trigger",
        )
        self._last_warning = float("-inf")
        self._unanswered_told = False
        self.sent = 0
        self._failure_waits: Iterator[float] = retry_delays()
        self._closing = threading.Event()

    def wake(self, actor: str, job_id: str) -> None:
        """Ask for a request naming this job; returns at once."""
        self._sender.put((actor, job_id))

    def close(self, timeout: float = 2.0) -> None:
        """Send what is pending, then stop the thread; safe to call twice."""
        self._closing.set()  # ends a wait after a failure: what is pending goes now
        if self._sender.close(timeout) and self._client is not None:
            self._client.close()  # else a slow request still uses it; the thread dies with the process

    def _post(self, job: tuple[str, str]) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout_seconds, follow_redirects=False)
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
            if response.status_code < 400:
                self._failure_waits = retry_delays()
                return
            self._warn("Self-trigger request to %s answered %d.", _redacted(url), response.status_code)
        except httpx.HTTPError as exc:
            reason = str(exc).replace(url, _redacted(url)) or type(exc).__name__
            if self.workers_listen:
                self._tell_once(reason)
            else:
                self._warn(
                    "Self-trigger request to %s failed: %s; the job waits for the next poll (is %s the web "
                    "app's URL?).",
                    _redacted(url),
                    reason,
                    URL_VARIABLE,
                )
        # This thread waits; wake-ups meanwhile merge into the one request after it.
        self._closing.wait(next(self._failure_waits))

    def _tell_once(self, reason: str) -> None:
        # Workers listening take the job anyway: say once what to set, if a web app should answer.
        base = _redacted(self.base_url)
        if self._unanswered_told:
            logger.debug("Self-trigger request to %s failed: %s.", base, reason)
            return
        self._unanswered_told = True
        logger.warning(
            "docjobs could not wake a web app at %s (%s): %s. If a web app should run them, set %s to "
            "the URL it answers on (later failures are logged at debug).",
            base,
            reason,
            self._who_takes_jobs(),
            URL_VARIABLE,
            extra={"action": "self_trigger_failed"},
        )

    def _who_takes_jobs(self) -> str:
        alive: int | None = None
        if self._live_workers is not None:
            try:
                alive = self._live_workers()
            except Exception:  # the warning matters more than the count
                logger.debug("Could not count the live workers.", exc_info=True)
        if alive is None:
            return "jobs still reach any worker listening on the database"
        if alive == 0:
            return "no worker is alive either, so jobs wait until one starts (docjobs worker, or docjobs web)"
        return f"jobs still reach the {alive} worker{'s' if alive != 1 else ''} listening on the database"

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
