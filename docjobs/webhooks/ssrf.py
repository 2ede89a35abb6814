"""The guard that keeps webhooks off addresses inside the network (SSRF).

One mechanism decides where a webhook may connect: :func:`resolve_checked`
resolves the host once and returns the addresses that passed the check, and the
webhook transport (:mod:`docjobs.webhooks.transport`) connects to exactly those.
So the HTTP client never resolves the name a second time, and a DNS answer that
changes between the check and the connection (DNS rebinding) reaches nothing.

An address is acceptable only when it is globally routable (``is_global``), not
multicast and not reserved, judged after unwrapping the IPv6 forms that carry an
IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo). Unlike the reference, which
listed private ranges and let ``100.64.0.0/10`` and the documentation ranges
through, anything not known to be public is refused.

A lookup fails closed: no answer within its deadline, or an error, refuses the
attempt (a retryable failure). Each lookup runs in its own short-lived thread, so
slow names hold only their own threads, never a small pool other webhooks wait
for (the reference's 4-thread pool let slow answers through unchecked).

A host listed in ``NEXT_PRIVATE_WEBHOOK_SSRF_BYPASS_HOSTS`` skips the address
checks; it is still resolved once and connected to by address.
"""

from __future__ import annotations

import ipaddress
import queue
import socket
import threading
from collections.abc import Callable, Collection, Sequence

import httpx

from docjobs import errors

#: How long one DNS lookup may take before the attempt is refused (within the attempt's deadline).
LOOKUP_TIMEOUT_SECONDS = 2.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Gives the addresses of a host name, as text; raises ``OSError`` when it cannot.
Resolver = Callable[[str], Sequence[str]]

# RFC 6052's well-known prefix: a NAT64 gateway forwards these to the embedded IPv4 address.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")


class WebhookUrlRefused(errors.DocjobsError):
    """The webhook URL points at an address webhooks must not reach."""


class WebhookLookupFailed(errors.DocjobsError):
    """The webhook host could not be resolved; another attempt may succeed."""


def check_url(url: str) -> httpx.URL:
    """Parse a webhook URL, refusing anything but ``http(s)`` with a host.

    Returns:
        The parsed URL.

    Raises:
        WebhookUrlRefused: The URL is malformed (its port too), not http(s) or has no host.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise WebhookUrlRefused(f"webhook URL is malformed ({exc}): {url!r}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise WebhookUrlRefused(f"webhook URL must be http(s) with a host: {url!r}")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise WebhookUrlRefused(f"webhook URL is malformed (port {parsed.port} is out of range): {url!r}")
    return parsed


def refusal(address: IPAddress) -> str | None:
    """Why webhooks must not reach ``address``, or ``None`` when it is public.

    Returns:
        A phrase completing "resolves to <address>, which ...", or ``None``.
    """
    for judged in _judged_forms(address):
        embeds = "" if judged == address else f"embeds {judged}, which "
        if judged.is_multicast:  # 224.0.0.0/4 and ff00::/8 count as global
            return f"{embeds}is a multicast address"
        if not judged.is_global or judged.is_reserved:
            return f"{embeds}is not a public address"
    return None


def resolve_checked(
    host: str, *, bypass_hosts: Collection[str], resolver: Resolver, timeout_seconds: float
) -> list[IPAddress]:
    """Resolve ``host`` once and return the addresses a webhook may connect to.

    An IP literal is not looked up. The returned addresses are the ones to connect
    to (an IPv4-mapped address comes back as its IPv4 form).

    Raises:
        WebhookUrlRefused: The host is a loopback name or resolves to an address
            :func:`refusal` refuses (unless the host is a bypass host).
        WebhookLookupFailed: The lookup failed, gave nothing, or did not answer
            within ``timeout_seconds``.
    """
    host = host.lower()
    bypassed = host in bypass_hosts
    if not bypassed and (host == "localhost" or host.endswith(".localhost")):
        raise WebhookUrlRefused(f"webhook host {host} is a loopback name")
    addresses = _lookup(host, resolver, timeout_seconds)
    if not bypassed:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise WebhookUrlRefused(f"webhook host {host} resolves to {address}, which {reason}")
    return [_connectable(address) for address in addresses]


def system_resolver(host: str) -> list[str]:
    """The addresses the system resolver gives for ``host``, in its order of preference.

    Raises:
        OSError: The name does not resolve.
    """
    found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _judged_forms(address: IPAddress) -> list[IPAddress]:
    """The addresses whose reach decides whether ``address`` is public."""
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64_WELL_KNOWN:
        return [ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)]
    forms: list[IPAddress] = [address]
    if address.sixtofour is not None:
        forms.append(address.sixtofour)
    if address.teredo is not None:
        forms.extend(address.teredo)
    return forms


def _connectable(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _lookup(host: str, resolver: Resolver, timeout_seconds: float) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass  # a name, not an IP literal
    answers: queue.SimpleQueue[Sequence[str] | Exception] = queue.SimpleQueue()

    def look_up() -> None:
        try:
            answers.put(resolver(host))
        except Exception as exc:  # handed to the waiting thread
            answers.put(exc)

    # Its own thread, so the wait has a deadline; a lookup that never answers keeps
    # only this thread (until the system resolver's own time-out), nothing shared.
    threading.Thread(target=look_up, name="docjobs-webhook-dns", daemon=True).start()
    try:
        answer = answers.get(timeout=timeout_seconds)
    except queue.Empty:
        raise WebhookLookupFailed(
            f"DNS lookup of webhook host {host} gave no answer within {timeout_seconds:g} s"
        ) from None
    if isinstance(answer, OSError):
        raise WebhookLookupFailed(f"DNS lookup of webhook host {host} failed: {answer}") from answer
    if isinstance(answer, Exception):
        raise answer
    try:
        addresses = [ipaddress.ip_address(text) for text in answer]
    except ValueError as exc:
        raise WebhookLookupFailed(
            f"DNS lookup of webhook host {host} gave a malformed address: {exc}"
        ) from None
    if not addresses:
        raise WebhookLookupFailed(f"DNS lookup of webhook host {host} gave no addresses")
    return addresses
