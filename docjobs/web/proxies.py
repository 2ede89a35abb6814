"""Who a request comes from, and whether it came over https, behind proxies or not.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are anyone's to write. They are
believed only from a peer in ``NEXT_PRIVATE_JOBS_TRUSTED_PROXIES`` (nobody by
default, loopback included): otherwise a client rotating ``X-Forwarded-For``
would be a new client to every per-client limit (issue 17).

``docjobs web`` gives uvicorn the same list (:func:`uvicorn_proxy_options`), so uvicorn's
``request.client`` agrees; the board decides again from the scope itself because a
host app may serve it with other server settings. For well-formed headers deciding
twice gives the same answer: the walk below is uvicorn's, and a client address
uvicorn put in the scope is either untrusted (taken as is) or leads to the same walk.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: What a request without a peer address (a Unix socket, a test transport) counts as.
UNKNOWN_CLIENT = "unknown"
#: Longer client names are cut: they are keys of sign-in limits, not data.
MAX_CLIENT_CHARS = 64


def uvicorn_proxy_options(trusted: Sequence[Network]) -> dict[str, Any]:
    """uvicorn's proxy options for ``trusted``: its forwarded headers are believed from them only.

    uvicorn's default trusts ``127.0.0.1``, so any local process could name itself
    any client; with nobody trusted the headers are not read at all.
    """
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": [str(network) for network in trusted]}


def client_address(scope: Any, trusted: Sequence[Network]) -> str:
    """The client's address: the peer's, or the one a trusted proxy forwarded.

    Behind trusted proxies, ``X-Forwarded-For`` is read from the right (each proxy
    appends the address it saw) and the first address not trusted is the client.
    An entry that is not an IP address ends the walk at the proxy that wrote it.
    """
    peer = _peer(scope)
    if peer is None:
        return UNKNOWN_CLIENT
    address = _ip(peer)
    if address is None or not _trusted(address, trusted):
        return peer[:MAX_CLIENT_CHARS]
    forwarded = _header_values(scope, b"x-forwarded-for")
    hops = [hop.strip() for hop in ",".join(forwarded).split(",") if hop.strip()]
    for hop in reversed(hops):
        hop_address = _ip(_without_port(hop))
        if hop_address is None:
            return str(address)
        address = hop_address
        if not _trusted(address, trusted):
            return str(address)
    return str(address)  # every hop trusted: the first one is the client


def is_https(scope: Any, trusted: Sequence[Network]) -> bool:
    """Did the client use https: to this server, or to a trusted proxy (``X-Forwarded-Proto``)?"""
    if scope.get("scheme") == "https":
        return True
    peer = _peer(scope)
    address = _ip(peer) if peer is not None else None
    if address is None or not _trusted(address, trusted):
        return False
    values = _header_values(scope, b"x-forwarded-proto")
    return bool(values) and values[-1].strip() == "https"


def _peer(scope: Any) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _header_values(scope: Any, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name]


def _ip(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _without_port(hop: str) -> str:
    """``1.2.3.4:80`` -> ``1.2.3.4``, ``[::1]:80`` -> ``::1``; anything else unchanged."""
    if hop.startswith("[") and "]" in hop:
        return hop[1 : hop.index("]")]
    if hop.count(":") == 1:
        return hop.split(":", 1)[0]
    return hop


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)
