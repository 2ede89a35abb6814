"""The stub runtime boots its process as a worker's is booted, so time limits hold there too.

Dramatiq's ``TimeLimit`` starts its timer at ``process_boot``, which the ``dramatiq``
command emits and nothing did for ``stub_runtime()``: ``time_limit`` was ignored.
"""

from __future__ import annotations

import logging
import time

import dramatiq
import pytest
from dramatiq.middleware import TimeLimitExceeded

import docjobs
from docjobs import registry, testing

#: The job's limit; Dramatiq's timer looks once a second.
TIME_LIMIT_MS = 100
#: How long the job would run if nothing interrupted it.
RUNAWAY_SECONDS = 5.0
#: The longest a join waits.
JOIN_TIMEOUT_MS = 10_000
#: How each run of the job ended.
ENDINGS: list[str] = []


@docjobs.actor("unit.boot-runaway", time_limit=TIME_LIMIT_MS, max_retries=0)
def runaway() -> None:
    deadline = time.monotonic() + RUNAWAY_SECONDS
    try:
        while time.monotonic() < deadline:
            time.sleep(0.01)
    except TimeLimitExceeded:
        ENDINGS.append("interrupted")
        raise
    ENDINGS.append("ran to the end")


def test_a_job_over_its_time_limit_is_interrupted_on_the_stub_runtime() -> None:
    ENDINGS.clear()
    with testing.stub_runtime(fail_fast=False) as stub:
        worker = dramatiq.Worker(stub.broker, worker_timeout=20)
        worker.start()
        try:
            message = runaway.send()
            stub.broker.join("default", timeout=JOIN_TIMEOUT_MS)
        finally:
            worker.stop()
        assert ["interrupted"] == ENDINGS
        assert [message.message_id] == [dead.message_id for dead in stub.broker.dead_letters]


def test_booting_again_as_a_test_harness_does_is_harmless(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), testing.stub_runtime() as first:
        first.broker.emit_after("process_boot")  # as the dramatiq command, or a test's fixture, does
    with caplog.at_level(logging.WARNING), testing.stub_runtime() as second:
        second.broker.emit_after("process_boot")
    assert [] == [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert registry.bound() is None
