"""Who may use the board, and proof that a POST comes from the board's own pages.

Open to all only when ``NODE_ENV=development``. Otherwise a page needs the session
of a signed-in ADMIN user and the JSON API also takes
``Authorization: Bearer $NEXT_PRIVATE_JOBS_BOARD_TOKEN``. Host apps may add their own
rule with an ``authorize`` hook.

Sessions are the server's (issue 17). Signing in stores the sha256 of a random
token in ``board_session``; the cookie (signed, HttpOnly, SameSite=Strict) carries
the token and the CSRF token. Every request looks the session up, and it is live
only until it expires, is signed out, or its user stops being an enabled ADMIN with
the password they signed in with (changed by ``docjobs admin create-user`` or by the
host app alike): every copy of the cookie stops working then. Signing in always
starts a new session, so a cookie planted before sign-in is worth nothing after it.
A visitor who has not signed in holds a signed cookie with a CSRF token only: the
sign-in page writes nothing to the database.

Sign-in attempts are counted per (account, client) and per client, the client being
the peer address or, behind a proxy in ``NEXT_PRIVATE_JOBS_TRUSTED_PROXIES``, the
address it forwards (:mod:`docjobs.web.proxies`). Someone guessing one
admin's password is slowed down without locking that admin out elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from docjobs.db.board import BoardStore
from docjobs.web import proxies

if TYPE_CHECKING:
    import argon2

SESSION_COOKIE = "docjobs_board"
#: A session ends this long after sign-in, however it is used.
SESSION_MAX_AGE_SECONDS = 12 * 3600
#: The most sessions one user holds; signing in again ends the oldest beyond it.
MAX_SESSIONS_PER_USER = 20
#: Sign-in attempts allowed per window for one account from one client, and from one client.
SIGN_IN_LIMIT_PER_ACCOUNT_AND_CLIENT = 5
SIGN_IN_LIMIT_PER_CLIENT = 20
SIGN_IN_WINDOW_SECONDS = 15 * 60
#: The longest email address (RFC 5321's path limit) and password sign-in reads.
MAX_EMAIL_CHARS = 254
MAX_PASSWORD_CHARS = 1024
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


@dataclass
class Session:
    """What the board's cookie holds.

    Attributes:
        csrf: The token the board's forms and API calls carry back.
        token: The server-side session's token (its hash is the row's key); ``None``
            before sign-in.
        new: Not in a cookie yet: the answer sets it.
    """

    csrf: str
    token: str | None = None
    new: bool = False


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
        store: Users, sessions and sign-in attempts.
        secret: Signs session cookies.
        development: ``NODE_ENV=development``: open to all.
        token: The JSON API's bearer token, if any.
        cookie_path: Where the board is served; the cookie goes nowhere else.
        trusted_proxies: Peers whose forwarded client address and scheme are believed.
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
        trusted_proxies: Sequence[proxies.Network] = (),
        authorize: AuthorizeHook | None = None,
    ) -> None:
        self.store = store
        self.cookie_path = cookie_path
        self.development = development
        self.trusted_proxies = tuple(trusted_proxies)
        self._token = token.encode() if token else None
        self._authorize = authorize
        self._cookies = URLSafeTimedSerializer(secret, salt="docjobs-board-session")
        self._decoy: str | None = None

    @cached_property
    def _hasher(self) -> argon2.PasswordHasher:
        # argon2 loads at the first sign-in: a board opened with the token never needs it.
        import argon2

        return argon2.PasswordHasher()

    # Who is asking.

    def session(self, request: Request) -> Session:
        """The request's session as its cookie says, or a new anonymous one (not yet saved)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            try:
                data = self._cookies.loads(cookie, max_age=SESSION_MAX_AGE_SECONDS)
            except BadSignature:
                data = None
            if isinstance(data, dict) and isinstance(data.get("csrf"), str):
                token = data.get("sid")
                return Session(data["csrf"], token if isinstance(token, str) else None)
        return Session(secrets.token_urlsafe(32), new=True)

    def client(self, request: Request) -> str:
        """The client's address, as sign-in limits count it."""
        return proxies.client_address(request.scope, self.trusted_proxies)

    def viewer(self, request: Request, session: Session, *, api: bool) -> Viewer:
        """Who the request is, if they may use the board.

        Raises:
            Denied: 401 for nobody known or an ended session, 403 when the host app's hook refuses.
        """
        viewer = self._identify(request, session, api=api)
        if self._authorize is not None and not self._authorize(request, viewer):
            raise Denied(403, "not allowed by this application's board rule")
        return viewer

    def _identify(self, request: Request, session: Session, *, api: bool) -> Viewer:
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
            return Viewer("development", session.csrf)
        if session.token is None:
            raise Denied(401, "sign in first")
        user = self.store.session_user(_digest(session.token))
        if user is None:
            raise Denied(401, "the session has ended (signed out, expired or the account changed); sign in")
        return Viewer(user["email"], session.csrf)

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

    # Signing in and out.

    def sign_in(self, email: str, password: str, client: str) -> Session:
        """Check a sign-in and start a session for it (a new CSRF token too).

        Args:
            email: As typed (at most ``MAX_EMAIL_CHARS``; the caller checks).
            password: As typed (at most ``MAX_PASSWORD_CHARS``).
            client: The client's address (:meth:`client`).

        Raises:
            Denied: 429 after too many attempts from this client, 401 for a wrong email
                or password, 403 for a user who is not an admin.
        """
        email = email.strip().lower()
        pair = f"account {client} {email}"
        if (
            self.store.count_attempt(pair, SIGN_IN_WINDOW_SECONDS) > SIGN_IN_LIMIT_PER_ACCOUNT_AND_CLIENT
            or self.store.count_attempt(f"client {client}", SIGN_IN_WINDOW_SECONDS) > SIGN_IN_LIMIT_PER_CLIENT
        ):
            raise Denied(429, "too many sign-in attempts; try again in a few minutes")
        user = self.store.admin_by_email(email) if email else None
        stored = user["password_hash"] if user is not None and user["password_hash"] else None
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            self._hasher.verify(stored or self._decoy_hash(), password)
        except (VerificationError, InvalidHashError):
            raise Denied(401, "wrong email or password") from None
        if user is None or stored is None or user["disabled"]:
            raise Denied(401, "wrong email or password")
        if ADMIN_ROLE not in user["roles"]:
            raise Denied(403, "the board is for admins")
        # Guessing is what the limits are for: an admin who signs in often is not locked out.
        self.store.clear_attempts(pair)
        self.store.refund_attempt(f"client {client}", SIGN_IN_WINDOW_SECONDS)
        token = secrets.token_urlsafe(32)
        started = self.store.start_session(
            _digest(token),
            int(user["id"]),
            stored,
            lifetime_seconds=SESSION_MAX_AGE_SECONDS,
            keep=MAX_SESSIONS_PER_USER,
        )
        if not started:  # the password, role or account changed since it was read
            raise Denied(401, "wrong email or password")
        return Session(secrets.token_urlsafe(32), token, new=True)

    def sign_out(self, session: Session) -> None:
        """End the session on the server: every copy of its cookie stops working."""
        if session.token is not None:
            self.store.end_session(_digest(session.token))

    def _decoy_hash(self) -> str:
        """Checked when an email is unknown, so that answer takes as long as a wrong password.

        Made at the first sign-in, not at start-up: a hash costs 64 MiB and tens of ms.
        """
        if self._decoy is None:
            self._decoy = self._hasher.hash(secrets.token_urlsafe(16))
        return self._decoy

    # Cookies.

    def save(self, request: Request, response: Response, session: Session) -> None:
        data = {"csrf": session.csrf}
        if session.token is not None:
            data["sid"] = session.token
        response.set_cookie(
            SESSION_COOKIE,
            self._cookies.dumps(data),
            max_age=SESSION_MAX_AGE_SECONDS,
            path=self.cookie_path,
            httponly=True,
            samesite="strict",
            secure=proxies.is_https(request.scope, self.trusted_proxies),
        )

    def forget(self, request: Request, response: Response) -> None:
        # The same attributes as the cookie it replaces: a browser may refuse to overwrite a
        # Secure cookie with one that is not.
        response.delete_cookie(
            SESSION_COOKIE,
            path=self.cookie_path,
            httponly=True,
            samesite="strict",
            secure=proxies.is_https(request.scope, self.trusted_proxies),
        )


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (memory-hard; argon2-cffi's default parameters)."""
    import argon2

    return argon2.PasswordHasher().hash(password)


def _digest(token: str) -> bytes:
    """What the server keeps of a session token: a leaked table signs nobody in."""
    return hashlib.sha256(token.encode()).digest()
