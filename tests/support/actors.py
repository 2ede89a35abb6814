"""Actors the tests run, in-process and in worker subprocesses.

Each records what it did in ``test_event`` (created by the test database fixture),
so a test can see which job ran, in which process, when, and how often.
"""

from __future__ import annotations

import os
import time

import psycopg
from dramatiq.middleware import CurrentMessage

import docjobs
from docjobs import runtime
from docjobs.actors import sealing

EVENTS_TABLE = """
CREATE TABLE test_event (
    id      bigserial PRIMARY KEY,
    job_id  text,
    key     text NOT NULL,
    kind    text NOT NULL,
    pid     integer NOT NULL,
    at      timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


def record(key: str, kind: str) -> None:
    """Insert one event row for the current job."""
    message = CurrentMessage.get_current_message()
    url = runtime.current().settings.database_url
    assert url is not None
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO test_event (job_id, key, kind, pid) VALUES (%s, %s, %s, %s)",
            (message.message_id if message else None, key, kind, os.getpid()),
        )


@docjobs.actor("test.record", display_name="Record")
def record_job(*, key: str, document_id: int = 0) -> None:
    record(key, "ran")


@docjobs.actor("test.sleep", display_name="Sleep")
def sleep_job(*, key: str, seconds: float) -> None:
    record(key, "started")
    time.sleep(seconds)  # the job under test must take this long
    record(key, "finished")


@docjobs.actor("test.fail", display_name="Fail", min_backoff=20, max_backoff=200)
def fail_job(*, key: str) -> None:
    record(key, "ran")
    raise ValueError(f"{key} fails every time")


@docjobs.actor("test.fail_once", display_name="Fail Once", min_backoff=20, max_backoff=200)
def fail_once_job(*, key: str) -> None:
    message = CurrentMessage.get_current_message()
    record(key, "ran")
    if message is not None and not message.options.get("retries"):
        raise RuntimeError("first attempt fails")


@docjobs.actor("test.tasks", display_name="Tasks", min_backoff=20, max_backoff=200)
def tasks_job(*, key: str, fail_after_first: bool = False) -> None:
    first = docjobs.run_task("first", lambda: record(key, "first") or {"value": 41})
    if fail_after_first:
        message = CurrentMessage.get_current_message()
        if message is not None and not message.options.get("retries"):
            raise RuntimeError("fails after the first task")
    docjobs.run_task("second", lambda: record(key, f"second:{first['value'] + 1}"))


@docjobs.actor("test.task_fails", display_name="Task Fails", min_backoff=20, max_backoff=200, max_retries=10)
def task_fails_job(*, key: str) -> None:
    def step() -> None:
        record(key, "task")
        raise RuntimeError("the task fails")

    docjobs.run_task("always-fails", step)


@docjobs.actor("test.step_given_up", display_name="Step Given Up", max_retries=1)
def step_given_up_job(*, key: str, catch: bool = True) -> None:
    """Catches a task that ran out of retries (if told to) and goes on, through a task that waits for the test's gate."""

    def fails() -> None:
        raise RuntimeError("the task fails")

    try:
        docjobs.run_task("fails", fails)
    except Exception:
        if not catch:
            raise
        record(key, "caught")
    docjobs.run_task("after", lambda: wait_for_gate(key))


def wait_for_gate(key: str, timeout: float = 30.0) -> None:
    """Record ``waiting``, then wait until the test records ``gate-open`` for ``key``."""
    record(key, "waiting")
    url = runtime.current().settings.database_url
    assert url is not None
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute(
                "SELECT 1 FROM test_event WHERE key = %s AND kind = 'gate-open'", (key,)
            ).fetchone():
                record(key, "ran")
                return
            time.sleep(0.02)  # the poll of a wait with a deadline (workers cannot import conftest)
    raise TimeoutError(f"the gate of {key} stayed closed")


@docjobs.actor("test.leaky", display_name="Leaky", max_retries=1, min_backoff=10, max_backoff=10)
def leaky_job() -> None:
    """Fails, in a task, with the process's secondary key in its error."""
    key = runtime.current().settings.encryption_secondary_key.get_secret_value()

    def step() -> None:
        raise RuntimeError(f"could not connect with key={key}")

    docjobs.run_task("leaky-step", step)


@docjobs.actor("test.fail_when", display_name="Fail When", max_retries=0)
def fail_when_job(*, key: str, fail: bool) -> None:
    record(key, "ran")
    if fail:
        raise ValueError(f"{key} was told to fail")


@docjobs.actor("test.gated", display_name="Gated", max_retries=0)
def gated_job(*, key: str, seconds: float = 0.0) -> None:
    """Fails until the test opens the gate (a ``gate-open`` event for ``key``), then takes ``seconds``."""
    url = runtime.current().settings.database_url
    assert url is not None
    with psycopg.connect(url, autocommit=True) as conn:
        opened = conn.execute(
            "SELECT 1 FROM test_event WHERE key = %s AND kind = 'gate-open'", (key,)
        ).fetchone()
    if opened is None:
        record(key, "refused")
        raise RuntimeError(f"the gate of {key} is closed")
    time.sleep(seconds)  # the job under test must take this long
    record(key, "ran")


@docjobs.actor(
    "test.slow-seal", display_name="Slow Seal", max_retries=0, queue_name=sealing.seal_document.queue_name
)
def slow_seal_job(*, key: str, seconds: float) -> None:
    """A seal that takes ``seconds``, on the queue ``internal.seal-document`` runs on (issue 22)."""
    record(key, "started")
    time.sleep(seconds)  # the job under test must take this long
    record(key, "finished")
