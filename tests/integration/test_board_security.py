"""The board against an attacker (issue 17): sessions the server can end, sign-in limits
per (account, client) that forwarded headers cannot dodge, and hostile text refused
with 400 naming the field.

Where the client's address matters the app is served on real loopback sockets:
several peers (127.0.0.2, 127.0.0.3) and ``docjobs web`` itself, with uvicorn given
exactly the options ``docjobs web`` gives it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from docjobs_devkit.http import serve
from docjobs_devkit.services import free_port

from docjobs import cli, jobs
from docjobs import logging as docjobs_logging
from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from docjobs.web.board.access import SESSION_COOKIE, hash_password
from tests.support.board import ADMIN, BOARD, TOKEN, Board, add_user, csrf_of, sign_in

NEW_PASSWORD = "a brand new board password"


def _paused(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT paused FROM queue_state WHERE queue = 'default'").fetchone()
    return bool(row and row[0])


def _refused_everywhere(board: Board, copy: httpx.Client, csrf: str) -> None:
    """The copied cookie opens nothing: pages, the API, and CSRF-checked POSTs of both."""
    page = copy.get(f"{BOARD}/")
    assert 303 == page.status_code
    assert page.headers["location"].endswith(f"{BOARD}/sign-in")
    assert 401 == copy.get(f"{BOARD}/api/overview").status_code
    form = copy.post(f"{BOARD}/queues/default/pause", data={"csrf": csrf})
    assert 303 == form.status_code
    assert form.headers["location"].endswith(f"{BOARD}/sign-in")
    api = copy.post(f"{BOARD}/api/queues/default/pause", headers={"x-csrf-token": csrf})
    assert 401 == api.status_code
    assert not _paused(board.database_url)


def _copy_of(board: Board, client: httpx.Client) -> httpx.Client:
    return board.client(cookies={SESSION_COOKIE: client.cookies[SESSION_COOKIE]})


# Sessions the server can end.


def test_a_copied_cookie_stops_working_after_sign_out(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    admin = board.signed_in(*ADMIN)
    csrf = board.csrf(admin)
    copy = _copy_of(board, admin)
    assert 200 == copy.get(f"{BOARD}/").status_code  # the copy works while the session lives
    signed_out = admin.post(f"{BOARD}/sign-out", data={"csrf": csrf})
    assert 303 == signed_out.status_code
    # The cookie is cleared with the attributes it was set with (it was SameSite=Lax).
    cleared = signed_out.headers["set-cookie"].lower()
    assert "max-age=0" in cleared and "samesite=strict" in cleared and "httponly" in cleared
    _refused_everywhere(board, copy, csrf)
    # Signing in again starts a new session; the old cookie stays dead.
    again = board.signed_in(*ADMIN)
    assert 200 == again.get(f"{BOARD}/").status_code
    _refused_everywhere(board, copy, csrf)


@pytest.mark.parametrize("where", ["docjobs admin create-user", "the host app"])
def test_a_new_password_ends_the_sessions_of_the_old_one(
    open_board: Callable[..., Board], environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    board = open_board(worker=False)
    admin = board.signed_in(*ADMIN)
    csrf = board.csrf(admin)
    copy = _copy_of(board, admin)
    assert 200 == copy.get(f"{BOARD}/api/overview").status_code
    if where == "the host app":  # a plain UPDATE: the session is bound to the hash it signed in with
        with psycopg.connect(board.database_url) as conn:
            conn.execute(
                'UPDATE "user" SET password_hash = %s WHERE email = %s',
                (hash_password(NEW_PASSWORD), ADMIN[0]),
            )
    else:
        for name, value in environ.items():  # the board's own settings and database
            monkeypatch.setenv(name, value)
        monkeypatch.setattr("sys.stdin", io.StringIO(f"{NEW_PASSWORD}\n"))
        assert 0 == cli.main(["admin", "create-user", ADMIN[0]])
    _refused_everywhere(board, copy, csrf)
    _refused_everywhere(board, admin, csrf)  # the browser that signed in, too
    assert 401 == sign_in(board.client(), *ADMIN).status_code
    assert 200 == board.signed_in(ADMIN[0], NEW_PASSWORD).get(f"{BOARD}/").status_code


@pytest.mark.parametrize(
    ("change", "undo"),
    [
        ("roles = '{USER}'", "roles = '{ADMIN,USER}'"),
        ("disabled = true", "disabled = false"),
    ],
    ids=["no longer an admin", "disabled"],
)
def test_losing_admin_or_being_disabled_ends_the_session_for_good(
    open_board: Callable[..., Board], change: str, undo: str
) -> None:
    board = open_board(worker=False)
    admin = board.signed_in(*ADMIN)
    csrf = board.csrf(admin)
    copy = _copy_of(board, admin)
    with psycopg.connect(board.database_url) as conn:
        conn.execute(f'UPDATE "user" SET {change} WHERE email = %s', (ADMIN[0],))
    _refused_everywhere(board, copy, csrf)
    with psycopg.connect(board.database_url) as conn:
        conn.execute(f'UPDATE "user" SET {undo} WHERE email = %s', (ADMIN[0],))
    # Made an admin again, they sign in again: the ended session is not revived.
    _refused_everywhere(board, copy, csrf)
    assert 200 == board.signed_in(*ADMIN).get(f"{BOARD}/").status_code


def _session_token(cookie: str) -> str:
    """The token inside the signed cookie (itsdangerous: base64 JSON, then the signature)."""
    payload = cookie.split(".")[0]
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    token: str = data["sid"]
    return token


def test_the_server_keeps_a_hash_of_the_token_and_ends_sessions_at_their_expiry(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(worker=False)
    admin = board.signed_in(*ADMIN)
    token = _session_token(admin.cookies[SESSION_COOKIE])
    with psycopg.connect(board.database_url) as conn:
        rows = conn.execute(
            "SELECT token_hash, extract(epoch FROM expires_at - now()) FROM board_session"
        ).fetchall()
    assert [hashlib.sha256(token.encode()).digest()] == [bytes(row[0]) for row in rows]
    assert 12 * 3600 - 60 < rows[0][1] <= 12 * 3600
    with psycopg.connect(board.database_url) as conn:
        conn.execute("UPDATE board_session SET expires_at = now() - interval '1 second'")
    assert 303 == admin.get(f"{BOARD}/").status_code
    board.signed_in(*ADMIN)  # a sign-in clears expired sessions away
    with psycopg.connect(board.database_url) as conn:
        left = conn.execute("SELECT count(*) FROM board_session WHERE expires_at <= now()").fetchone()
    assert (0,) == left


def test_the_sign_in_page_writes_nothing_for_visitors(open_board: Callable[..., Board]) -> None:
    board = open_board(worker=False)
    for _ in range(5):
        client = board.client()
        assert 200 == client.get(f"{BOARD}/sign-in").status_code
        assert 303 == client.get(f"{BOARD}/").status_code
        assert 200 == client.get(f"{BOARD}/sign-in").status_code
    with psycopg.connect(board.database_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM board_session), (SELECT count(*) FROM rate_limit),"
            " (SELECT count(*) FROM board_audit)"
        ).fetchone()
    assert (0, 0, 0) == counts


# Sign-in limits per (account, client), and who the client is.


@pytest.fixture
def docjobs_web(
    environ: dict[str, str], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., str]]:
    """Run ``docjobs web`` (its own code, settings from the environment) on loopback.

    Only ``uvicorn.run`` is replaced, by a uvicorn server with the options ``docjobs web``
    chose, so the test can stop it; logging is left as pytest set it.
    """
    stops: list[Callable[[], None]] = []

    def start(**overrides: str) -> str:
        for name, value in {**environ, **overrides}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(docjobs_logging, "configure", lambda *args, **kwargs: None)
        ready, stop = threading.Event(), threading.Event()

        def run(app: Any, **options: Any) -> None:
            with serve(app, **options):
                ready.set()
                stop.wait()

        stops.append(stop.set)

        monkeypatch.setattr(uvicorn, "run", run)
        port = free_port()
        argv = ["web", "--no-worker", "--no-cron", "--host", "127.0.0.1", "--port", str(port)]
        thread = threading.Thread(target=cli.main, args=(argv,), daemon=True)
        thread.start()
        stops.append(lambda: thread.join(30))
        assert ready.wait(20), "docjobs web did not start"
        add_user(database_url, *ADMIN, ["ADMIN", "USER"])
        return f"http://127.0.0.1:{port}"

    yield start
    for stop in stops:  # tell the server to exit, then wait for the command to return
        stop()


def _client(url: str, peer: str = "127.0.0.1") -> httpx.Client:
    """A client whose connections come from ``peer`` (any address of 127.0.0.0/8)."""
    transport = httpx.HTTPTransport(local_address=peer)
    return httpx.Client(base_url=url, transport=transport, follow_redirects=False, timeout=10)


def _sign_in(client: httpx.Client, email: str, password: str, forwarded_for: str | None = None) -> int:
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    return sign_in(client, email, password, headers=headers).status_code


def test_guesses_from_one_client_do_not_lock_the_admin_out_elsewhere(
    docjobs_web: Callable[..., str],
) -> None:
    url = docjobs_web()
    with _client(url, "127.0.0.2") as guesser, _client(url, "127.0.0.3") as admin:
        guesses = [_sign_in(guesser, ADMIN[0], f"guess {n}") for n in range(6)]
        assert [401] * 5 + [429] == guesses
        assert 429 == _sign_in(guesser, *ADMIN)  # the guesser stays stopped, right password or not
        assert 303 == _sign_in(admin, *ADMIN)
        assert 200 == admin.get(f"{BOARD}/").status_code


def test_rotating_x_forwarded_for_from_an_untrusted_peer_is_one_client(
    docjobs_web: Callable[..., str],
) -> None:
    url = docjobs_web()  # NEXT_PRIVATE_JOBS_TRUSTED_PROXIES unset: loopback is not trusted either
    with _client(url) as guesser:
        statuses = [_sign_in(guesser, ADMIN[0], "guess", f"198.51.100.{n}") for n in range(6)]
        assert [401] * 5 + [429] == statuses
        # Other accounts, each from a "new" forwarded address: still one client, 20 attempts.
        others = [_sign_in(guesser, f"user{n}@example.com", "guess", f"203.0.113.{n}") for n in range(16)]
        assert [401] * 15 + [429] == others


@pytest.mark.parametrize("served_by", ["docjobs web", "a host app's server"])
def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
    docjobs_web: Callable[..., str],
    make_runtime: Callable[..., Runtime],
    database_url: str,
    served_by: str,
) -> None:
    trusted = {"NEXT_PRIVATE_JOBS_TRUSTED_PROXIES": "127.0.0.1"}
    if served_by == "docjobs web":
        _counts_the_forwarded_client(docjobs_web(**trusted))
        return
    # A host app's server that does not read forwarded headers itself: the board does.
    app = create_app(make_runtime(**trusted), embedded_worker=False)
    add_user(database_url, *ADMIN, ["ADMIN", "USER"])
    port = free_port()
    with serve(app, port=port, proxy_headers=False):
        _counts_the_forwarded_client(f"http://127.0.0.1:{port}")


def _counts_the_forwarded_client(url: str) -> None:
    with _client(url) as proxy:
        assert [401] * 5 + [429] == [_sign_in(proxy, ADMIN[0], "guess", "203.0.113.7") for _ in range(6)]
        assert 429 == _sign_in(proxy, *ADMIN, "203.0.113.7")
        assert 303 == _sign_in(proxy, *ADMIN, "203.0.113.8")  # another client behind the same proxy
        # The proxy appends what it saw; what the client wrote before that is not believed.
        assert 429 == _sign_in(proxy, ADMIN[0], "guess", "192.0.2.1, 203.0.113.7")


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"], ids=["untrusted peer", "trusted proxy"])
def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(
    make_runtime: Callable[..., Runtime], trusted: str
) -> None:
    app = create_app(make_runtime(NEXT_PRIVATE_JOBS_TRUSTED_PROXIES=trusted), embedded_worker=False)
    port = free_port()
    with (
        serve(app, port=port, proxy_headers=False),
        _client(f"http://127.0.0.1:{port}") as client,
    ):
        answer = client.get(f"{BOARD}/sign-in", headers={"x-forwarded-proto": "https"})
    assert 200 == answer.status_code
    assert bool(trusted) == ("secure" in answer.headers["set-cookie"].lower())


def test_docjobs_web_believes_forwarded_headers_from_the_trusted_proxies_only(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.append(options))
    monkeypatch.setattr(docjobs_logging, "configure", lambda *args, **kwargs: None)
    for trusted in ("", "10.0.0.0/8, 192.0.2.7"):
        for name, value in {**environ, "NEXT_PRIVATE_JOBS_TRUSTED_PROXIES": trusted}.items():
            monkeypatch.setenv(name, value)
        assert 0 == cli.main(["web", "--no-worker", "--no-cron"])
    assert False is seen[0]["proxy_headers"]  # uvicorn's default would trust 127.0.0.1
    assert (True, ["10.0.0.0/8", "192.0.2.7/32"]) == (
        seen[1]["proxy_headers"],
        seen[1]["forwarded_allow_ips"],
    )


# Hostile text: 400 naming the field, never a 500 or a 503.


def test_nul_in_filters_ids_queues_and_form_fields_is_refused_naming_the_field(
    open_board: Callable[..., Board],
) -> None:
    board = open_board(worker=False)
    message = jobs.trigger("test.record", {"key": "kept"}, delay=3600)
    admin = board.signed_in(*ADMIN)
    csrf = board.csrf(admin)
    api = board.client(headers={"authorization": f"Bearer {TOKEN}"})
    for name in ("q", "queue", "job", "state", "before"):
        answer = api.get(f"{BOARD}/api/jobs", params={name: "a\x00b"})
        assert 400 == answer.status_code, (name, answer.text)
        assert f"the query parameter '{name}' holds a control character (U+0000)" in answer.json()["error"]
        assert 400 == admin.get(f"{BOARD}/jobs", params={name: "a\x00b"}).status_code
    # The app refuses NUL in any path before a route runs; the board names the field for
    # the controls that get that far (U+0085, a C1 control).
    for client, method, path in (
        (api, "GET", "/api/jobs/a%00b"),
        (admin, "GET", "/jobs/a%00b"),
        (api, "POST", "/api/queues/a%00b/pause"),
    ):
        assert 400 == client.request(method, f"{BOARD}{path}").status_code, path
    for client, path in ((api, "/api/jobs/a%C2%85b"), (admin, "/jobs/a%C2%85b")):
        answer = client.get(f"{BOARD}{path}")
        assert 400 == answer.status_code, path
        assert "the job id in the path holds a control character (U+0085)" in answer.text
    queue = api.post(f"{BOARD}/api/queues/a%C2%85b/pause")
    assert (400, "the queue in the path holds a control character (U+0085), which it cannot") == (
        queue.status_code,
        queue.json()["error"],
    )
    cancel = admin.post(
        f"{BOARD}/jobs/{message.message_id}/cancel", data={"csrf": csrf, "confirm": "ye\x00s"}
    )
    assert 400 == cancel.status_code
    assert "the form field &#39;confirm&#39; holds a control character" in cancel.text
    trigger = admin.post(f"{BOARD}/trigger", data={"csrf": csrf, "job": "test.record\x00", "payload": "{}"})
    assert 400 == trigger.status_code
    bulk = api.post(f"{BOARD}/api/bulk", json={"action": "delete", "filter": {"queue": "a\x1bb"}})
    assert (400, "the JSON field 'filter.queue' holds a control character (U+001B), which it cannot") == (
        bulk.status_code,
        bulk.json()["error"],
    )
    made = api.post(f"{BOARD}/api/trigger", json={"job": "test.record", "payload": {"key": "a\x00"}})
    assert 400 == made.status_code
    assert "NUL" in made.json()["error"]
    refused = board.client()
    form = refused.get(f"{BOARD}/sign-in")
    sign_in = refused.post(
        f"{BOARD}/sign-in", data={"csrf": csrf_of(form.text), "email": "ada\x00@example.com", "password": "x"}
    )
    assert 400 == sign_in.status_code
    assert "the form field &#39;email&#39; holds a control character" in sign_in.text
    assert "PENDING" == api.get(f"{BOARD}/api/jobs/{message.message_id}").json()["job"]["status"]
    assert 1 == len(api.get(f"{BOARD}/api/jobs").json()["jobs"])
    assert not _paused(board.database_url)


def _incompressible(length: int) -> str:
    """Text PostgreSQL cannot compress: a key this long overflows an index row (it answered 503)."""
    digests = (hashlib.sha256(str(n).encode()).hexdigest() for n in range(length // 64 + 1))
    return "".join(digests)[:length]


OVERSIZED = {
    "1,000 fields": ({f"f{n}": "x" for n in range(1000)}, 400, "Too many fields"),
    "a 1 MB field": ({"password": "x" * 1_000_000}, 413, "over 262144 bytes"),
    "a 10,000-character email": (
        {"email": _incompressible(10_000) + "@example.com"},
        400,
        "the form field &#39;email&#39; is longer than 254 characters",
    ),
    "a 2,000-character password": ({"password": "x" * 2000}, 400, "is longer than 1024 characters"),
}


@pytest.mark.parametrize(
    ("path", "case"),
    [("sign-in", case) for case in OVERSIZED] + [("sign-out", "1,000 fields"), ("sign-out", "a 1 MB field")],
)
def test_sign_in_and_sign_out_refuse_oversized_forms_with_a_4xx(
    open_board: Callable[..., Board], path: str, case: str
) -> None:
    fields, status, reason = OVERSIZED[case]
    board = open_board(worker=False)
    client = board.client()
    csrf = csrf_of(client.get(f"{BOARD}/sign-in").text)
    answer = client.post(f"{BOARD}/{path}", data={"csrf": csrf, "email": ADMIN[0], "password": "x", **fields})
    assert (status, True) == (answer.status_code, reason in answer.text), answer.text[:500]
    assert "x" * 100 not in answer.text  # a password is never shown back
    # It did not count as a guess: the admin signs in at once, for the first time.
    assert 303 == sign_in(client, *ADMIN).status_code


def test_the_cli_refuses_an_email_sign_in_could_never_take(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{NEW_PASSWORD}\n"))
    assert 2 == cli.main(["admin", "create-user", "a" * 250 + "@example.com"])
    assert "EMAIL is longer than 254 characters; nothing was changed" in capsys.readouterr().err
    with psycopg.connect(environ["NEXT_PRIVATE_DATABASE_URL"]) as conn:
        assert (0,) == conn.execute('SELECT count(*) FROM "user"').fetchone()
