"""A bullmq worker reads its messages' fields directly, not through the proxy's ``__getattr__``.

Issue 21 (bullmq drain): Dramatiq's ``MessageProxy`` answers ``message.options``,
``message.message_id`` and the rest only after a failed attribute lookup, ~2 us
each, and the worker and the middleware read some fifty per job: a sixth of a
no-op job's CPU. The bullmq consumer hands out proxies that hold the (frozen)
message's fields themselves. Counted here over successful jobs and a retried one.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import dramatiq
import psycopg
import pytest
from dramatiq.broker import MessageProxy

from docjobs.runtime import Runtime
from tests.conftest import events, provider_overrides, wait_for
from tests.support import actors

MESSAGE_FIELDS = frozenset(field.name for field in dataclasses.fields(dramatiq.Message))


@pytest.fixture
def bullmq(request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime(**provider_overrides(request, "bullmq"))


def _status(url: str, job_id: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT status FROM background_job WHERE id = %s", (job_id,)).fetchone()
    return None if row is None else str(row[0])


def test_a_worker_reads_no_message_field_through_the_proxys_getattr(
    bullmq: Runtime,
    database_url: str,
    start_worker: Callable[..., dramatiq.Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_through: list[str] = []
    lock = threading.Lock()
    forward = MessageProxy.__getattr__

    def counting(proxy: MessageProxy, name: str) -> Any:
        if name in MESSAGE_FIELDS:
            with lock:
                read_through.append(name)
        return forward(proxy, name)

    monkeypatch.setattr(MessageProxy, "__getattr__", counting)
    start_worker(bullmq.broker, threads=2)
    sent = [actors.record_job.send(key=f"direct-{index}") for index in range(5)]
    sent.append(actors.fail_once_job.send(key="direct-retried"))
    for message in sent:
        wait_for(lambda m=message: _status(database_url, m.message_id) == "COMPLETED")
    assert {f"direct-{index}" for index in range(5)} <= {event["key"] for event in events(database_url)}
    assert [] == read_through
