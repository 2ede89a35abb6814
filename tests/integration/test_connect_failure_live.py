"""libpq's refusals, provoked for real against the test PostgreSQL, read by ``pool.connect_failure``.

The unit table (tests/unit/test_connect_failure.py) holds the recorded words; here the cheap
cases are attempted again, so a libpq that words them otherwise shows up as a failure.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from docjobs_devkit import PostgresServer

from docjobs.db import pool
from tests.support.pg_hba import role_with_password


@pytest.fixture
def password_role_url(postgres_server: PostgresServer) -> Iterator[str]:
    with role_with_password(postgres_server) as url:
        yield url


def attempt(url: str) -> pool.ConnectFailure:
    with pytest.raises(psycopg.OperationalError) as failed:
        psycopg.connect(url, connect_timeout=5).close()
    return pool.connect_failure(failed.value)


def test_a_missing_password_and_client_side_requirements_are_permanent(
    postgres_server: PostgresServer, password_role_url: str
) -> None:
    url = postgres_server.url
    seen = {
        "no password": attempt(password_role_url),
        "sslmode=require": attempt(f"{url}?sslmode=require"),
        "gssencmode=require": attempt(f"{url}?gssencmode=require"),
        "require_auth": attempt(f"{url}?require_auth=scram-sha-256"),
        "channel_binding": attempt(f"{url}?channel_binding=require"),
        "role": attempt(f"postgresql://nobody@127.0.0.1:{postgres_server.port}/postgres"),
    }
    assert {name: False for name in seen} == {name: failure.transient for name, failure in seen.items()}
    assert "fe_sendauth: no password supplied" == seen["no password"].reason
    assert "server does not support SSL, but SSL was required" == seen["sslmode=require"].reason
    assert seen["gssencmode=require"].reason.startswith("GSSAPI encryption required")
    assert seen["require_auth"].reason.startswith('authentication method requirement "scram-sha-256" failed')
    assert seen["channel_binding"].reason.startswith("channel binding required")
    assert seen["role"].refused and not seen["no password"].refused
    assert f"127.0.0.1:{postgres_server.port}" == seen["no password"].where


def test_a_closed_port_is_transient() -> None:
    failure = attempt("postgresql://postgres@127.0.0.1:1/postgres")
    assert (True, "Connection refused", "127.0.0.1:1") == (failure.transient, failure.reason, failure.where)
