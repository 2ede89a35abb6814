"""The SSRF guard's decisions, made against resolver stubs: nothing here connects anywhere."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from docjobs.webhooks import ssrf
from docjobs.webhooks.ssrf import WebhookLookupFailed, WebhookUrlRefused

HOST = "hooks.example.com"
NOT_PUBLIC = "is not a public address"


def answering(*addresses: str) -> ssrf.Resolver:
    """A resolver stub giving ``addresses`` for any name."""

    def resolve(host: str) -> Sequence[str]:
        return addresses

    return resolve


def never_called(host: str) -> Sequence[str]:
    raise AssertionError(f"{host} was looked up")


def check(host: str, resolver: ssrf.Resolver, *, bypass: frozenset[str] = frozenset()) -> list[str]:
    addresses = ssrf.resolve_checked(host, bypass_hosts=bypass, resolver=resolver, timeout_seconds=1.0)
    return [str(address) for address in addresses]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("100.64.0.1", NOT_PUBLIC),  # shared address space (carrier-grade NAT): not private, not public
        ("169.254.169.254", NOT_PUBLIC),  # cloud metadata
        ("10.1.2.3", NOT_PUBLIC),
        ("172.16.0.1", NOT_PUBLIC),
        ("172.31.255.255", NOT_PUBLIC),
        ("192.168.1.1", NOT_PUBLIC),
        ("127.0.0.1", NOT_PUBLIC),
        ("0.0.0.0", NOT_PUBLIC),
        ("255.255.255.255", NOT_PUBLIC),
        ("192.0.2.1", NOT_PUBLIC),  # documentation ranges
        ("198.51.100.7", NOT_PUBLIC),
        ("203.0.113.9", NOT_PUBLIC),
        ("198.18.0.1", NOT_PUBLIC),  # benchmarking
        ("240.0.0.1", NOT_PUBLIC),
        ("224.0.0.1", "is a multicast address"),  # counted as global by the ipaddress module
        ("239.1.2.3", "is a multicast address"),
        ("::", NOT_PUBLIC),
        ("::1", NOT_PUBLIC),
        ("fc00::1", NOT_PUBLIC),
        ("fd12:3456::1", NOT_PUBLIC),
        ("fe80::1", NOT_PUBLIC),
        ("2001:db8::1", NOT_PUBLIC),
        ("ff0e::1", "is a multicast address"),
        ("::ffff:10.0.0.1", "embeds 10.0.0.1, which is not a public address"),
        ("::ffff:169.254.169.254", "embeds 169.254.169.254, which is not a public address"),
        ("2002:a00:1::", "embeds 10.0.0.1, which is not a public address"),  # 6to4
        ("2002:6440:1::1", "embeds 100.64.0.1, which is not a public address"),
        ("64:ff9b::a9fe:a9fe", "embeds 169.254.169.254, which is not a public address"),  # NAT64
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", NOT_PUBLIC),  # Teredo (its client is 10.0.0.1)
        ("::a00:1", NOT_PUBLIC),  # IPv4-compatible, deprecated
    ],
)
def test_an_address_that_is_not_public_is_refused_whether_resolved_or_literal(
    address: str, reason: str
) -> None:
    with pytest.raises(WebhookUrlRefused) as resolved:
        check(HOST, answering(address))
    shown = ipaddress.ip_address(address)  # in its canonical form
    assert f"webhook host {HOST} resolves to {shown}, which {reason}" == str(resolved.value)
    with pytest.raises(WebhookUrlRefused, match=f"which {reason}"):
        check(address, never_called)


@pytest.mark.parametrize(
    ("address", "connect_to"),
    [
        ("8.8.8.8", "8.8.8.8"),
        ("93.184.216.34", "93.184.216.34"),
        ("172.32.0.1", "172.32.0.1"),
        ("2606:4700:4700::1111", "2606:4700:4700::1111"),
        ("::ffff:8.8.8.8", "8.8.8.8"),  # connected to as the IPv4 address it is
        ("2002:808:808::1", "2002:808:808::1"),
        ("64:ff9b::808:808", "64:ff9b::808:808"),
    ],
)
def test_a_public_address_is_accepted_and_is_what_the_connection_goes_to(
    address: str, connect_to: str
) -> None:
    assert [connect_to] == check(HOST, answering(address))
    assert [connect_to] == check(address, never_called)


def test_one_address_that_is_not_public_refuses_the_whole_answer() -> None:
    with pytest.raises(WebhookUrlRefused, match="resolves to 10.0.0.7"):
        check(HOST, answering("8.8.8.8", "10.0.0.7"))


def test_a_bypass_host_is_resolved_but_not_checked() -> None:
    bypass = frozenset({"127.0.0.1", "internal.example"})
    assert ["127.0.0.1"] == check("127.0.0.1", never_called, bypass=bypass)
    assert ["10.0.0.5"] == check("Internal.Example", answering("10.0.0.5"), bypass=bypass)


def test_localhost_names_are_refused_without_a_lookup() -> None:
    for host in ("localhost", "app.localhost"):
        with pytest.raises(WebhookUrlRefused, match="is a loopback name"):
            check(host, never_called)


@pytest.mark.parametrize(
    ("resolver", "reason"),
    [
        (answering(), "gave no addresses"),
        (answering("not-an-address"), "gave a malformed address"),
    ],
)
def test_an_unusable_answer_fails_the_lookup(resolver: ssrf.Resolver, reason: str) -> None:
    with pytest.raises(WebhookLookupFailed, match=reason):
        check(HOST, resolver)


def test_a_lookup_error_fails_closed() -> None:
    def failing(host: str) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(WebhookLookupFailed, match=f"DNS lookup of webhook host {HOST} failed: .*not known"):
        check(HOST, failing)


@pytest.fixture
def hanging() -> Iterator[ssrf.Resolver]:
    """A resolver stub that answers a private address, but only once the test is over."""
    released = threading.Event()

    def resolve(host: str) -> Sequence[str]:
        released.wait(30)
        return ["10.0.0.1"]

    yield resolve
    released.set()


def test_a_lookup_without_an_answer_by_its_deadline_fails_closed(hanging: ssrf.Resolver) -> None:
    started = time.monotonic()
    with pytest.raises(WebhookLookupFailed, match=f"webhook host {HOST} gave no answer within 0.2 s"):
        ssrf.resolve_checked(HOST, bypass_hosts=(), resolver=hanging, timeout_seconds=0.2)
    assert 0.2 <= time.monotonic() - started < 1.0


def test_hanging_lookups_do_not_hold_up_the_lookups_of_other_hosts(hanging: ssrf.Resolver) -> None:
    # More hung lookups than the reference's shared pool had threads (4).
    for _ in range(6):
        with pytest.raises(WebhookLookupFailed):
            ssrf.resolve_checked("slow.example", bypass_hosts=(), resolver=hanging, timeout_seconds=0.05)
    started = time.monotonic()
    addresses = ssrf.resolve_checked(
        HOST, bypass_hosts=(), resolver=answering("8.8.8.8"), timeout_seconds=5.0
    )
    assert ["8.8.8.8"] == [str(address) for address in addresses]
    assert time.monotonic() - started < 1.0


def test_only_http_urls_with_a_host_are_accepted() -> None:
    for url in ("ftp://example.com/", "http:///path", "file:///etc/passwd"):
        with pytest.raises(WebhookUrlRefused, match="must be http"):
            ssrf.check_url(url)
    with pytest.raises(WebhookUrlRefused, match="malformed"):
        ssrf.check_url("http://example.com:99999/")
    assert "example.com" == ssrf.check_url("https://Example.COM/hook").host
