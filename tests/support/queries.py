"""A watch on the named queries docjobs runs: each is seen with its values, then runs as before."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import psycopg
import pytest

from docjobs.db import sql

Seen = Callable[[sql.Query, Mapping[str, Any]], None]


def watch_queries(monkeypatch: pytest.MonkeyPatch, seen: Seen) -> None:
    """Call ``seen(query, values)`` before each named query with values runs, for this test."""
    execute = sql.Query.execute

    def watched(
        query: sql.Query,
        conn: psycopg.Connection[Any],
        values: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        if values is not None:
            seen(query, values)
        return execute(query, conn, values, **options)

    monkeypatch.setattr(sql.Query, "execute", watched)
