"""Who a request comes from: forwarded headers believed from trusted proxies only."""

from __future__ import annotations

import ipaddress
from typing import Any

from docjobs.web.proxies import client_address, is_https


def test_the_client_address_rule_for_addresses_off_this_machine() -> None:
    """The rule's decisions for addresses no test can connect from: checked by calling it."""
    trusted = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))

    def scope(peer: str, *headers: tuple[str, str]) -> dict[str, Any]:
        raw = [(name.encode(), value.encode()) for name, value in headers]
        return {"type": "http", "scheme": "http", "client": (peer, 5000), "headers": raw}

    xff = "x-forwarded-for"
    assert "203.0.113.9" == client_address(scope("203.0.113.9", (xff, "10.0.0.1")), trusted)
    assert "198.51.100.1" == client_address(
        scope("10.1.1.1", (xff, "6.6.6.6, 198.51.100.1, 10.2.2.2")), trusted
    )
    assert "10.3.3.3" == client_address(scope("10.1.1.1", (xff, "10.3.3.3, 10.2.2.2")), trusted)
    assert "10.2.2.2" == client_address(scope("10.1.1.1", (xff, "not-an-ip, 10.2.2.2")), trusted)
    assert "198.51.100.1" == client_address(scope("2001:db8::1", (xff, "[198.51.100.1]:443")), trusted)
    assert "198.51.100.1" == client_address(scope("10.1.1.1", (xff, "198.51.100.1:443")), trusted)
    assert "10.1.1.1" == client_address(scope("10.1.1.1"), trusted)
    assert "unknown" == client_address({"type": "http", "headers": []}, trusted)
    assert is_https(scope("10.1.1.1", ("x-forwarded-proto", "https")), trusted)
    assert not is_https(scope("203.0.113.9", ("x-forwarded-proto", "https")), trusted)
