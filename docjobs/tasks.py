"""Memoised sub-steps of a job: a retried job skips the steps it already finished.

    def send_signing_email(*, recipient_id: int) -> None:
        run_task("send-signing-email", lambda: mailer.send(...))
        run_task("update-recipient", lambda: mark_sent(recipient_id))

Semantics of the reference service's ``runTask``: the task row is
``task-<sha256(key)>--<job id>``; a COMPLETED task returns its stored JSON result
without running again; a task that failed 3 times fails the job for good
(:class:`~docjobs.errors.TaskExceededRetries`, never retried). Results round-trip
through JSON, so return JSON-native values.

The rows are the running broker's: its ``TaskContext`` middleware
(``brokers/middleware.py``) puts its task store in :data:`task_store` in the threads
that run jobs, so this module reaches for no runtime; it tells a job from other code
by the current message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from dramatiq.middleware import CurrentMessage

from docjobs import errors

T = TypeVar("T")

#: Runs of one task before the job fails for good, as in the reference.
TASK_MAX_RETRIES = 3

#: The Inngest step tools of the function running in this context (inngest provider):
#: there a task is an Inngest step, memoised by Inngest instead of a row.
inngest_step: ContextVar[Any] = ContextVar("docjobs_inngest_step", default=None)


class TaskRows(Protocol):
    """Where the task rows are kept (``db.tasks.TaskStore``)."""

    def get_or_create(self, *, task_id: str, job_id: str, actor: str, name: str) -> dict[str, Any]:
        """A task's ``status``, ``result``, ``retried`` and ``last_error``, creating it on first use."""
        ...

    def complete(self, task_id: str, result_json: str) -> None:
        """Store a task's JSON result."""
        ...

    def record_failure(self, task_id: str, error: str) -> None:
        """Count a failed run of a task and keep its error line."""
        ...


#: The task store of the broker running the job in this context (set by ``TaskContext``);
#: ``None`` outside a job, or when the provider keeps no rows.
task_store: ContextVar[TaskRows | None] = ContextVar("docjobs_task_store", default=None)


def task_id(key: str, job_id: str) -> str:
    """The task row id of ``key`` in job ``job_id``."""
    return f"task-{hashlib.sha256(key.encode('utf-8')).hexdigest()}--{job_id}"


def run_task(key: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` once per job: later attempts of the same job return its stored result.

    Args:
        key: Names the step within the job.
        fn: The step; its result must be JSON-serialisable.

    Returns:
        ``fn()``'s result, or the result stored by an earlier attempt.

    Raises:
        errors.TaskOutsideJob: Not called from a running job.
        errors.TaskExceededRetries: The step already failed 3 times.
        Exception: Whatever ``fn`` raised (the job is then retried).
    """
    step = inngest_step.get()
    if step is not None:
        return step.run(key, fn)  # type: ignore[no-any-return]
    message = CurrentMessage.get_current_message()
    if message is None:
        raise errors.TaskOutsideJob()
    store = task_store.get()
    if store is None:
        raise errors.NotSupportedError("run_task needs a provider with a job store")
    identifier = task_id(key, message.message_id)
    task = store.get_or_create(
        task_id=identifier, job_id=message.message_id, actor=message.actor_name, name=key
    )
    if task["status"] == "COMPLETED":
        result: Any = task["result"]
        return result  # type: ignore[no-any-return]
    if task["retried"] >= TASK_MAX_RETRIES:
        raise errors.TaskExceededRetries(
            f"task {key!r} of job {message.message_id} exceeded its retries; last error: {task['last_error']}"
        )
    try:
        value = fn()
    except Exception as exc:
        store.record_failure(identifier, f"{type(exc).__name__}: {exc}")
        raise
    store.complete(identifier, json.dumps(value))
    return value
