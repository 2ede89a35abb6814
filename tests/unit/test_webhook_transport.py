"""The webhook network backend connects to the address the guard checked, looked up once.

The opener stands in for the TCP connect, so nothing here reaches a network: a
refused connection is simulated, an accepted one is one end of a socket pair.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence

import httpcore
import pytest

from docjobs.webhooks import ssrf, transport

HOST = "hooks.example.com"


class Rebinding:
    """A resolver stub whose answer changes after the first lookup, as a rebinding attacker's does."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    def __call__(self, host: str) -> Sequence[str]:
        self.lookups.append(host)
        return self.answers[min(len(self.lookups), len(self.answers)) - 1]


class Opener:
    """Records each connection asked for; refuses those listed, else hands one end of a socket pair."""

    def __init__(self, refusing: frozenset[str] = frozenset()) -> None:
        self.refusing = refusing
        self.asked: list[tuple[str, int]] = []
        self.sockets: list[socket.socket] = []

    def __call__(self, address: ssrf.IPAddress, port: int, timeout: float) -> socket.socket:
        self.asked.append((str(address), port))
        if str(address) in self.refusing:
            raise ConnectionRefusedError(111, "Connection refused")
        ours, theirs = socket.socketpair()
        self.sockets += [ours, theirs]
        return ours


@pytest.fixture
def opener() -> Iterator[Opener]:
    made = Opener(refusing=frozenset({"8.8.8.8"}))
    yield made
    for sock in made.sockets:
        sock.close()


def backend(resolver: ssrf.Resolver, opener: Opener, seconds: float = 5.0) -> transport.GuardedBackend:
    return transport.GuardedBackend(
        bypass_hosts=(), resolver=resolver, deadline=transport.Deadline(seconds), opener=opener
    )


def test_a_rebinding_answer_is_never_looked_up_the_connection_goes_to_the_checked_address(
    opener: Opener,
) -> None:
    resolver = Rebinding(["8.8.8.8"], ["127.0.0.1"])
    with pytest.raises(httpcore.ConnectError, match="8.8.8.8: Connection refused"):
        backend(resolver, opener).connect_tcp(HOST, 443, timeout=5.0)
    assert [HOST] == resolver.lookups
    assert [("8.8.8.8", 443)] == opener.asked  # never 127.0.0.1


def test_the_checked_addresses_are_tried_in_order_and_the_first_to_accept_is_used(opener: Opener) -> None:
    resolver = Rebinding(["8.8.8.8", "2606:4700:4700::1111"], ["127.0.0.1"])
    stream = backend(resolver, opener).connect_tcp(HOST, 443, timeout=5.0)
    assert isinstance(stream, transport.DeadlineStream)
    assert [("8.8.8.8", 443), ("2606:4700:4700::1111", 443)] == opener.asked
    assert [HOST] == resolver.lookups


def test_a_refused_host_never_reaches_a_connection(opener: Opener) -> None:
    resolver = Rebinding(["8.8.8.8", "100.64.0.1"])
    with pytest.raises(ssrf.WebhookUrlRefused, match="resolves to 100.64.0.1, which is not a public"):
        backend(resolver, opener).connect_tcp(HOST, 443, timeout=5.0)
    assert [] == opener.asked


def test_nothing_is_looked_up_or_connected_once_the_deadline_has_passed(opener: Opener) -> None:
    resolver = Rebinding(["8.8.8.8"])
    with pytest.raises(httpcore.ConnectTimeout, match="0 s deadline passed while looking up"):
        backend(resolver, opener, seconds=0).connect_tcp(HOST, 443, timeout=5.0)
    assert ([], []) == (resolver.lookups, opener.asked)


def test_a_stream_read_ends_at_the_deadline_whatever_timeout_httpcore_asks_for() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        stream = transport.DeadlineStream(ours, transport.Deadline(0.2))
        theirs.sendall(b"a")
        assert b"a" == stream.read(10, timeout=60.0)
        with pytest.raises(httpcore.ReadTimeout, match="0.2 s deadline passed while reading the response"):
            stream.read(10, timeout=60.0)
