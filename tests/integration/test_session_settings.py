"""Pooled connections keep their session settings while jobs are sent (issue 21).

A durable send and the doorbell's asynchronous NOTIFY used to borrow the same pooled
connections with opposite ``synchronous_commit`` sessions, so the pool switched them
back and forth (``SET``/``RESET``, a round trip each: about a quarter of the sends paid
one). These tests count every session-setting statement psycopg sends while jobs go
out, the doorbell on, in a sending process and in a worker process.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import psycopg
import pytest
from psycopg import sql

from docjobs.db.direct import DirectStatement
from docjobs.runtime import Runtime
from tests.conftest import events, wait_for
from tests.support import actors

#: Sends per test: each waits for its doorbell, so sends and NOTIFYs interleave.
SENDS = 40
#: A statement that changes the session's synchronous_commit (not one transaction's).
_SESSION_SETTING = re.compile(
    r"^\s*(?:SET\s+(?!LOCAL\b)(?:SESSION\s+)?synchronous_commit|RESET\s+(?:synchronous_commit|ALL))",
    re.IGNORECASE,
)
_NOTIFY = re.compile(r"pg_notify\('docjobs_jobs'", re.IGNORECASE)


def _text(query: Any, cursor: psycopg.Cursor[Any]) -> str:
    if isinstance(query, sql.Composable):
        return query.as_string(cursor)
    return query.decode() if isinstance(query, bytes) else str(query)


@dataclass
class Statements:
    """What psycopg sent through cursors, counted."""

    session_settings: list[str] = field(default_factory=list)
    notifies: int = 0


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[Statements]:
    """Counts session-setting statements and doorbells on every psycopg cursor of the process."""
    seen = Statements()
    execute = psycopg.Cursor.execute

    def counting_execute(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        text = _text(query, cursor)
        if _SESSION_SETTING.search(text):
            seen.session_settings.append(text.strip())
        if _NOTIFY.search(text):
            seen.notifies += 1
        return execute(cursor, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting_execute)
    # A standalone send due a doorbell rings it in its own INSERT, run through libpq directly.
    direct = DirectStatement.execute

    def counting_direct(statement: DirectStatement, conn: psycopg.Connection[Any], values: Any) -> None:
        if _NOTIFY.search(statement.query.text):
            seen.notifies += 1
        direct(statement, conn, values)

    monkeypatch.setattr(DirectStatement, "execute", counting_direct)
    yield seen


def _send_and_wait_for_its_doorbell(statements: Statements, key: str) -> None:
    rung = statements.notifies
    actors.record_job.send(key=key)
    wait_for(lambda: statements.notifies > rung, timeout=5.0)


def _send_each_after_its_doorbell(statements: Statements) -> None:
    """Send :data:`SENDS` jobs, each once the previous one's doorbell rang, counting from
    the second send on (the first may set up what a process does once)."""
    _send_and_wait_for_its_doorbell(statements, "first")
    statements.session_settings.clear()
    for number in range(SENDS):
        _send_and_wait_for_its_doorbell(statements, f"send-{number}")


def test_sends_with_the_doorbell_on_change_no_session_setting(
    make_runtime: Callable[..., Runtime], statements: Statements, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: most sends found their connection left asynchronous by the doorbell and reset
    # it (RESET synchronous_commit), and the doorbell set it back (SET ... TO off).
    current = make_runtime()
    assert current.broker.doorbell is not None  # type: ignore[attr-defined]
    # No web app and no worker: the self-trigger looks up the live workers once, and says so.
    actors.record_job.send(key="no-one-takes-it")
    wait_for(lambda: "could not wake a web app" in caplog.text, timeout=10.0)

    _send_each_after_its_doorbell(statements)

    assert statements.notifies >= SENDS
    assert [] == statements.session_settings


def test_a_worker_and_its_sends_leave_the_sessions_the_claims_set(
    make_runtime: Callable[..., Runtime],
    start_worker: Callable[..., dramatiq.Worker],
    statements: Statements,
    database_url: str,
) -> None:
    # Before: every send on a connection a claim or an ack had made asynchronous switched it
    # back (RESET synchronous_commit), and the next claim on it switched it again.
    current = make_runtime(NEXT_PRIVATE_JOBS_POLL_INTERVAL_SECONDS="0.05")
    start_worker(current.broker, threads=2)
    actors.record_job.send(key="warm-up")
    current.join(timeout_seconds=30)

    _send_each_after_its_doorbell(statements)
    current.join(timeout_seconds=30)

    assert SENDS + 2 == len(events(database_url))
    assert [] == [text for text in statements.session_settings if text.upper().startswith("RESET")]
