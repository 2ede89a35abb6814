"""Who may use the board, and proof that a POST comes from the board's own pages.

Open to all only when ``NODE_ENV=development``. Otherwise a page needs the session
of a signed-in ADMIN user (other users get 403) and the JSON API also takes
``Authorization: Bearer $NEXT_PRIVATE_JOBS_BOARD_TOKEN``. Host apps may add their own
rule with an ``authorize`` hook. The session is a signed, HttpOnly, SameSite=Strict
cookie holding the user id and the CSRF token; signing in always starts a new one,
so a session planted before sign-in is worth nothing after it.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import argon2
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from docjobs.db.board import BoardStore

SESSION_COOKIE = "docjobs_board"
#: A session lasts this long after sign-in.
SESSION_MAX_AGE_SECONDS = 12 * 3600
#: Sign-in attempts allowed per window, per email and per client address.
SIGN_IN_LIMIT_PER_EMAIL = 5
SIGN_IN_LIMIT_PER_CLIENT = 20
SIGN_IN_WINDOW_SECONDS = 15 * 60
#: The role that may use the board.
ADMIN_ROLE = "ADMIN"


@dataclass(frozen=True)
class Viewer:
    """Who is asking.

    Attributes:
        who: The user's email, ``token`` or ``development``; what the audit log records.
        csrf: The token POSTs must carry; ``None`` for bearer-token requests, which
            carry no cookie a forged request could ride on.
    """

    who: str
    csrf: str | None


#: A host app's rule: ``False`` turns a request away with 403.
AuthorizeHook = Callable[[Request, Viewer], bool]


class Denied(Exception):
    """The request may not go on: 401 (unknown), 403 (known, not allowed) or 429."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BoardAccess:
    """Decides who a request is and whether it may go on.

    Args:
        store: Users and sign-in attempts.
        secret: Signs session cookies.
        development: ``NODE_ENV=development``: open to all.
        token: The JSON API's bearer token, if any.
        cookie_path: Where the board is served; the cookie goes nowhere else.
        authorize: A host app's extra rule.
    """

    def __init__(
        self,
        store: BoardStore,
        *,
        secret: bytes,
        development: bool,
        token: str | None,
        cookie_path: str,
        authorize: AuthorizeHook | None = None,
    ) -> None:
        self.store = store
        self.cookie_path = cookie_path
        self.development = development
        self._token = token.encode() if token else None
        self._authorize = authorize
        self._sessions = URLSafeTimedSerializer(secret, salt="docjobs-board-session")
        self._hasher = argon2.PasswordHasher()
        self._decoy: str | None = None

    # Who is asking.

    def session(self, request: Request) -> dict[str, Any]:
        """The request's session (``uid``, ``csrf``), or a new anonymous one."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            try:
                data = self._sessions.loads(cookie, max_age=SESSION_MAX_AGE_SECONDS)
            except BadSignature:
                data = None
            if isinstance(data, dict) and isinstance(data.get("csrf"), str):
                return data
        return {"uid": None, "csrf": secrets.token_urlsafe(32), "new": True}

    def viewer(self, request: Request, session: dict[str, Any], *, api: bool) -> Viewer:
        """Who the request is, if they may use the board.

        Raises:
            Denied: 401 for nobody known, 403 for a user who is not an admin or whom the hook refuses.
        """
        viewer = self._identify(request, session, api=api)
        if self._authorize is not None and not self._authorize(request, viewer):
            raise Denied(403, "not allowed by this application's board rule")
        return viewer

    def _identify(self, request: Request, session: dict[str, Any], *, api: bool) -> Viewer:
        authorization = request.headers.get("authorization", "")
        if api and authorization:
            scheme, _, presented = authorization.partition(" ")
            if (
                scheme.lower() == "bearer"
                and self._token is not None
                and hmac.compare_digest(presented.strip().encode(), self._token)
            ):
                return Viewer("token", None)
            raise Denied(401, "the bearer token is not valid")
        if self.development:
            return Viewer("development", session["csrf"])
        user_id = session.get("uid")
        if not isinstance(user_id, int):
            raise Denied(401, "sign in first")
        user = self.store.admin_by_id(user_id)
        if user is None or user["disabled"]:
            raise Denied(401, "sign in first")
        if ADMIN_ROLE not in user["roles"]:
            raise Denied(403, "the board is for admins")
        return Viewer(user["email"], session["csrf"])

    def check_csrf(self, request: Request, viewer: Viewer, submitted: str | None) -> None:
        """Refuse a POST that did not come from the board's own pages.

        Raises:
            Denied: 403.
        """
        if viewer.csrf is None:  # a bearer token: no cookie a forged request could carry
            return
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise Denied(403, "cross-site request refused")
        if not submitted or not hmac.compare_digest(submitted.encode(), viewer.csrf.encode()):
            raise Denied(403, "the form's CSRF token is missing or wrong; reload the page")

    # Sign-in.

    def sign_in(self, email: str, password: str, client: str) -> int:
        """Check a sign-in; returns the user id.

        Raises:
            Denied: 429 after too many attempts, 401 for a wrong email or password.
        """
        email = email.strip().lower()
        if (
            self.store.count_attempt(f"email:{email}", SIGN_IN_WINDOW_SECONDS) > SIGN_IN_LIMIT_PER_EMAIL
            or self.store.count_attempt(f"client:{client}", SIGN_IN_WINDOW_SECONDS) > SIGN_IN_LIMIT_PER_CLIENT
        ):
            raise Denied(429, "too many sign-in attempts; try again in a few minutes")
        user = self.store.admin_by_email(email) if email else None
        stored = user["password_hash"] if user is not None and user["password_hash"] else None
        try:
            self._hasher.verify(stored or self._decoy_hash(), password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            raise Denied(401, "wrong email or password") from None
        if user is None or stored is None or user["disabled"]:
            raise Denied(401, "wrong email or password")
        # Guessing is what the limit is for: an admin who signs in often is not locked out.
        self.store.clear_attempts(f"email:{email}")
        return int(user["id"])

    def _decoy_hash(self) -> str:
        """Checked when an email is unknown, so that answer takes as long as a wrong password.

        Made at the first sign-in, not at start-up: a hash costs 64 MiB and tens of ms.
        """
        if self._decoy is None:
            self._decoy = self._hasher.hash(secrets.token_urlsafe(16))
        return self._decoy

    # Cookies.

    def new_session(self, user_id: int | None) -> dict[str, Any]:
        """A fresh session (a new CSRF token too): never carry one over across sign-in."""
        return {"uid": user_id, "csrf": secrets.token_urlsafe(32)}

    def save(self, request: Request, response: Response, session: dict[str, Any]) -> None:
        data = {"uid": session.get("uid"), "csrf": session["csrf"]}
        response.set_cookie(
            SESSION_COOKIE,
            self._sessions.dumps(data),
            max_age=SESSION_MAX_AGE_SECONDS,
            path=self.cookie_path,
            httponly=True,
            samesite="strict",
            secure=_is_https(request),
        )

    def forget(self, request: Request, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path=self.cookie_path, httponly=True)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (memory-hard; argon2-cffi's default parameters)."""
    return argon2.PasswordHasher().hash(password)


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
