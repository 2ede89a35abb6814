"""Middleware every docjobs broker carries: send-time checks, retry policy, task rows, job log lines."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import dramatiq
import orjson
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    MiddlewareError,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from docjobs import errors, registry, strictjson, tasks
from docjobs.brokers.heap import FreezeBootHeap

logger = logging.getLogger("docjobs.jobs")


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
        if exception is None:
            return  # a success: nothing to retry (Dramatiq's hook returns here too)
        if isinstance(exception, errors.NON_RETRYABLE):
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


#: The longest job id (``id=``) accepted.
MAX_JOB_ID_CHARS = 255


class PayloadRefused(errors.PayloadError, MiddlewareError):
    """The message cannot be sent as it is.

    A ``PayloadError`` to callers; a ``MiddlewareError`` so the brokers' ``emit_before``
    lets it through rather than logging it and sending the message anyway.
    """


#: A message's kwargs and args as the JSON text a provider writes.
EncodedArguments = tuple[str, str]
#: What ``{"args":...,"kwargs":...}`` adds to the two JSON texts: the limit counts that document.
_ENVELOPE_BYTES = len(b'{"args":,"kwargs":}')


class MessageLimits(dramatiq.Middleware):
    """Refuses, at send, a message that could not be stored and run exactly as sent.

    Every provider enqueues through ``before_enqueue``, plain Dramatiq actors too, so
    this one check holds everywhere: a job id of printable characters (a NUL would
    be cut off, two ids colliding; a newline would forge a log line), a payload that
    is JSON with finite numbers and no NUL (PostgreSQL's ``jsonb`` cannot store one;
    the encoders turn NaN into ``null``), nested at most ``strictjson.MAX_DEPTH``
    levels and at most ``max_payload_bytes`` long.

    Args:
        max_payload_bytes: ``NEXT_PRIVATE_JOBS_MAX_PAYLOAD_BYTES``.

    Raises:
        PayloadRefused: From ``send``/``trigger``, naming the job and the problem.
    """

    def __init__(self, *, max_payload_bytes: int) -> None:
        self.max_payload_bytes = max_payload_bytes

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: Any) -> None:
        if "retries" in message.options:  # a retry: checked when it was first sent
            return
        try:
            check_message(message, self.max_payload_bytes)
            check_payload(broker, message)
        except PayloadRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - fail closed: emit_before would log it and send anyway
            raise PayloadRefused(
                f"{message.actor_name}: the payload cannot be checked: {type(exc).__name__}: {exc}",
                job_id=message.actor_name,
            ) from exc

    def before_enqueue_many(
        self,
        broker: dramatiq.Broker,
        messages: Sequence[dramatiq.Message[Any]],
        delay: Any,
        *,
        encoded: Sequence[EncodedArguments | None],
    ) -> None:
        """The checks of ``before_enqueue`` for a batch, in one pass (the local broker's ``enqueue_many``).

        Args:
            encoded: Each message's kwargs and args as the JSON its row carries: the size
                measured is the size written. ``None``: orjson refused them; that message
                is checked alone, as ``before_enqueue`` checks it.

        Raises:
            PayloadRefused: Naming the job, the payload's index in the batch and the problem;
                the broker then writes nothing of the batch.
        """
        fresh = [(i, m) for i, m in enumerate(messages) if "retries" not in m.options]
        try:
            check_messages([m for _, m in fresh], [encoded[i] for i, _ in fresh], self.max_payload_bytes)
            _check_payloads(broker, [m for _, m in fresh])
        except PayloadRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - fail closed, as before_enqueue does
            job = messages[0].actor_name
            raise PayloadRefused(
                f"{job}: the payload cannot be checked: {type(exc).__name__}: {exc}", job_id=job
            ) from exc


def check_messages(
    messages: Sequence[dramatiq.Message[Any]],
    encoded: Sequence[EncodedArguments | None],
    max_payload_bytes: int,
) -> None:
    """The checks of :func:`check_message` for many messages: one walk of their payloads.

    Raises:
        PayloadRefused: For the first offending message, naming its job and, in a batch
            of several, its index.
    """
    many = len(messages) > 1
    try:
        # A list of the payloads nests each as deep as {"args": ..., "kwargs": ...} does.
        strictjson.check([message.kwargs for message in messages])
        clean = True
    except strictjson.JsonRefused:
        clean = False  # find the first offender, and say why, one message at a time
    for index, (message, texts) in enumerate(zip(messages, encoded, strict=True)):
        where = f"payload {index}: " if many else ""
        if not clean or texts is None or message.args:
            check_message(message, max_payload_bytes, where=where)
            continue
        _check_job_id(message, where)
        size = _utf8_bytes(texts[0]) + _utf8_bytes(texts[1]) + _ENVELOPE_BYTES
        if size > max_payload_bytes:
            raise _too_big(message.actor_name, where, size, max_payload_bytes)


def _utf8_bytes(text: str) -> int:
    # str.isascii() reads a flag: only a non-ASCII text is encoded to be measured.
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _check_payloads(broker: dramatiq.Broker, messages: Sequence[dramatiq.Message[Any]]) -> None:
    """:func:`check_payload` for a batch: the links of a message without options once per actor."""
    links_checked: set[str] = set()
    for message in messages:
        actor = message.actor_name
        if message.options or actor not in links_checked:
            check_payload(broker, message)
            if not message.options:  # its links are its actor's: the same for the batch's others
                links_checked.add(actor)
            continue
        job_actor = broker.actors.get(actor)
        if isinstance(job_actor, registry.JobActor):
            try:
                job_actor.check_message(message)
            except errors.PayloadError as exc:
                raise PayloadRefused(str(exc), job_id=exc.job_id, field=exc.field) from None


def check_payload(broker: dramatiq.Broker, message: dramatiq.Message[Any]) -> None:
    """A job actor's payload check at send (a pipeline step gets its last argument only then).

    Raises:
        PayloadRefused: Naming the job and the first offending field.
    """
    actor = broker.actors.get(message.actor_name)
    try:
        registry.check_links(broker, message)  # callbacks and pipeline steps, whoever sends them
        if isinstance(actor, registry.JobActor):
            actor.check_message(message)
    except errors.PayloadError as exc:
        raise PayloadRefused(str(exc), job_id=exc.job_id, field=exc.field) from None


def check_message(message: dramatiq.Message[Any], max_payload_bytes: int, *, where: str = "") -> None:
    """The checks of :class:`MessageLimits`.

    Args:
        where: Put after the job's name in an error (``payload 3: `` in a batch).

    Raises:
        PayloadRefused: Naming the job and the problem.
    """
    job = message.actor_name
    _check_job_id(message, where)
    payload = {"args": message.args, "kwargs": message.kwargs}
    try:
        strictjson.check(payload)
        # orjson also refuses what UTF-8 cannot encode (a lone surrogate) and depths past its own.
        size = len(orjson.dumps(payload))
    except strictjson.JsonRefused as exc:
        raise PayloadRefused(f"{job}: {where}the payload cannot be sent: {exc}", job_id=job) from None
    except orjson.JSONEncodeError as exc:
        raise PayloadRefused(f"{job}: {where}the payload cannot be sent: {exc}", job_id=job) from None
    if size > max_payload_bytes:
        raise _too_big(job, where, size, max_payload_bytes)


def _check_job_id(message: dramatiq.Message[Any], where: str) -> None:
    job = message.actor_name
    job_id = message.message_id
    if not isinstance(job_id, str) or not 0 < len(job_id) <= MAX_JOB_ID_CHARS:
        reason = f"the job id must have 1 to {MAX_JOB_ID_CHARS} characters"
        raise PayloadRefused(f"{job}: {where}{reason}", job_id=job)
    if not job_id.isprintable():  # controls, separators, lone surrogates
        reason = f"the job id {job_id!r} holds a control or other unprintable character"
        raise PayloadRefused(f"{job}: {where}{reason}", job_id=job)


def _too_big(job: str, where: str, size: int, max_payload_bytes: int) -> PayloadRefused:
    return PayloadRefused(
        f"{job}: {where}the payload is {size} bytes, over the limit of {max_payload_bytes} "
        "(NEXT_PRIVATE_JOBS_MAX_PAYLOAD_BYTES)",
        job_id=job,
    )


class PipelineSteps(Pipelines):
    """Dramatiq's pipelines, looking no further for a message that is no pipeline step.

    Dramatiq's hook imports ``Message`` and looks up the actor on every processed
    message; most name no next step (issue 21: ~5 us a job on no-op jobs).
    """

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if message.options.get("pipe_target") is None:
            return  # no next step: Dramatiq's hook would do nothing either
        super().after_process_message(broker, message, result=result, exception=exception)  # type: ignore[no-untyped-call]


class TaskContext(dramatiq.Middleware):
    """Hands ``run_task`` the broker's task store in the threads that run jobs (see ``tasks.task_store``).

    Each worker thread's context holds it from the thread's start: only jobs run there,
    and ``run_task`` tells a job from other code by the current message, not by this.
    Setting and clearing it around every job cost two hooks a job (issue 21).

    Args:
        store: Where the task rows are kept; ``None`` when the provider keeps none
            (``run_task`` then refuses).
    """

    def __init__(self, store: tasks.TaskRows | None) -> None:
        self.store = store

    def after_worker_thread_boot(self, broker: dramatiq.Broker, thread: Any) -> None:
        tasks.task_store.set(self.store)


class JobLog(dramatiq.Middleware):
    """One log line when a job starts and one when it ends, with structured fields."""

    def __init__(self) -> None:
        # A worker thread runs one message at a time, from before_ to after_process_message.
        self._local = threading.local()

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        if not logger.isEnabledFor(logging.INFO):
            # Neither line is written: build no fields, read no clock (twice per job, issue 21).
            self._local.started = None
            return
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
        if not logger.isEnabledFor(logging.INFO):
            return
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
    max_payload_bytes: int,
    task_store: tasks.TaskRows | None = None,
    guards: Sequence[dramatiq.Middleware] = (),
    extra: Sequence[dramatiq.Middleware] = (),
) -> list[dramatiq.Middleware]:
    """Dramatiq's default stack with docjobs' retry policy, the current message and log lines.

    Args:
        task_store: The rows ``run_task`` keeps (see :class:`TaskContext`).
        guards: Middleware that may skip a message before it runs (the cron guard);
            they come after the retry policy, so a guard that cannot decide gets the
            message retried, and before the log, so a skipped job logs no start.
        extra: Middleware appended at the end.
    """
    return [
        MessageLimits(max_payload_bytes=max_payload_bytes),
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        PipelineSteps(),
        RetryPolicy(
            max_retries=max_retries,
            min_backoff_seconds=min_backoff_seconds,
            max_backoff_seconds=max_backoff_seconds,
        ),
        CurrentMessage(),
        TaskContext(task_store),
        *guards,
        JobLog(),
        FreezeBootHeap(),  # full collections skip a worker's start-up objects (issue 21)
        *extra,
    ]
