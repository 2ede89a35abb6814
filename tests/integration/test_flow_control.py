"""Flow control declared on an actor, honoured by docjobs' workers (local, bullmq) and on Inngest
(the emulator applies a function's concurrency, throttle and debounce as Inngest does).

Each test sends jobs of a type that declares a limit to real workers and reads what
ran, and when, from ``test_event`` (the database's clock).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import dramatiq
import psycopg
import pytest
from docjobs_devkit.http import serve
from docjobs_devkit.inngest import InngestServer

from docjobs import jobs
from docjobs.runtime import Runtime
from docjobs.web.app import create_app
from tests.conftest import (
    INNGEST_SIGNING_KEY,
    app_port,
    events,
    inngest_overrides,
    provider_overrides,
    wait_for,
)
from tests.support import flow_actors

WORKER_PROVIDERS = ["local", "bullmq"]


@pytest.fixture(params=[*WORKER_PROVIDERS, "inngest"])
def flow_runtime(
    request: pytest.FixtureRequest,
    make_runtime: Callable[..., Runtime],
    start_worker: Callable[..., dramatiq.Worker],
) -> Iterator[Runtime]:
    """A runtime on each provider: docjobs' workers (4 threads), or Inngest calling 4 runs at once."""
    if request.param != "inngest":
        current = make_runtime(**provider_overrides(request, request.param))
        start_worker(current.broker, threads=4)
        yield current
        return
    emulator = InngestServer(signing_key=INNGEST_SIGNING_KEY, concurrency=4).start()
    try:
        current = make_runtime(**inngest_overrides(emulator))
        with serve(create_app(current), port=app_port(current)) as base:
            assert 200 == emulator.sync(f"{base}/api/jobs").status_code
            yield current
    finally:
        emulator.stop()


@pytest.fixture(params=WORKER_PROVIDERS)
def worker_runtime(
    request: pytest.FixtureRequest,
    make_runtime: Callable[..., Runtime],
    start_worker: Callable[..., dramatiq.Worker],
) -> Runtime:
    """A runtime on each provider whose workers docjobs runs, with a 4-thread worker."""
    current = make_runtime(**provider_overrides(request, request.param))
    start_worker(current.broker, threads=4)
    return current


def _rows(url: str, actor: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT id, status, retried, options FROM background_job WHERE actor = %s", (actor,)
        ).fetchall()


def _all_ended(url: str, actor: str, count: int) -> bool:
    rows = _rows(url, actor)
    return len(rows) == count and all(row["status"] == "COMPLETED" for row in rows)


def test_a_concurrency_key_runs_one_job_of_a_document_at_a_time(flow_runtime: Runtime) -> None:
    url = flow_runtime.settings.database_url
    assert url is not None
    for _ in range(4):
        flow_actors.one_per_document.send(document_id=1, tag="c")
    for _ in range(2):
        flow_actors.one_per_document.send(document_id=2, tag="c")
    wait_for(lambda: len([e for e in events(url) if e["kind"] == "finished"]) == 6, timeout=30)

    running: Counter[str] = Counter()
    most: Counter[str] = Counter()
    for event in events(url):
        running[event["key"]] += 1 if event["kind"] == "started" else -1
        most[event["key"]] = max(most[event["key"]], running[event["key"]])
    assert most["c:1"] == 1, "two jobs of document 1 ran at once"
    assert most["c:2"] == 1
    wait_for(lambda: _all_ended(url, "test.flow-one-per-document", 6), timeout=10)
    # A job that waited for a slot kept its retries, and says how often it waited.
    rows = _rows(url, "test.flow-one-per-document")
    assert {row["retried"] for row in rows} == {0}
    if flow_runtime.settings.provider != "inngest":  # there Inngest holds runs back, not docjobs
        assert any(row["options"].get("flow_waits") for row in rows)


def test_different_keys_run_side_by_side(flow_runtime: Runtime) -> None:
    url = flow_runtime.settings.database_url
    assert url is not None
    for document_id in (1, 2, 3):
        flow_actors.one_per_document.send(document_id=document_id, tag="p", seconds=1.0)
    wait_for(lambda: len([e for e in events(url) if e["kind"] == "finished"]) == 3, timeout=30)
    starts = [e["at"] for e in events(url) if e["kind"] == "started"]
    # Three 1-second jobs of three documents on four threads start together, not one after another.
    assert (max(starts) - min(starts)).total_seconds() < 0.9


