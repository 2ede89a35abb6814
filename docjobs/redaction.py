"""One redaction for every text that leaves the process: log lines, tracebacks, error messages.

Secrets reach error text by routes nobody plans: libpq quotes the piece of a URL it
cannot parse (a password with a bad ``%`` escape), a settings error echoes the value
it refused, a reconnect loop logs its driver's message every second. Rather than
guard each route, everything printed goes through :func:`redact`, which masks

- the password of any ``scheme://user:password@host`` URL,
- ``password=...`` pairs of libpq connection strings,
- every secret value the settings hold (:func:`remember` is called with them at
  start-up), in the forms it may be quoted in (as given, percent-decoded).
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections.abc import Iterable

MASK = "***"
#: Shorter values are masked only where their shape shows them (URL passwords):
#: masking every "abc" in every line would garble logs, not protect anything.
MIN_SECRET_CHARS = 4

# The password runs to the authority's last "@" (an unescaped "@" in it must not leave a tail).
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)(?P<password>[^\s/?#]*)@")
_CONNINFO_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<password>'(?:[^'\\]|\\.)*'|\S+)", re.I)

_lock = threading.Lock()
#: Longest first, so a secret that contains another is masked whole.
_secrets: tuple[str, ...] = ()


def remember(values: Iterable[str | None]) -> None:
    """Add secret values (keys, passwords, certificates) that must never be printed."""
    global _secrets
    forms: set[str] = set()
    for value in values:
        if not value:
            continue
        for form in (value, urllib.parse.unquote(value), urllib.parse.quote(value, safe="")):
            if len(form) >= MIN_SECRET_CHARS:
                forms.add(form)
    with _lock:
        if forms - set(_secrets):
            _secrets = tuple(sorted(forms | set(_secrets), key=len, reverse=True))


def url_secrets(url: str | None) -> list[str]:
    """The password of ``url`` (as written and decoded), for :func:`remember`."""
    if not url:
        return []
    try:
        password = urllib.parse.urlsplit(url).password
    except ValueError:
        return []
    return [password] if password else []


def redact(text: str) -> str:
    """``text`` with every secret it holds replaced by ``***``."""
    # Every log record passes here: the patterns only run where they could match.
    if "://" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@" if m["password"] else m[0], text)
    if "=" in text and "password" in text.lower():
        text = _CONNINFO_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def forget_all() -> None:
    """Forget the remembered values (tests)."""
    global _secrets
    with _lock:
        _secrets = ()
