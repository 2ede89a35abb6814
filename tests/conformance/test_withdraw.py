"""Behaviour 12 (docjobs): the board's actions on one job, through the broker's interface.

A waiting job can be cancelled or deleted and never runs; once a worker holds it,
or once it ran, the provider refuses (``ActionRefused``). A delayed job can be run
now. A failed job can be retried: the same id where ``capabilities.retry_in_place``,
a new job elsewhere. The stub has no board: each action raises ``NotSupportedError``.
The job is handed over as the board hands it (``JobRef`` from its row).
"""

from __future__ import annotations

import threading

import pytest

from docjobs import errors
from docjobs.brokers.base import ActionRefused
from tests.support.providers import Calls, Harness, RuntimeHarness

pytestmark = pytest.mark.docjobs_only

#: Long enough that a delayed job never comes due during a test.
HOUR_MS = 3_600_000
#: How long a test waits at most for a held job to be let go.
GATE_SECONDS = 10.0


def refused_on_the_stub(provider: Harness, *actions: str) -> bool:
    """On the stub, each of ``actions`` raises NotSupportedError naming it; elsewhere False."""
    if provider.name != "stub":
        return False
    capabilities = provider.broker.capabilities  # type: ignore[attr-defined]
    assert (False, False) == (capabilities.cancel, capabilities.run_now)
    assert isinstance(provider, RuntimeHarness)
    message = provider.actor(lambda key: None, name="unused").message(key="x")
    job = provider.job(message)
    for action in actions:
        do = getattr(provider.broker, action)
        with pytest.raises(errors.NotSupportedError, match="not available on the stub provider"):
            do(job, None) if action == "retry" else do(job)
    return True


def test_a_waiting_job_is_cancelled_or_deleted_and_never_runs(provider: Harness) -> None:
    if refused_on_the_stub(provider, "cancel", "delete"):
        return
    assert isinstance(provider, RuntimeHarness)
    calls = Calls()
    actor = provider.actor(lambda key: calls.add(key), name="withdrawn")
    provider.run()
    cancelled = actor.send_with_options(kwargs={"key": "cancelled"}, delay=HOUR_MS)
    deleted = actor.send_with_options(kwargs={"key": "deleted"}, delay=HOUR_MS)
    provider.broker.cancel(provider.job(cancelled))  # type: ignore[attr-defined]
    provider.broker.delete(provider.job(deleted))  # type: ignore[attr-defined]
    actor.send(key="kept")
    provider.join()  # the withdrawn ones are not waited for: they left the queue
    assert ["kept"] == calls.values()
    assert ("CANCELLED", None) == (provider.status(cancelled), provider.status(deleted))
    with pytest.raises(ActionRefused, match="it is CANCELLED"):
        provider.broker.cancel(provider.job(cancelled))  # type: ignore[attr-defined]


def test_a_job_a_worker_holds_or_that_ran_is_refused(provider: Harness) -> None:
    if refused_on_the_stub(provider, "cancel", "delete"):
        return
    assert isinstance(provider, RuntimeHarness)
    started = threading.Event()
    gate = threading.Event()

    def held(key: str) -> None:
        started.set()
        gate.wait(GATE_SECONDS)

    actor = provider.actor(held)
    provider.run()
    message = actor.send(key="held")
    try:
        assert started.wait(GATE_SECONDS)
        running = provider.job(message)
        with pytest.raises(ActionRefused, match="cancel works on a job that has not started"):
            provider.broker.cancel(running)  # type: ignore[attr-defined]
        with pytest.raises(ActionRefused, match="delete works on a job that is not running"):
            provider.broker.delete(running)  # type: ignore[attr-defined]
        with pytest.raises(ActionRefused, match="retry works on a completed, failed or cancelled job"):
            provider.broker.retry(running, None)  # type: ignore[attr-defined]
    finally:
        gate.set()
    provider.join()
    ran = provider.job(message)
    assert "COMPLETED" == ran.status
    with pytest.raises(ActionRefused, match="it is COMPLETED"):
        provider.broker.cancel(ran)  # type: ignore[attr-defined]
    with pytest.raises(ActionRefused, match="it is COMPLETED"):
        provider.broker.run_now(ran)  # type: ignore[attr-defined]
    # A finished job is only a record: deleting it deletes the row.
    provider.broker.delete(ran)  # type: ignore[attr-defined]
    assert provider.row(message.message_id) is None


def test_run_now_runs_a_delayed_job_before_its_time(provider: Harness) -> None:
    if refused_on_the_stub(provider, "run_now"):
        return
    assert isinstance(provider, RuntimeHarness)
    calls = Calls()
    actor = provider.actor(lambda key: calls.add(key), name="promoted")
    provider.run()
    delayed = actor.send_with_options(kwargs={"key": "promoted"}, delay=HOUR_MS)
    provider.broker.run_now(provider.job(delayed))  # type: ignore[attr-defined]
    assert ["promoted"] == calls.wait(1)
    provider.join()
    assert "COMPLETED" == provider.status(delayed)
    with pytest.raises(ActionRefused, match="it is COMPLETED"):
        provider.broker.run_now(provider.job(delayed))  # type: ignore[attr-defined]


def test_a_failed_job_retried_runs_again_under_the_id_the_provider_says(provider: Harness) -> None:
    if refused_on_the_stub(provider, "retry"):
        return
    assert isinstance(provider, RuntimeHarness)
    calls = Calls()

    def fails_once(key: str) -> None:
        calls.add(key)
        if len(calls.values()) == 1:
            raise RuntimeError("the first run fails")

    actor = provider.actor(fails_once, max_retries=0)
    provider.run()
    message = actor.send(key="retried")
    provider.join()
    failed = provider.job(message)
    assert "FAILED" == failed.status
    # The failure is kept with its traceback, for the board's job page.
    row = provider.row(message.message_id)
    assert row is not None
    assert "RuntimeError: the first run fails" == row["last_error"]
    assert "Traceback (most recent call last)" in row["last_traceback"]
    assert "fails_once" in row["last_traceback"]
    runs = provider.broker.retry(failed, None)  # type: ignore[attr-defined]
    assert ["retried", "retried"] == calls.wait(2)
    provider.join()
    if provider.broker.capabilities.retry_in_place:  # type: ignore[attr-defined]
        assert message.message_id == runs
    else:
        assert runs != message.message_id
        assert "FAILED" == provider.status(message)  # the failed one stays as it ended
    rerun = provider.row(runs)
    assert rerun is not None and "COMPLETED" == rerun["status"]
    assert ["retried", "retried"] == calls.values()
