"""The network backend webhook deliveries use: guarded connections, one total deadline.

httpcore asks a network backend for every TCP connection it opens. This one
resolves the host through the SSRF guard (:func:`ssrf.resolve_checked`) and
connects to an address the guard accepted, so the HTTP client never resolves the
name itself; the URL, the ``Host`` header and TLS (SNI, certificate check) keep
the host name. Environment proxies never apply: httpcore does not read them.

Every socket operation (connect, TLS handshake, each write, each read) gets as
its timeout what is left of the attempt's :class:`Deadline`, so the attempt as a
whole ends by it: a receiver that drips one byte at a time cannot stretch it
(a per-read timeout restarts with every byte). Uses httpcore's public
``NetworkBackend``/``NetworkStream`` interfaces (httpcore 1.x).
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore

from docjobs.webhooks import ssrf

#: Opens a TCP connection to an address already checked; tests pass a recorder.
Opener = Callable[[ssrf.IPAddress, int, float], socket.socket]


class Deadline:
    """The moment by which a whole attempt must end.

    Args:
        seconds: The time the attempt may take, from now.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends_at = time.monotonic() + seconds

    def cap(self, timeout: float | None, expired: type[Exception], doing: str) -> float:
        """The timeout for one operation: ``timeout`` cut to what is left.

        Raises:
            expired: Nothing is left.
        """
        left = self._ends_at - time.monotonic()
        if left <= 0:
            raise expired(self.passed(doing))
        return left if timeout is None else min(timeout, left)

    def passed(self, doing: str) -> str:
        """The message for an attempt stopped by this deadline while ``doing``."""
        return f"the attempt's {self.seconds:g} s deadline passed while {doing}"


def open_tcp(address: ssrf.IPAddress, port: int, timeout: float) -> socket.socket:
    """Connect to ``address`` itself (an IP literal: no name, so no lookup)."""
    sock = socket.create_connection((str(address), port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as httpcore's own backend does
    return sock


class GuardedBackend(httpcore.NetworkBackend):
    """A network backend that connects only to addresses the SSRF guard accepted.

    Args:
        bypass_hosts: Hosts exempt from the address checks.
        resolver: Looks names up (once per connection).
        deadline: The attempt's total deadline.
        opener: Opens the TCP connection to a checked address.
    """

    def __init__(
        self,
        *,
        bypass_hosts: Collection[str],
        resolver: ssrf.Resolver,
        deadline: Deadline,
        opener: Opener = open_tcp,
    ) -> None:
        self._bypass_hosts = bypass_hosts
        self._resolver = resolver
        self._deadline = deadline
        self._opener = opener

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Resolve ``host`` through the guard and connect to the first checked address that answers.

        Raises:
            ssrf.WebhookUrlRefused: The guard refused the host.
            ssrf.WebhookLookupFailed: The lookup failed or was too slow.
            httpcore.ConnectTimeout: The deadline passed.
            httpcore.ConnectError: No checked address accepted the connection.
        """
        lookup_seconds = self._deadline.cap(
            ssrf.LOOKUP_TIMEOUT_SECONDS, httpcore.ConnectTimeout, f"looking up {host}"
        )
        addresses = ssrf.resolve_checked(
            host, bypass_hosts=self._bypass_hosts, resolver=self._resolver, timeout_seconds=lookup_seconds
        )
        failures: list[str] = []
        for address in addresses:
            doing = f"connecting to {address} port {port}"
            with _mapped(self._deadline, doing, httpcore.ConnectTimeout, httpcore.ConnectError):
                try:
                    sock = self._opener(
                        address, port, self._deadline.cap(timeout, httpcore.ConnectTimeout, doing)
                    )
                except ConnectionError as exc:  # refused or reset: try the next address
                    failures.append(f"{address}: {exc.strerror or exc}")
                    continue
                for option in socket_options or ():
                    sock.setsockopt(*option)
            return DeadlineStream(sock, self._deadline)
        raise httpcore.ConnectError(f"could not connect to {host} port {port} ({'; '.join(failures)})")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        """Webhooks never reach UNIX sockets.

        Raises:
            ssrf.WebhookUrlRefused: Always.
        """
        raise ssrf.WebhookUrlRefused("webhooks do not connect to UNIX sockets")


class DeadlineStream(httpcore.NetworkStream):
    """A socket whose every operation ends by the attempt's deadline."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read up to ``max_bytes``; ``b""`` at the end of the stream."""
        doing = "reading the response"
        with _mapped(self._deadline, doing, httpcore.ReadTimeout, httpcore.ReadError):
            self._sock.settimeout(self._deadline.cap(timeout, httpcore.ReadTimeout, doing))
            return self._sock.recv(max_bytes)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send all of ``buffer``, each send bounded by what is left of the deadline."""
        doing = "sending the request"
        with _mapped(self._deadline, doing, httpcore.WriteTimeout, httpcore.WriteError):
            view = memoryview(buffer)
            while view:
                self._sock.settimeout(self._deadline.cap(timeout, httpcore.WriteTimeout, doing))
                view = view[self._sock.send(view) :]

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        """Wrap the connection in TLS for ``server_hostname`` (SNI and certificate check).

        The standard library bounds the whole handshake by the socket's timeout.
        """
        doing = "negotiating TLS"
        try:
            with _mapped(self._deadline, doing, httpcore.ConnectTimeout, httpcore.ConnectError):
                self._sock.settimeout(self._deadline.cap(timeout, httpcore.ConnectTimeout, doing))
                wrapped = ssl_context.wrap_socket(self._sock, server_hostname=server_hostname)
        except BaseException:
            self._sock.close()
            raise
        return DeadlineStream(wrapped, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        """What httpcore asks of a stream: the TLS object, the addresses, readability."""
        if info == "ssl_object" and isinstance(self._sock, ssl.SSLSocket):
            return self._sock  # httpcore only asks it for the negotiated ALPN protocol
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "socket":
            return self._sock
        if info == "is_readable":  # an idle kept-alive connection the server has closed
            return self._sock.fileno() < 0 or bool(select.select([self._sock], [], [], 0)[0])
        return None


@contextmanager
def _mapped(
    deadline: Deadline, doing: str, timed_out: type[Exception], failed: type[Exception]
) -> Iterator[None]:
    """Turn socket errors into httpcore's exceptions, naming what was under way."""
    try:
        yield
    except TimeoutError:
        raise timed_out(deadline.passed(doing)) from None
    except OSError as exc:
        raise failed(f"{doing}: {exc}") from exc
