"""``docjobs health worker`` on the local provider: a worker process on this host heartbeats.

Each worker process upserts its ``worker`` row (hostname, pid) every third of the
lease; the check wants one on this host fresher than a lease.
"""

from __future__ import annotations

import socket
from importlib import resources
from typing import Any

import psycopg

from docjobs import errors
from docjobs.db import sql
from docjobs.db.pool import connect_kwargs
from docjobs.settings import Settings

#: How long connecting to the database may take.
CHECK_TIMEOUT_SECONDS = 5.0


def check_worker(settings: Settings, *, hostname: str | None = None) -> tuple[bool, str]:
    """Whether a worker process on this host heartbeat within one lease, and the line that says so.

    Raises:
        errors.SettingsError: No database URL is set.
        psycopg.Error: The database does not answer.
    """
    hostname = hostname or socket.gethostname()
    with connect(settings) as conn:
        row = (
            _queries()["health_worker_on_host"].execute(conn, {"now": None, "hostname": hostname}).fetchone()
        )
    assert row is not None  # an aggregate always returns a row
    if not row["processes"]:
        return False, f"worker: no worker process on {hostname} has a heartbeat row"
    age = float(row["freshest_age_seconds"])
    if age > settings.lease_seconds:
        return False, f"worker: the freshest heartbeat on {hostname} is {age:.0f} s old"
    return True, f"worker: {row['processes']} process(es) on {hostname}, heartbeat {age:.0f} s ago"


def connect(settings: Settings) -> psycopg.Connection[dict[str, Any]]:
    """One connection for a check, with docjobs' options and the check's time-out.

    Raises:
        errors.SettingsError: No database URL is set.
    """
    if settings.database_url is None:
        raise errors.SettingsError("NEXT_PRIVATE_DATABASE_URL is required for the health check")
    # No prepared statements: the URL may go through a transaction pooler.
    options = {**connect_kwargs(transaction_pooling=True), "connect_timeout": int(CHECK_TIMEOUT_SECONDS)}
    return psycopg.connect(settings.database_url, **options)


def _queries() -> dict[str, sql.Query]:
    return sql.parse_queries(resources.files("docjobs.db").joinpath("health.sql").read_text("utf-8"))
