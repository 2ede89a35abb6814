"""The health check answers within its own deadline, not the pool's 10 s (outside trial, issue 21)."""

from __future__ import annotations

import pytest
from psycopg_pool import PoolTimeout

from docjobs.db.pool import Database
from docjobs.db.store import JobStore
from docjobs.web.app import HEALTH_CHECK_TIMEOUT_SECONDS


def test_a_ping_gives_up_at_its_deadline_when_no_connection_comes(database_url: str) -> None:
    database = Database(database_url, max_size=1, name="health-deadline")
    store = JobStore.over(database)
    try:
        store.ping()
        with database.connection():  # the only connection is taken, as when the server is gone
            with pytest.raises(PoolTimeout) as waited:
                store.ping(timeout_seconds=HEALTH_CHECK_TIMEOUT_SECONDS)
        assert f"after {HEALTH_CHECK_TIMEOUT_SECONDS:.2f} sec" in str(waited.value)
        assert HEALTH_CHECK_TIMEOUT_SECONDS < 10
    finally:
        database.close()
