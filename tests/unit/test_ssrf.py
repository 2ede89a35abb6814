from __future__ import annotations

import pytest

from docjobs.webhooks.ssrf import WebhookUrlRefused, check_url, is_private


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254", "0.0.0.0",
     "::", "::1", "fe80::1", "fc00::1", "fd12::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"],
)  # fmt: skip
def test_private_addresses_are_refused(address: str) -> None:
    assert is_private(address)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(WebhookUrlRefused, match="private address"):
        check_url(f"http://{host}/hook", bypass_hosts=())


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert not is_private(address)
    host = f"[{address}]" if ":" in address else address
    check_url(f"https://{host}/hook", bypass_hosts=())


def test_localhost_names_are_refused_without_a_lookup() -> None:
    for host in ("localhost", "app.localhost"):
        with pytest.raises(WebhookUrlRefused):
            check_url(f"http://{host}:8080/", bypass_hosts=())


def test_a_bypass_host_skips_every_check() -> None:
    check_url("http://127.0.0.1:9000/hook", bypass_hosts=frozenset({"127.0.0.1"}))
    check_url("http://Internal.Example:80/", bypass_hosts=frozenset({"internal.example"}))


def test_only_http_urls_with_a_host_are_accepted() -> None:
    for url in ("ftp://example.com/", "http:///path", "file:///etc/passwd"):
        with pytest.raises(WebhookUrlRefused, match="must be http"):
            check_url(url, bypass_hosts=())
