"""The middleware hooks every processed message passes, and what a job still sees (issue 21).

Each hook a worker calls around a job costs a dispatch and a call on every job, however
little it does. These are the ones docjobs' default stack runs per message; the task
context is set once per worker thread rather than around every job.
"""

from __future__ import annotations

from typing import Any, cast

import dramatiq
from dramatiq.brokers.stub import StubBroker

from docjobs import tasks
from docjobs.brokers.middleware import default_middleware

#: A broker's stack as docjobs builds it, with a task store to hand to jobs.
STORE = cast(tasks.TaskRows, object())


def stack() -> list[dramatiq.Middleware]:
    return default_middleware(
        max_retries=1,
        min_backoff_seconds=1,
        max_backoff_seconds=2,
        max_payload_bytes=1024,
        task_store=STORE,
    )


def implementers(middleware: list[dramatiq.Middleware], hook: str) -> list[str]:
    base = getattr(dramatiq.Middleware, hook)
    return [type(m).__name__ for m in middleware if getattr(type(m), hook) is not base]


def test_the_hooks_run_around_every_job() -> None:
    middleware = stack()

    assert implementers(middleware, "before_process_message") == [
        "AgeLimit",
        "TimeLimit",
        "ShutdownNotifications",
        "CurrentMessage",
        "JobLog",
    ]
    assert implementers(middleware, "after_process_message") == [
        "TimeLimit",
        "ShutdownNotifications",
        "Callbacks",
        "PipelineSteps",
        "RetryPolicy",
        "CurrentMessage",
        "JobLog",
    ]


def test_a_job_in_a_worker_thread_sees_the_task_store() -> None:
    broker = StubBroker(middleware=stack())
    seen: list[Any] = []

    @dramatiq.actor(broker=broker)
    def record() -> None:
        seen.append(tasks.task_store.get())

    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        record.send()
        record.send()
        broker.join(record.queue_name, timeout=10_000)  # both acked: both ran
    finally:
        worker.stop()

    assert seen == [STORE, STORE]
    assert tasks.task_store.get() is None  # this (no worker) thread holds none
