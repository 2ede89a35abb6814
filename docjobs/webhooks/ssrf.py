"""The reference service's guard against webhooks aimed at private addresses (SSRF).

A host listed in ``NEXT_PRIVATE_WEBHOOK_SSRF_BYPASS_HOSTS`` skips every check.
Otherwise the URL's literal host and every address it resolves to (with a short
timeout) must be public: not loopback, private, link-local, unspecified, unique-local,
nor an IPv4-mapped form of those. As in the reference, a lookup that fails or
times out lets the request go on: the HTTP client then fails to connect anyway.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import socket
from collections.abc import Collection
from urllib.parse import urlsplit

from docjobs import errors

DNS_TIMEOUT_SECONDS = 0.25
_RESOLVER = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="docjobs-dns")


class WebhookUrlRefused(errors.DocjobsError):
    """The webhook URL points at a private address."""


def is_private(address: str) -> bool:
    """Whether an IP address must not be reached by webhooks."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_reserved


def check_url(url: str, bypass_hosts: Collection[str]) -> None:
    """Refuse a webhook URL that reaches a private address.

    Raises:
        WebhookUrlRefused: Naming the host and the address it reaches.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookUrlRefused(f"webhook URL must be http(s) with a host: {url!r}")
    host = parts.hostname.lower()
    if host in bypass_hosts:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise WebhookUrlRefused(f"webhook host {host} is a private address")
    for address in _addresses(host):
        if is_private(address):
            raise WebhookUrlRefused(f"webhook host {host} resolves to the private address {address}")


def _addresses(host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    lookup = _RESOLVER.submit(socket.getaddrinfo, host, None, type=socket.SOCK_STREAM)
    try:
        results = lookup.result(timeout=DNS_TIMEOUT_SECONDS)
    except (concurrent.futures.TimeoutError, OSError):
        return []  # fail open, as the reference does
    return sorted({str(result[4][0]) for result in results})
