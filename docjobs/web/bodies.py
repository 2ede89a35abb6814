"""Every request's body read in full, within a size cap and a deadline, before any route runs.

Starlette reads a body when a route asks for it, as much as the client sends, for
as long as the client takes. Routes that run before they read (the Inngest adapter,
the board's access checks) would then do their work for a 150 MB unsigned body, or
hold a connection for a body sent one byte a second. This middleware reads the body
first, so no route sees an oversize or late one:

- a declared ``Content-Length`` over the cap gets 413 before a byte is read;
- an undeclared (chunked) body gets 413 as soon as it passes the cap;
- a body not complete within the deadline gets 408;
- a client that goes away mid-body is dropped quietly (no traceback);
- a path with a control character (``%00``, ``%0A`` ...) gets 400: no route takes one,
  and log lines and SQL text must never see them.

The routes then read the body from memory; routes with a smaller limit of their own
(the self-trigger's 16 KiB) still apply it.
"""

from __future__ import annotations

import asyncio
import logging
import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

#: C0 controls and DEL: never part of a route or an id.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BoundedBodies:
    """ASGI middleware: buffers each HTTP request's body under ``max_bytes`` within ``timeout_seconds``.

    Args:
        app: The app it wraps.
        max_bytes: The largest body read (``NEXT_PRIVATE_JOBS_MAX_BODY_BYTES``).
        timeout_seconds: How long the whole body may take to arrive
            (``NEXT_PRIVATE_JOBS_READ_TIMEOUT_SECONDS``).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _CONTROL.search(scope.get("path", "")):
            await _refuse(send, 400, "The path holds a control character.")
            return
        declared = _declared_length(scope)
        if declared == -1:
            await _refuse(send, 400, "Content-Length is not a number.")
            return
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, 413, f"The request body is over {self.max_bytes} bytes.")
            return
        body = await self._read(scope, receive, send)
        if body is None:
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or ``None`` once a refusal is sent (or the client left)."""
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_seconds
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                logger.info(
                    "Refused %s %r: its body took over %.0f s.",
                    scope.get("method"),
                    scope.get("path"),
                    self.timeout_seconds,
                    extra={"action": "request_refused", "reason": "slow body"},
                )
                await _refuse(
                    send, 408, f"The request body did not arrive within {self.timeout_seconds:g} s."
                )
                return None
            if message["type"] == "http.disconnect":
                logger.debug("The client left before sending its whole body.")
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(send, 413, f"The request body is over {self.max_bytes} bytes.")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def read_within(request: Request, limit: int) -> bytes | None:
    """The request's body, or ``None`` when it is longer than ``limit`` (a route's own cap).

    The middleware has the body in memory already, under the app's cap; Starlette keeps
    it once read, so a form parsed after this reads it from there.
    """
    declared = _declared_length(request.scope)
    if declared is not None and declared > limit:
        return None
    body = await request.body()
    return None if len(body) > limit else body


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length header's value; ``None`` when absent, -1 when not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body out once, then waits for the disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, status: int, reason: str) -> None:
    """One plain-text line; the connection closes, so no unread body is left on it."""
    content = (reason + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(content)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
