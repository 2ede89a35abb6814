"""Inngest request signatures, checked more strictly than the SDK checks them.

``X-Inngest-Signature: t=<unix seconds>&s=<hex>`` where ``s`` is HMAC-SHA256 over the
JCS (RFC 8785) form of the JSON body followed by ``t``, keyed with the signing key
minus its ``signkey-<env>-`` prefix (as text). The SDK accepts any ``t``, so a
captured call could be replayed forever; here a signature older (or newer) than
``MAX_AGE_SECONDS`` is refused too, and the serve endpoint refuses one it has
accepted before (Inngest signs every call it makes anew, a retry included).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import urllib.parse
from collections.abc import Sequence

import jcs

#: How far ``t`` may be from now, either way.
MAX_AGE_SECONDS = 300
_KEY_PREFIX = re.compile(r"^signkey-\w+-")


class SignatureError(Exception):
    """Why a request's signature was refused (never names a key)."""


def sign(body: bytes, key: str, at: int) -> str:
    """The signature header value an Inngest server sends with ``body`` at ``at``."""
    return f"t={at}&s={_mac(body, key, str(at))}"


def verify(body: bytes, header: str | None, keys: Sequence[str], now: float) -> int:
    """Accept the request if ``header`` signs ``body`` with one of ``keys`` within the age limit.

    Returns:
        The signature's time, ``t``.

    Raises:
        SignatureError: Missing, malformed, stale, or made with no key given.
    """
    if not header:
        raise SignatureError("missing X-Inngest-Signature")
    fields = urllib.parse.parse_qs(header)
    stamps, signatures = fields.get("t", []), fields.get("s", [])
    if len(stamps) != 1 or len(signatures) != 1 or not stamps[0].isdigit():
        raise SignatureError("malformed X-Inngest-Signature")
    if abs(now - int(stamps[0])) > MAX_AGE_SECONDS:
        raise SignatureError("stale X-Inngest-Signature")
    for key in keys:
        if hmac.compare_digest(_mac(body, key, stamps[0]), signatures[0]):
            return int(stamps[0])
    raise SignatureError("invalid X-Inngest-Signature")


def _mac(body: bytes, key: str, stamp: str) -> str:
    try:
        canonical = jcs.canonicalize(json.loads(body)) if body else b""
    except ValueError:
        raise SignatureError("the signed body is not JSON") from None
    mac = hmac.new(_KEY_PREFIX.sub("", key).encode(), canonical, hashlib.sha256)
    mac.update(stamp.encode())
    return mac.hexdigest()
