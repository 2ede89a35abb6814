"""The board's parts, and the access check, answer headers and timing around every handler.

A handler gets a :class:`Context` only once :class:`~docjobs.web.board.access.BoardAccess`
has let the viewer in; a refusal becomes the sign-in redirect or a message page (pages)
or a JSON error (API). Every answer carries ``SECURITY_HEADERS``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from docjobs import errors
from docjobs import secrets as dev_secrets
from docjobs.db.board import BoardStore
from docjobs.runtime import Runtime
from docjobs.web.board.access import AuthorizeHook, BoardAccess, Denied, Session, Viewer
from docjobs.web.board.actions import ActionError, BoardActions

logger = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}

Endpoint = Callable[[Request], Awaitable[Response]]


class Context:
    """One request to the board: who asks, their session, and the board's parts."""

    def __init__(self, board: Board, request: Request, session: Session, viewer: Viewer) -> None:
        self.board = board
        self.request = request
        self.session = session
        self.viewer = viewer


Handler = Callable[[Context], Awaitable[Response]]


class Board:
    """The board's parts over a runtime with a database, and the access around each handler.

    Args:
        runtime: The process's runtime.
        base: The board's URL path (base path included).
        templates: The pages' template environment (:func:`docjobs.web.board.pages.environment`).
        authorize: A host app's extra access rule.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        base: str,
        templates: Environment,
        authorize: AuthorizeHook | None = None,
    ) -> None:
        self.runtime = runtime
        self.base = base
        self.templates = templates
        self.store = BoardStore(runtime.require_database())
        self.actions = BoardActions(runtime, self.store)
        settings = runtime.settings
        token = settings.board_token.get_secret_value() if settings.board_token else None
        self.access = BoardAccess(
            self.store,
            secret=_session_secret(runtime),
            development=settings.is_development,
            token=token,
            cookie_path=base,
            trusted_proxies=settings.trusted_proxy_networks,
            authorize=authorize,
        )

    def page_endpoint(self, handler: Handler) -> Endpoint:
        """``handler`` as a page: a viewer who is not signed in is sent to sign in."""

        async def endpoint(request: Request) -> Response:
            request.state.started = time.perf_counter()
            session = self.access.session(request)
            try:
                viewer = await run_in_threadpool(self.access.viewer, request, session, api=False)
                response = await handler(Context(self, request, session, viewer))
            except Denied as denied:
                if denied.status == 401:
                    response = RedirectResponse(f"{self.base}/sign-in", status_code=303)
                else:
                    response = self.denied_page(denied)
            except ActionError as refused:
                response = self.denied_page(refused, _title(request, refused))
            return self.finish(request, response, session)

        return endpoint

    def api_endpoint(self, handler: Handler) -> Endpoint:
        """``handler`` as a JSON endpoint: a refusal is ``{"error": ...}`` with its status."""

        async def endpoint(request: Request) -> Response:
            request.state.started = time.perf_counter()
            session = self.access.session(request)
            try:
                viewer = await run_in_threadpool(self.access.viewer, request, session, api=True)
                response = await handler(Context(self, request, session, viewer))
            except (Denied, ActionError) as refused:
                response = json_response({"error": refused.reason}, refused.status)
            return self.finish(request, response, session)

        return endpoint

    def finish(self, request: Request, response: Response, session: Session) -> Response:
        """``response`` with the security headers, its timing, and a new session's cookie."""
        response.headers.update(SECURITY_HEADERS)
        started = getattr(request.state, "started", None)
        if started is not None:  # how long the board took, for browsers' dev tools and `make bench`
            response.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        if session.new:
            self.access.save(request, response, session)
        return response

    def denied_page(self, denied: Denied | ActionError, title: str = "Not allowed") -> Response:
        """A page saying why the request was refused, with its status."""
        html = self.templates.get_template("message.html").render(
            base=self.base, viewer=None, title=title, message=denied.reason
        )
        return HTMLResponse(html, status_code=denied.status)


def _title(request: Request, refused: ActionError) -> str:
    """A refusal page's heading: its own (a bad filter), else what the request was."""
    if refused.title is not None:
        return refused.title
    if request.method == "POST":
        return "Not done"
    return "Not found" if refused.status == 404 else "Cannot show this"


def json_response(data: Any, status: int = 200) -> Response:
    """``data`` as the board's JSON (datetimes and other values as text)."""
    return Response(
        orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS),
        status_code=status,
        media_type="application/json",
    )


def _session_secret(runtime: Runtime) -> bytes:
    try:
        key = dev_secrets.secondary_key(runtime.settings)
    except errors.SettingsError:
        # Sessions then last only as long as this process; the token API is unaffected.
        logger.warning(
            "NEXT_PRIVATE_ENCRYPTION_SECONDARY_KEY is unset: board sign-ins end when this process stops."
        )
        return secrets.token_bytes(32)
    return hmac.new(key, b"docjobs board sessions", hashlib.sha256).digest()
