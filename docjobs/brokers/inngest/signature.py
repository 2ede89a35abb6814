"""Inngest request signatures, checked more strictly than the SDK checks them.

``X-Inngest-Signature: t=<unix seconds>&s=<hex>`` where ``s`` is HMAC-SHA256 over the
JCS (RFC 8785) form of the JSON body followed by ``t``, keyed with the signing key
minus its ``signkey-<env>-`` prefix (as text). The SDK accepts any ``t``, so a
captured call could be replayed forever; here a signature older (or newer) than
``MAX_AGE_SECONDS`` is refused too, and the serve endpoint refuses one it has
accepted before (Inngest signs every call it makes anew, a retry included).

The header is read strictly: exactly ``t=<digits>&s=<64 lowercase hex>``, in either
order, nothing else. A looser reading (a query-string parser's) lets one signature be
spelt many ways (``s=S&t=T``, ``t=T&s=S&x=1``, a percent-encoded ``t``), and a replay
memory keyed on the spelling would honour each spelling once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jcs
import orjson

from docjobs import strictjson
from docjobs.settings_values import SIGNING_KEY_PREFIX

#: How far ``t`` may be from now, either way.
MAX_AGE_SECONDS = 300
#: The largest body whose signature is also checked over the ``jcs`` package's form.
MAX_SLOW_CANONICAL_BYTES = 256 * 1024
#: The deepest request body accepted: a call wraps a payload (itself at most
#: ``strictjson.MAX_DEPTH`` deep) in its event, and the failure event wraps that event again.
MAX_BODY_DEPTH = 2 * strictjson.MAX_DEPTH
# No leading zero (one time, one spelling); 12 digits outlast any clock.
_STAMP = r"(?P<{name}>0|[1-9][0-9]{{0,11}})"
_MAC = r"(?P<{name}>[0-9a-f]{{64}})"
_HEADER = re.compile(
    f"t={_STAMP.format(name='t1')}&s={_MAC.format(name='s1')}"
    f"|s={_MAC.format(name='s2')}&t={_STAMP.format(name='t2')}",
    re.ASCII,
)


class SignatureError(Exception):
    """Why a request's signature was refused (never names a key or the signature)."""


@dataclass(frozen=True)
class Signature:
    """A well-formed, fresh ``X-Inngest-Signature``: its time and its MAC."""

    at: int
    mac: str

    @property
    def replay_key(self) -> str:
        """One key per signature however its header was spelt."""
        return f"{self.at}:{self.mac}"


def sign(body: bytes, key: str, at: int) -> str:
    """The signature header value an Inngest server sends with ``body`` at ``at``."""
    return f"t={at}&s={_mac(canonical_body(body), key, at)}"


def parse(headers: Sequence[str], now: float) -> Signature:
    """The request's one signature header, read strictly and checked for age (not yet for its MAC).

    Args:
        headers: Every ``X-Inngest-Signature`` value the request carries.
        now: Seconds since the epoch.

    Raises:
        SignatureError: Missing, repeated, malformed or stale.
    """
    if not headers:
        raise SignatureError("missing X-Inngest-Signature")
    if len(headers) > 1:
        raise SignatureError("more than one X-Inngest-Signature")
    match = _HEADER.fullmatch(headers[0])
    if match is None:
        raise SignatureError("malformed X-Inngest-Signature (expected t=<seconds>&s=<64 hex digits>)")
    signature = Signature(int(match["t1"] or match["t2"]), match["s1"] or match["s2"])
    if abs(now - signature.at) > MAX_AGE_SECONDS:
        raise SignatureError("stale X-Inngest-Signature")
    return signature


def check(signature: Signature, body: bytes, document: Any, keys: Sequence[str]) -> None:
    """Accept ``signature`` if one of ``keys`` made it over the body's canonical form.

    JCS (RFC 8785) is what Inngest signs, and the ``jcs`` package writes it in pure
    Python: seconds for a 4 MB body, which anyone may send with a made-up signature.
    orjson with sorted keys writes the same bytes for most documents (strings,
    integers and ASCII keys alike) in milliseconds, so that form is tried first; the
    ``jcs`` form only when it differs and the body is small (``MAX_SLOW_CANONICAL_BYTES``).

    Args:
        signature: The parsed header.
        body: The raw body.
        document: The body as ``orjson.loads`` read it (``None`` for an empty body).
        keys: The signing keys (primary, then fallback).

    Raises:
        SignatureError: Made with no key given, or over another body.
    """
    if _signed(signature, fast_canonical(body, document), keys):
        return
    if 0 < len(body) <= MAX_SLOW_CANONICAL_BYTES:
        try:
            canonical = canonical_body(body, document)
        except SignatureError:  # JSON docjobs does not take: whatever was signed, it was not this
            canonical = None
        if canonical is not None and _signed(signature, canonical, keys):
            return
    raise SignatureError("invalid X-Inngest-Signature")


def fast_canonical(body: bytes, document: Any) -> bytes:
    """The body in orjson's sorted form: JCS itself, unless a number or a key sorts or prints otherwise."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS) if body else b""


def _signed(signature: Signature, canonical: bytes, keys: Sequence[str]) -> bool:
    return any(hmac.compare_digest(_mac(canonical, key, signature.at), signature.mac) for key in keys)


def canonical_body(body: bytes, document: Any = None) -> bytes:
    """What Inngest signs: the JCS form of the JSON body, or nothing for an empty body.

    Args:
        body: The raw body.
        document: The body already read, if it was.

    Raises:
        SignatureError: The body is not JSON docjobs accepts.
    """
    if not body:
        return b""
    try:
        # The depth check first: jcs recurses, and a deep document would end in RecursionError.
        value = orjson.loads(body) if document is None else document
        strictjson.check(value, max_depth=MAX_BODY_DEPTH)
        return bytes(jcs.canonicalize(value))
    except (ValueError, orjson.JSONDecodeError):
        raise SignatureError("the signed body is not acceptable JSON") from None


def _mac(canonical: bytes, key: str, at: int) -> str:
    mac = hmac.new(SIGNING_KEY_PREFIX.sub("", key).encode(), canonical, hashlib.sha256)
    mac.update(str(at).encode())
    return mac.hexdigest()
