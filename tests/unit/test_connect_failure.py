"""Which failed connections are worth another try: ``pool.connect_failure`` over libpq's real words.

The messages were recorded from real attempts (psycopg 3.3 with libpq 18, PostgreSQL 15):
against the test server with a ``pg_hba.conf`` asking some roles for a password, against a
server without SSL, against one with SSL and a certificate for another host, and at closed
loopback ports and missing sockets. Those marked ``# not provoked`` are libpq's or the
server's wording for cases that are hard to cause on purpose (a crash mid-handshake, a full
server). ``tests/integration/test_connect_failure_live.py`` makes the cheap attempts
again, so the table stays true to the libpq installed.

Transient means "the server could not be reached, or said it is starting, stopping or
full"; everything else (a server's refusal, libpq's refusals on this side) is permanent:
one line at start-up and exit 2, never a retry for ever calling the database unreachable.
"""

from __future__ import annotations

import psycopg
import pytest

from docjobs import errors
from docjobs.db import pool

AT = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: '

#: (libpq's message, transient?, the reason docjobs reports).
RECORDED: list[tuple[str, bool, str]] = [
    # Nothing answers, or the answer is "not now": another try may work.
    (
        AT + "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?",
        True,
        "Connection refused",
    ),
    (
        'connection is bad: connection to server on socket "/run/pg/.s.PGSQL.5432" failed: '
        "No such file or directory\n\tIs the server running locally and accepting connections on that socket?",
        True,
        "No such file or directory",
    ),
    (
        "failed to resolve host 'db': [Errno -2] Name or service not known",
        True,
        "failed to resolve host 'db': [Errno -2] Name or service not known",
    ),
    ("connection timeout expired", True, "connection timeout expired"),  # not provoked: psycopg's
    (  # not provoked
        AT
        + "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally",
        True,
        "server closed the connection unexpectedly",
    ),
    # Not provoked: the server's words while it starts, stops or is full.
    (AT + "FATAL:  the database system is starting up", True, "the database system is starting up"),
    (AT + "FATAL:  the database system is shutting down", True, "the database system is shutting down"),
    (AT + "FATAL:  sorry, too many clients already", True, "sorry, too many clients already"),
    # The server said no: the URL's role, database or password.
    (AT + 'FATAL:  role "nobody" does not exist', False, 'role "nobody" does not exist'),
    (AT + 'FATAL:  database "nodb" does not exist', False, 'database "nodb" does not exist'),
    (
        AT + 'FATAL:  password authentication failed for user "app"',
        False,
        'password authentication failed for user "app"',
    ),
    (
        AT + 'FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "app", database "postgres", '
        "no encryption",
        False,
        'pg_hba.conf rejects connection for host "127.0.0.1", user "app", database "postgres", no encryption',
    ),
    # libpq refused on this side: the URL and this client's files. No retry fixes them.
    (AT + "fe_sendauth: no password supplied", False, "fe_sendauth: no password supplied"),
    (
        AT + "server does not support SSL, but SSL was required",
        False,
        "server does not support SSL, but SSL was required",
    ),
    (
        "connection is bad: GSSAPI encryption required but no credential cache",
        False,
        "GSSAPI encryption required but no credential cache",
    ),
    (
        AT + 'root certificate file "/root/.postgresql/root.crt" does not exist\nEither provide the file, '
        "use the system's trusted roots with sslrootcert=system, or change sslmode to disable server "
        "certificate verification.",
        False,
        'root certificate file "/root/.postgresql/root.crt" does not exist',
    ),
    (AT + "SSL error: certificate verify failed", False, "SSL error: certificate verify failed"),
    (
        AT + 'server certificate for "other.example" (and 1 other name) does not match host name "127.0.0.1"',
        False,
        'server certificate for "other.example" (and 1 other name) does not match host name "127.0.0.1"',
    ),
    (
        AT + 'certificate present, but not private key file "/etc/app/client.key"',
        False,
        'certificate present, but not private key file "/etc/app/client.key"',
    ),
    (  # not provoked (libpq skips a missing client certificate unless its key is there)
        AT + 'could not open certificate file "/etc/app/client.crt": No such file or directory',
        False,
        'could not open certificate file "/etc/app/client.crt": No such file or directory',
    ),
    (
        AT + 'private key file "/etc/app/client.key" has group or world access; file must have permissions '
        "u=rw (0600) or less",
        False,
        'private key file "/etc/app/client.key" has group or world access; file must have permissions '
        "u=rw (0600) or less",
    ),
    (
        AT
        + 'authentication method requirement "scram-sha-256" failed: server did not complete authentication',
        False,
        'authentication method requirement "scram-sha-256" failed: server did not complete authentication',
    ),
    (
        AT + "channel binding required, but server authenticated client without channel binding",
        False,
        "channel binding required, but server authenticated client without channel binding",
    ),
    (AT + "SSL error: unexpected eof while reading", False, "SSL error: unexpected eof while reading"),
    (
        AT + 'server only supports protocol version 3.0, but "min_protocol_version" was set to 3.2',
        False,
        'server only supports protocol version 3.0, but "min_protocol_version" was set to 3.2',
    ),
]


@pytest.mark.parametrize(("message", "transient", "reason"), RECORDED, ids=[r for _, _, r in RECORDED])
def test_only_an_unreachable_starting_stopping_or_full_server_is_worth_another_try(
    message: str, transient: bool, reason: str
) -> None:
    failure = pool.connect_failure(psycopg.OperationalError(message))
    assert (transient, reason) == (failure.transient, failure.reason)


def test_a_missing_password_is_said_in_plain_words_naming_the_variable() -> None:
    failure = pool.connect_failure(psycopg.OperationalError(AT + "fe_sendauth: no password supplied"))
    error = failure.error()
    assert not isinstance(error, pool.DatabaseRefused)  # the server refused nothing: libpq had no password
    assert (
        "cannot connect to the database at 127.0.0.1:5432: the server asks for a password and "
        "NEXT_PRIVATE_DATABASE_URL has none (fe_sendauth: no password supplied) "
        "(check NEXT_PRIVATE_DATABASE_URL)"
    ) == str(error)


def test_a_client_side_refusal_is_a_settings_error_and_a_servers_refusal_says_refused() -> None:
    ssl = pool.connect_failure(
        psycopg.OperationalError(AT + "server does not support SSL, but SSL was required")
    ).error()
    assert isinstance(ssl, errors.SettingsError)
    assert (
        "cannot connect to the database at 127.0.0.1:5432: server does not support SSL, but SSL was required "
        "(check NEXT_PRIVATE_DATABASE_URL)"
    ) == str(ssl)
    role = pool.connect_failure(psycopg.OperationalError(AT + 'FATAL:  role "nobody" does not exist')).error()
    assert isinstance(role, pool.DatabaseRefused)
    assert str(role).startswith("the database at 127.0.0.1:5432 refused the connection: ")
