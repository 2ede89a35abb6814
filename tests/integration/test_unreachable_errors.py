"""A send that cannot reach PostgreSQL fails in one line naming the database (outside trial, issue 21).

A pooled connection the server had cut gave the sender libpq's three lines ("server
closed the connection unexpectedly" and its hints); a pool time-out named no server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from docjobs_devkit.services import free_port
from dramatiq.errors import BrokerConnectionError

from docjobs.runtime import Runtime
from tests.support import actors


def test_a_send_over_a_connection_the_server_cut_fails_in_one_line(
    pg_runtime: Runtime, database_url: str
) -> None:
    actors.record_job.send(key="before")  # the pool now holds a connection
    with psycopg.connect(database_url, autocommit=True) as admin:
        cut = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert cut is not None and cut[0] >= 1
    with pytest.raises(BrokerConnectionError) as refused:
        actors.record_job.send(key="after the cut")
    message = str(refused.value)
    assert message.startswith("the database is unreachable: ")
    assert "\n" not in message


def test_an_app_without_logging_sees_only_the_error_not_the_pools_retries(tmp_path: Path) -> None:
    nobody = free_port()  # nothing listens: the database is down
    script = (
        "from docjobs.db.pool import Database\n"
        f"database = Database('postgresql://docjobs@127.0.0.1:{nobody}/docjobs', max_size=1, name='quiet')\n"
        "try:\n"
        "    with database.connection(timeout_seconds=3):\n"
        "        pass\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False
    )
    assert ("PoolTimeout\n", "") == (ran.stdout, ran.stderr)
