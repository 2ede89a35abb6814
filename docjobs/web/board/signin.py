"""Signing in to the board and out of it, and the limit on password checks run at once.

The sign-in form carries the visitor's CSRF token (:mod:`docjobs.web.board.access`
counts the attempts per account and client); signing in starts a new session, whose
cookie replaces the visitor's.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from docjobs.web.board import forms, inputs
from docjobs.web.board.access import MAX_EMAIL_CHARS, MAX_PASSWORD_CHARS, Denied, Session
from docjobs.web.board.actions import ActionError
from docjobs.web.board.board import SECURITY_HEADERS, Board

logger = logging.getLogger(__name__)

#: Sign-in password checks run at once (each holds 64 MiB), and how long one waits for its turn.
MAX_PASSWORD_CHECKS = 2
PASSWORD_CHECK_WAIT_SECONDS = 10.0


class SignIn:
    """The sign-in page and form, and sign-out.

    Args:
        board: The board's parts.
    """

    def __init__(self, board: Board) -> None:
        self.board = board
        self.access = board.access
        self._password_checks = asyncio.Semaphore(MAX_PASSWORD_CHECKS)

    async def sign_in(self, request: Request) -> Response:
        """The sign-in form (GET), and signing in with it (POST): to the overview, or the form again."""
        board = self.board
        session = self.access.session(request)
        error = None
        status = 200
        if request.method == "POST":
            email = ""
            try:
                form = await forms.form(request)
                if not hmac.compare_digest(inputs.form_field(form, "csrf").encode(), session.csrf.encode()):
                    raise Denied(403, "the form's CSRF token is missing or wrong; reload the page")
                email = inputs.form_field(form, "email", max_chars=MAX_EMAIL_CHARS)
                password = inputs.form_field(form, "password", max_chars=MAX_PASSWORD_CHARS, lines=True)
                client = self.access.client(request)
                fresh = await self._checking_passwords(self.access.sign_in, email, password, client)
            except (Denied, ActionError) as refused:
                error, status = refused.reason, refused.status
                if isinstance(refused, Denied) and refused.status == 401:  # counted: at most 20 per client
                    logger.warning(
                        "Board sign-in refused for %r from %s: %s",
                        email,
                        self.access.client(request),
                        refused.reason,
                        extra={"action": "board_sign_in_refused", "status": refused.status},
                    )
            else:
                response = RedirectResponse(f"{board.base}/", status_code=303)
                return board.finish(request, response, fresh)  # its cookie replaces the visitor's
        html = board.templates.get_template("sign_in.html").render(
            base=board.base, viewer=None, csrf=session.csrf, error=error
        )
        return board.finish(request, HTMLResponse(html, status_code=status), session)

    async def _checking_passwords(self, check: Callable[..., Session], *args: Any) -> Session:
        """Run a sign-in's password check, at most ``MAX_PASSWORD_CHECKS`` at a time.

        An argon2 check holds 64 MiB for tens of milliseconds: twenty parallel guesses
        (within the per-client limit) took the process past 1 GiB. Waiting here holds
        no thread, so the rest of the app keeps its thread pool.

        Raises:
            Denied: 503 when no check could start within ``PASSWORD_CHECK_WAIT_SECONDS``.
        """
        try:
            async with asyncio.timeout(PASSWORD_CHECK_WAIT_SECONDS):
                await self._password_checks.acquire()
        except TimeoutError:
            raise Denied(503, "too many sign-ins at once; try again in a moment") from None
        try:
            return await run_in_threadpool(check, *args)
        finally:
            self._password_checks.release()

    async def sign_out(self, request: Request) -> Response:
        """End the session (POST with its CSRF token) and go to the sign-in page."""
        session = self.access.session(request)
        try:
            form = await forms.form(request)
            if not hmac.compare_digest(inputs.form_field(form, "csrf").encode(), session.csrf.encode()):
                raise Denied(403, "CSRF token missing")
        except (Denied, ActionError) as refused:
            return self.board.finish(request, self.board.denied_page(refused), session)
        await run_in_threadpool(self.access.sign_out, session)
        response = RedirectResponse(f"{self.board.base}/sign-in", status_code=303)
        self.access.forget(request, response)
        response.headers.update(SECURITY_HEADERS)
        return response
