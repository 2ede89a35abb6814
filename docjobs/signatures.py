"""HMAC-SHA256 signatures over a timestamp and a body: self-requests and webhooks.

The reference service encrypts a SHA-512 of a self-request's body with
XChaCha20-Poly1305 and never looks at time, so a captured request can be replayed
forever; its webhooks carry the shared secret in clear. docjobs signs
``"<unix seconds>." + body`` with HMAC-SHA256 (header value ``v1=<hex>``) for both:
self-requests are refused outside a five-minute window and remembered within it,
so each is honoured once; webhook receivers can check the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

#: Requests older or newer than this are refused.
SIGNATURE_WINDOW_SECONDS = 300
#: Most accepted signatures remembered; the oldest are forgotten first.
REPLAY_CACHE_SIZE = 100_000

TIMESTAMP_HEADER = "X-Job-Timestamp"
SIGNATURE_HEADER = "X-Job-Signature"
JOB_ID_HEADER = "X-Job-Id"
_SCHEME = "v1="


def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(key, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return _SCHEME + digest


class ReplayMemory:
    """The signatures accepted within their window, so a request is honoured once.

    Each process remembers its own: a copy of a request sent to another process
    of the app is caught there only by the window.

    Args:
        window_seconds: How long a signature stays acceptable (and so remembered).
        size: Most signatures remembered; the oldest are forgotten first.
    """

    def __init__(
        self, window_seconds: float = SIGNATURE_WINDOW_SECONDS, size: int = REPLAY_CACHE_SIZE
    ) -> None:
        self.window_seconds = window_seconds
        self.size = size
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, signature: str, timestamp: float, now: float) -> bool:
        """Remember ``signature`` (made at ``timestamp``); False if it was seen already."""
        with self._lock:
            self._forget_expired(now)
            if signature in self._seen:
                return False
            self._seen[signature] = timestamp
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
        return True

    def _forget_expired(self, now: float) -> None:
        while self._seen:
            signature, timestamp = next(iter(self._seen.items()))
            if now - timestamp <= self.window_seconds:
                break
            del self._seen[signature]


class SignatureVerifier:
    """Checks signed requests and refuses replays.

    Args:
        key: The shared secret.
        clock: Returns the current Unix time in seconds (tests pass their own).
    """

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock
        self._replays = ReplayMemory()

    def verify(self, timestamp_header: str | None, signature_header: str | None, body: bytes) -> str | None:
        """Check a request.

        Returns:
            ``None`` when the request is genuine, fresh and seen for the first time;
            otherwise the reason it is refused (for logs, never for the response).
        """
        if not timestamp_header or not signature_header:
            return "missing signature headers"
        try:
            timestamp = int(timestamp_header)
        except ValueError:
            return "malformed timestamp"
        now = self._clock()
        if abs(now - timestamp) > SIGNATURE_WINDOW_SECONDS:
            return "stale timestamp"
        # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
        presented = signature_header.encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(sign(self._key, timestamp, body).encode("ascii"), presented):
            return "bad signature"
        if not self._replays.first_time(signature_header, timestamp, now):
            return "replayed request"
        return None