def test_a_throttle_starts_at_most_its_limit_per_period(flow_runtime: Runtime) -> None:
    url = flow_runtime.settings.database_url
    assert url is not None
    for _ in range(5):
        flow_actors.throttled.send(tag="t")
    flow_actors.throttled.send(tag="other")
    wait_for(lambda: len(events(url)) == 6, timeout=30)
    per_second = Counter(_second(e["at"]) for e in events(url, "t"))
    assert max(per_second.values()) <= 2, per_second
    assert len(per_second) >= 3  # five runs at two a second take three windows
    wait_for(lambda: _all_ended(url, "test.flow-throttled", 6), timeout=10)


def test_a_rate_limit_drops_the_runs_over_its_limit(flow_runtime: Runtime) -> None:
    url = flow_runtime.settings.database_url
    assert url is not None
    for _ in range(5):
        flow_actors.rate_limited.send(tag="r")
    flow_actors.rate_limited.send(tag="s")
    wait_for(lambda: _all_ended(url, "test.flow-rate-limited", 6), timeout=30)
    time.sleep(0.3)  # nothing more runs
    assert Counter(e["key"] for e in events(url)) == {"r": 2, "s": 1}


def test_a_debounce_runs_only_the_last_send_a_period_after_it(flow_runtime: Runtime) -> None:
    url = flow_runtime.settings.database_url
    assert url is not None
    for value in range(5):
        flow_actors.debounced.send(tag="d", value=value)
        time.sleep(0.1)
    last_sent = time.time()
    flow_actors.debounced.send(tag="e", value=9)
    wait_for(lambda: _all_ended(url, "test.flow-debounced", 6), timeout=30)
    time.sleep(0.3)
    ran = events(url)
    assert sorted((e["key"], e["kind"]) for e in ran) == [("d", "ran:4"), ("e", "ran:9")]
    d_ran = next(e["at"] for e in ran if e["key"] == "d")
    assert d_ran.timestamp() >= last_sent - 0.1 + 1.0 - 0.05  # a period after the last send


def test_a_debounced_send_through_jobs_trigger_counts_as_a_send(flow_runtime: Runtime) -> None:
    url = flow_runtime.settings.database_url
    assert url is not None
    jobs.trigger("test.flow-debounced", {"tag": "j", "value": 1})
    jobs.trigger_many("test.flow-debounced", [{"tag": "j", "value": 2}, {"tag": "j", "value": 3}])
    wait_for(lambda: _all_ended(url, "test.flow-debounced", 3), timeout=30)
    time.sleep(0.3)
    assert [e["kind"] for e in events(url)] == ["ran:3"]


def test_jobs_without_flow_control_pay_nothing_for_it(worker_runtime: Runtime) -> None:
    """The gate asks its store only about job types that declare flow control."""
    from docjobs.flow.gate import FlowGate

    gate = next(m for m in worker_runtime.broker.middleware if isinstance(m, FlowGate))
    calls: list[str] = []

    class Spy:
        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            return getattr(gate.store, name)

    gate.store = Spy()  # type: ignore[assignment]
    from tests.support.actors import record_job

    record_job.send(key="plain")
    url = worker_runtime.settings.database_url
    assert url is not None
    wait_for(lambda: events(url, "plain"), timeout=10)
    assert calls == []


def test_inngest_is_given_the_limits_when_the_app_syncs(
    make_runtime: Callable[..., Runtime], inngest_emulator: InngestServer
) -> None:
    current = make_runtime(**inngest_overrides(inngest_emulator))
    with serve(create_app(current), port=app_port(current)) as base:
        assert 200 == inngest_emulator.sync(f"{base}/api/jobs").status_code
    functions = {f["id"].rpartition("-test.")[2]: f for f in inngest_emulator.registrations[-1]["functions"]}
    assert functions["flow-one-per-document"]["concurrency"] == [{"limit": 1, "key": "event.data.documentId"}]
    assert functions["flow-throttled"]["throttle"] == {
        "limit": 2, "period": "1s", "key": "event.data.tag", "burst": 1
    }  # fmt: skip
    # With a database docjobs counts the rate limit itself, so a dropped job's history is closed.
    assert "rateLimit" not in functions["flow-rate-limited"]
    assert functions["flow-debounced"]["debounce"] == {"period": "1s", "key": "event.data.tag"}


def _second(at: datetime) -> int:
    return int(at.timestamp())
