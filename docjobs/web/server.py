"""How ``docjobs web`` runs uvicorn: whose forwarded headers it believes, how long a request may take.

uvicorn closes a kept-alive connection that stays idle, but it waits without limit
for a new connection's first request and for headers that arrive a byte at a time:
a few hundred such connections (a "slowloris") would hold the server's sockets for
ever. :class:`HeadDeadlineProtocol` closes a connection whose next request head
(request line and headers) is not complete within ``NEXT_PRIVATE_JOBS_READ_TIMEOUT_SECONDS``;
the body then has the same time of its own (:mod:`docjobs.web.bodies`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from docjobs.settings import Settings
from docjobs.web import proxies

logger = logging.getLogger(__name__)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments ``docjobs web`` gives ``uvicorn.run`` besides the app, host and port."""
    return {
        # X-Forwarded-For/-Proto are believed from NEXT_PRIVATE_JOBS_TRUSTED_PROXIES only, not
        # from uvicorn's default 127.0.0.1: per-client limits must count real clients.
        **proxies.uvicorn_proxy_options(settings.trusted_proxy_networks),
        "http": with_head_deadline(settings.read_timeout_seconds),
        "log_config": None,  # docjobs' handlers (redacted, one line per record)
        "access_log": False,
    }


class HeadDeadlineProtocol(H11Protocol):
    """:class:`H11Protocol` that closes a connection whose request head is late.

    Set :attr:`head_timeout_seconds` on a subclass (see :func:`with_head_deadline`).
    """

    head_timeout_seconds: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._between_requests():
            self._arm()  # the next request's head starts arriving: its clock runs from here
        super().data_received(data)
        if not self._between_requests():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout_seconds, self._head_too_late)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_late(self) -> None:
        self._head_timer = None
        if self._between_requests() and not self.transport.is_closing():
            logger.debug(  # not INFO: anyone could fill the log with idle connections
                "Closed a connection whose request head took over %.0f s.",
                self.head_timeout_seconds,
                extra={"action": "request_refused", "reason": "slow head"},
            )
            self.transport.close()


def with_head_deadline(seconds: float) -> type[HeadDeadlineProtocol]:
    """The protocol class to give uvicorn (``http=``), closing heads later than ``seconds``."""
    attributes: dict[str, Any] = {"head_timeout_seconds": seconds}
    return type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), attributes)
