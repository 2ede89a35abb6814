"""The stub provider (docjobs.testing): docjobs' jobs unit-tested in memory, with a Dramatiq worker."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any, cast

import dramatiq
import psycopg
import pytest

import docjobs
from docjobs import cli, jobs, testing
from docjobs.errors import NotSupportedError

#: What the actors below saw, by test key.
SEEN: dict[str, list[Any]] = {}
_seen_lock = threading.Lock()
#: The longest a join waits: the jobs are in memory and take milliseconds.
JOIN_TIMEOUT_MS = 10_000


def _record(key: str, value: Any) -> None:
    with _seen_lock:
        SEEN.setdefault(key, []).append(value)


@docjobs.actor("unit.stub-record")
def record(*, key: str, value: int = 0) -> None:
    """Remember ``value`` under ``key``."""
    _record(key, value)


@docjobs.actor("unit.stub-chain")
def chain(*, key: str) -> None:
    """Send a follow-up job, which a join waits for too."""
    _record(key, "chain")
    record.send(key=key, value=2)


@docjobs.actor("unit.stub-broken", max_retries=0)
def broken(*, key: str) -> None:
    """Always fail, without retries."""
    _record(key, "attempt")
    raise RuntimeError(f"broken on purpose ({key})")


@docjobs.actor("unit.stub-steps", min_backoff=1, max_backoff=10)
def steps(*, key: str) -> None:
    """A memoised step, then a failure on the first attempt only."""
    docjobs.run_task("count", lambda: _record(key, "step"))
    if SEEN[key].count("attempt") == 0:
        _record(key, "attempt")
        raise RuntimeError("the first attempt fails")
    _record(key, "done")


@pytest.fixture
def stub() -> Iterator[testing.StubRuntime]:
    """The stub runtime with a running worker; both gone after the test."""
    with testing.stub_runtime() as runtime:
        worker = dramatiq.Worker(runtime.broker, worker_threads=2, worker_timeout=20)
        worker.start()
        try:
            yield runtime
        finally:
            worker.stop(timeout=10_000)


def test_a_docjobs_actor_sent_and_triggered_runs_on_the_stub(stub: testing.StubRuntime) -> None:
    record.send(key="sent", value=1)
    jobs.trigger("unit.stub-record", {"key": "sent", "value": 2})
    stub.broker.join("default", timeout=JOIN_TIMEOUT_MS)
    assert [1, 2] == sorted(SEEN["sent"])
    assert dramatiq.get_broker() is stub.broker


def test_join_waits_for_the_jobs_a_job_sends_and_for_delayed_ones(stub: testing.StubRuntime) -> None:
    chain.send(key="chained")
    jobs.trigger("unit.stub-record", {"key": "chained", "value": 3}, delay=0.05)
    stub.broker.join("default", timeout=JOIN_TIMEOUT_MS)
    assert ["2", "3", "chain"] == sorted(map(str, SEEN["chained"]))


def test_a_failing_job_out_of_retries_reaches_the_dead_letters(stub: testing.StubRuntime) -> None:
    message = broken.send(key="dead")
    with pytest.raises(RuntimeError, match=r"broken on purpose \(dead\)"):
        stub.broker.join("default", timeout=JOIN_TIMEOUT_MS)
    assert [message.message_id] == [dead.message_id for dead in stub.broker.dead_letters]
    assert ["attempt"] == SEEN["dead"]


def test_sending_inside_a_transaction_is_refused_in_one_line(stub: testing.StubRuntime) -> None:
    conn = cast(psycopg.Connection[Any], object())  # refused before it is touched
    with pytest.raises(
        NotSupportedError, match=r"^the stub provider cannot send inside a database transaction"
    ):
        stub.broker.enqueue(record.message(key="conn"), conn=conn)
    with pytest.raises(NotSupportedError, match="transaction"):
        jobs.trigger("unit.stub-record", {"key": "conn"}, conn=conn)
    stub.broker.join("default", timeout=JOIN_TIMEOUT_MS)
    assert "conn" not in SEEN


def test_a_second_trigger_with_the_same_id_sends_nothing(stub: testing.StubRuntime) -> None:
    jobs.trigger("unit.stub-record", {"key": "ids", "value": 1}, id="job-once")
    jobs.trigger("unit.stub-record", {"key": "ids", "value": 2}, id="job-once")
    stub.broker.join("default", timeout=JOIN_TIMEOUT_MS)
    assert [1] == SEEN["ids"]


def test_run_task_steps_are_memoised_across_a_retry(stub: testing.StubRuntime) -> None:
    steps.send(key="steps")
    stub.broker.join("default", timeout=JOIN_TIMEOUT_MS)
    assert ["step", "attempt", "done"] == SEEN["steps"]


def test_leaving_the_block_unbinds_the_stub() -> None:
    with testing.stub_runtime() as runtime:
        assert dramatiq.get_broker() is runtime.broker
    assert dramatiq.get_broker() is not runtime.broker


def test_docjobs_demo_without_the_devkit_says_how_to_get_it_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The demo and its servers ship in docjobs-devkit; here it is not installed.
    monkeypatch.setitem(sys.modules, "docjobs_devkit", None)
    monkeypatch.delitem(sys.modules, "docjobs_devkit.demo", raising=False)
    assert 2 == cli.main(["demo", "--once"])
    assert (
        "docjobs demo needs docjobs-devkit: in a checkout of docjobs, pip install -e ./devkit "
        "(make demo does it)\n"
    ) == capsys.readouterr().err
