"""Middleware every docjobs broker carries: the retry policy and job log lines."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from docjobs import errors

logger = logging.getLogger("docjobs.jobs")

#: Failures that another attempt cannot fix: the job fails at once.
NON_RETRYABLE: tuple[type[BaseException], ...] = (
    errors.PayloadError,
    errors.TaskExceededRetries,
    errors.NotRetryable,
)


class RetryPolicy(Retries):
    """Dramatiq's exponential backoff with jitter, plus failures that are never retried.

    Args:
        max_retries: Retries after the first attempt (actors may override).
        min_backoff_seconds: The first retry waits between this and twice this.
        max_backoff_seconds: No retry waits longer.
    """

    def __init__(self, *, max_retries: int, min_backoff_seconds: float, max_backoff_seconds: float) -> None:
        super().__init__(
            max_retries=max_retries,
            min_backoff=max(int(min_backoff_seconds * 1000), 1),
            max_backoff=max(int(max_backoff_seconds * 1000), 1),
        )

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is not None and isinstance(exception, NON_RETRYABLE):
            logger.warning(
                "Job %s (%s) failed without retry: %s",
                message.message_id,
                message.actor_name,
                exception,
                extra={"action": "job_failed_permanently", "message_id": message.message_id},
            )
            message.fail()
            return
        super().after_process_message(  # type: ignore[no-untyped-call]
            broker, message, result=result, exception=exception
        )


class JobLog(dramatiq.Middleware):
    """One log line when a job starts and one when it ends, with structured fields."""

    def __init__(self) -> None:
        # A worker thread runs one message at a time, from before_ to after_process_message.
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        self._local.started = time.perf_counter()
        logger.info(
            "Job %s (%s) started, attempt %d.",
            message.message_id,
            message.actor_name,
            int(message.options.get("retries", 0)) + 1,
            extra=_fields(message, "job_started"),
        )

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        started = getattr(self._local, "started", None)
        elapsed_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        if exception is None:
            logger.info(
                "Job %s (%s) completed in %.1f ms.",
                message.message_id,
                message.actor_name,
                elapsed_ms,
                extra=_fields(message, "job_completed", duration_ms=round(elapsed_ms, 1)),
            )
        else:
            logger.info(
                "Job %s (%s) raised %s after %.1f ms.",
                message.message_id,
                message.actor_name,
                type(exception).__name__,
                elapsed_ms,
                extra=_fields(message, "job_raised", duration_ms=round(elapsed_ms, 1)),
            )


def _fields(message: dramatiq.MessageProxy, action: str, **more: Any) -> dict[str, Any]:
    return {"action": action, "message_id": message.message_id, "actor": message.actor_name, **more}


def default_middleware(
    *,
    max_retries: int,
    min_backoff_seconds: float,
    max_backoff_seconds: float,
    guards: Sequence[dramatiq.Middleware] = (),
    extra: Sequence[dramatiq.Middleware] = (),
) -> list[dramatiq.Middleware]:
    """Dramatiq's default stack with docjobs' retry policy, the current message and log lines.

    Args:
        guards: Middleware that may skip a message before it runs (the cron guard);
            they come after the retry policy, so a guard that cannot decide gets the
            message retried, and before the log, so a skipped job logs no start.
        extra: Middleware appended at the end.
    """
    return [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        RetryPolicy(
            max_retries=max_retries,
            min_backoff_seconds=min_backoff_seconds,
            max_backoff_seconds=max_backoff_seconds,
        ),
        CurrentMessage(),
        *guards,
        JobLog(),
        *extra,
    ]
