"""A process with no web app to wake says so once, when workers listen anyway (issue 20)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from docjobs_devkit.services import free_port

from docjobs.brokers.local import selftrigger
from docjobs.runtime import Runtime
from tests.conftest import TEST_SECONDARY_KEY, wait_for

LOGGER = selftrigger.__name__


def unanswered(caplog: pytest.LogCaptureFixture, base_url: str) -> list[logging.LogRecord]:
    """This client's lines: another test's runtime may still be failing to wake its own URL."""
    return [record for record in caplog.records if record.name == LOGGER and base_url in record.getMessage()]


@pytest.mark.parametrize(
    ("workers_listen", "alive", "said"),
    [
        (True, 2, "jobs still reach the 2 workers listening on the database"),
        (True, 0, "no worker is alive either, so jobs wait until one starts"),
        (False, None, "the job waits for the next poll"),
    ],
)
def test_unanswered_self_requests_are_one_warning_naming_the_variable(
    caplog: pytest.LogCaptureFixture, workers_listen: bool, alive: int | None, said: str
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    base_url = f"http://127.0.0.1:{free_port()}"
    client = selftrigger.SelfTrigger(
        base_url,
        TEST_SECONDARY_KEY.encode(),
        workers_listen=workers_listen,
        live_workers=None if alive is None else lambda: alive,
    )
    try:
        for sent in range(1, 4):  # three requests, each after the previous one failed
            client.wake("test.record", f"job-{sent}")
            wait_for(lambda: len(unanswered(caplog, base_url)) == sent, timeout=10)  # noqa: B023 - awaited here
    finally:
        client.close()
    levels = [record.levelno for record in unanswered(caplog, base_url)]
    assert [logging.WARNING, logging.DEBUG, logging.DEBUG] == levels
    (warning,) = [
        record.getMessage() for record in unanswered(caplog, base_url) if record.levelno == logging.WARNING
    ]
    assert "NEXT_PRIVATE_INTERNAL_WEBAPP_URL" in warning
    assert said in warning


def test_the_local_provider_tells_its_client_whether_workers_listen(
    make_runtime: Callable[..., Runtime],
) -> None:
    listening = make_runtime()
    client = listening.broker.announcer.self_trigger  # type: ignore[attr-defined]
    assert client.workers_listen
    assert 0 == client._live_workers()  # no worker process runs in this test
    listening.broker.store.workers.heartbeat(  # type: ignore[attr-defined]
        worker="w1", held=[], queues=["default"], concurrency=1, lease_seconds=30
    )
    assert 1 == client._live_workers()
    listening.close()
    polling = make_runtime(NEXT_PRIVATE_JOBS_LISTEN="false")
    assert not polling.broker.announcer.self_trigger.workers_listen  # type: ignore[attr-defined]
