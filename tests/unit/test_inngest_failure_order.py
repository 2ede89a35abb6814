"""On inngest, a job that fails for good sends its ``on_failure`` callback before it is recorded FAILED.

``join`` on inngest waits until the job history shows no job waiting or running. The
callback's row (PENDING, written when it is sent) must therefore be there by the time
its job's row reads FAILED, as on every provider: the other way round, a join could
see the job end and return before the callback was sent (issue 19, the conformance
test ``test_on_failure_gets_the_message_and_its_exception[inngest]``).

The function's handler runs here on a fake Inngest context, over Dramatiq's stub
broker, with a ledger in the history's place that notes each row in order.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, cast

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Callbacks

from docjobs.brokers.history import JobHistory
from docjobs.brokers.inngest import functions
from docjobs.brokers.inngest.events import MESSAGE_ID_FIELD, OPTIONS_FIELD
from docjobs.brokers.inngest.outcomes import Outcomes
from docjobs.brokers.inngest.recorder import Recorder
from docjobs.registry import JobActor

JOB_ID = "0190c0de-0000-7000-8000-000000000001"
CALLBACK = "unit.failure-order-callback"


class Ledger(dramatiq.Middleware):
    """The rows the history would write, in order: (status, actor)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def after_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        self.rows.append(("PENDING", message.actor_name))

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        self.rows.append(("FAILED" if exception is not None else "COMPLETED", message.actor_name))

    def flush(self) -> None:
        """Rows are noted at once: nothing is pending."""


def _fail(*, x: int) -> None:
    raise ValueError(f"no {x}")


def test_a_job_that_fails_for_good_sends_its_on_failure_callback_before_it_is_recorded_failed() -> None:
    ledger = Ledger()
    broker = StubBroker(middleware=[Callbacks(), ledger])
    dramatiq.actor(lambda message_data, exception_data: None, broker=broker, actor_name=CALLBACK)
    job = JobActor(
        _fail,
        actor_name="unit.failure-order",
        queue_name="default",
        priority=0,
        options={},
        display_name="Failure order",
        version="1.0.0",
    )
    broker.declare_actor(job)
    recorder = Recorder(cast(JobHistory, ledger), broker, logging.getLogger(__name__))
    run = functions._handler(job, 0, recorder, Outcomes(broker), None, None)
    event = SimpleNamespace(
        name=job.actor_name,
        id=JOB_ID,
        ts=None,
        data={"x": 7, MESSAGE_ID_FIELD: JOB_ID, OPTIONS_FIELD: {"on_failure": CALLBACK}},
    )

    with pytest.raises(ValueError, match="no 7"):
        run(SimpleNamespace(event=event, run_id="run-1", attempt=0, step=None))

    assert [("PENDING", CALLBACK), ("FAILED", job.actor_name)] == ledger.rows
    # The callback's message carries the traceback, as a worker's Retries hook sets it before Callbacks.
    (sent,) = broker.queues["default"].queue
    message_data = dramatiq.Message.decode(sent).args[0]
    assert JOB_ID == message_data["message_id"]
    assert "ValueError: no 7" in message_data["options"]["traceback"]
