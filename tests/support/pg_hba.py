"""A role on the test PostgreSQL that must give a password (the cluster trusts everyone else)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from docjobs_devkit import PostgresServer


@contextmanager
def role_with_password(server: PostgresServer, database: str = "postgres") -> Iterator[str]:
    """Create a role whose logins over TCP need a password (``scram-sha-256``).

    Yields:
        The URL of ``database`` for that role, without the password.
    """
    assert server.directory is not None
    role = f"needs_password_{os.getpid()}_{time.monotonic_ns()}"
    hba = server.directory / "data" / "pg_hba.conf"
    rule = f"host all {role} 127.0.0.1/32 scram-sha-256\n"
    before = hba.read_text()
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'not-given'".encode())
        hba.write_text(rule + before)  # the first matching line wins: this role only
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield f"postgresql://{role}@127.0.0.1:{server.port}/{database}"
    finally:
        hba.write_text(hba.read_text().replace(rule, ""))
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"DROP ROLE IF EXISTS {role}".encode())
