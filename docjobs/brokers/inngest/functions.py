"""docjobs' actors as Inngest functions of one app.

Each actor becomes the function ``<job id>`` triggered by the event of the same
name (and, for scheduled jobs, by its cron expression from the scheduler's table).
A run whose queue is paused on the board waits (for ``RESUME_EVENT``) before it
starts. The function validates the event's payload, runs the actor with ``run_task``
mapped to ``step.run`` (a step finished before a failure is memoised by Inngest
and not run again), and turns docjobs' final failures (a bad payload, a job
abandoned) into ``NonRetriableError``. A job's outcome is written to its row
before the call that ends it is answered.

One more function, ``FAILURE_FUNCTION_ID``, takes Inngest's ``inngest/function.failed``
event: a run Inngest gave up on without the app seeing its end (its last calls
never reached the app, or their answers never reached Inngest) is marked FAILED
with Inngest's error, instead of staying PENDING or PROCESSING for ever.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import dramatiq
import inngest
import psycopg
from dramatiq.middleware import CurrentMessage

from docjobs import tasks
from docjobs.brokers.history import JobHistory
from docjobs.brokers.middleware import NON_RETRYABLE
from docjobs.registry import JobActor
from docjobs.scheduler.table import CronTable

logger = logging.getLogger(__name__)

#: Event fields docjobs adds beside the payload.
MESSAGE_ID_FIELD = "messageId"
RUN_AT_FIELD = "runAt"
#: The message option holding Inngest's run id (kept in the job's history, shown on the board).
RUN_ID_OPTION = "inngest_run_id"
#: The event that cancels the run of the job whose message id it carries (the board sends it).
CANCEL_EVENT = "docjobs/job.cancel"
#: The event that ends the delay of the job whose message id it carries (the board sends it).
PROMOTE_EVENT = "docjobs/job.promote"
#: The event that lets the runs held by a resumed queue go on (the board sends it).
RESUME_EVENT = "docjobs/queue.resume"
QUEUE_FIELD = "queue"
#: The shortest wait for an event Inngest accepts.
MIN_WAIT = timedelta(seconds=1)
#: What the log says comes after a failed attempt that Inngest tries again.
RETRIED = "Inngest retries it"
#: How long a run held by a paused queue waits for the resume event before it looks again.
PAUSED_RECHECK = timedelta(minutes=1)
#: How long a function call trusts the paused queues it read (a pause takes this long to bite).
PAUSED_CACHE_SECONDS = 1.0
#: The event of a cron trigger's runs (its data is not the job's payload).
SCHEDULED_EVENT = "inngest/scheduled.timer"
#: Inngest's system event for a run that failed, and the function docjobs takes it with.
FAILED_EVENT = "inngest/function.failed"
FAILURE_FUNCTION_ID = "docjobs.run-failed"
#: Its retries: enough to outlast a database outage (Inngest's backoff grows to hours).
FAILURE_FUNCTION_RETRIES = 10


class PausedCheck(Protocol):
    """Is this queue paused? ``fresh`` asks past any cache."""

    def __call__(self, queue: str, *, fresh: bool = False) -> bool: ...


class PausedQueues:
    """The queues paused on the board, read at most once a second.

    Args:
        read: Reads the paused queues (``JobStore.paused_queues``).
    """

    def __init__(self, read: Callable[[], frozenset[str]]) -> None:
        self.read = read
        self._lock = threading.Lock()
        self._queues: frozenset[str] = frozenset()
        self._read_at = -math.inf

    def __call__(self, queue: str, *, fresh: bool = False) -> bool:
        with self._lock:
            if fresh or time.monotonic() - self._read_at > PAUSED_CACHE_SECONDS:
                try:
                    self._queues = self.read()
                except psycopg.Error as exc:
                    # A database blip must not fail the job (Inngest would spend an attempt):
                    # the last state read stands until the next read succeeds.
                    logger.warning("Could not read the paused queues, using the last read: %s", exc)
                self._read_at = time.monotonic()
            return queue in self._queues


def build_functions(
    client: inngest.Inngest,
    actors: Iterable[JobActor[Any, Any]],
    *,
    cron: CronTable,
    default_retries: int,
    history: JobHistory | None = None,
    broker: dramatiq.Broker | None = None,
    paused: PausedCheck | None = None,
    app_id: str | None = None,
) -> list[inngest.Function[Any]]:
    """One function per actor, with its event trigger, its cron trigger if scheduled, and its retries.

    With ``history`` (and the ``broker`` the actors are declared on), each call
    records the job's start, retry, success or failure in ``background_job``, as
    the worker does on the other providers, and (given the ``app_id`` that
    prefixes the functions' ids in Inngest's events) the failure function records
    the runs Inngest gave up on. With ``paused`` (is this queue paused?), a run of
    a paused queue waits until it is resumed.
    """
    actors = sorted(actors, key=lambda actor: actor.actor_name)
    recorder = _Recorder(history, broker)
    functions = []
    for job in actors:
        triggers: list[inngest.TriggerEvent | inngest.TriggerCron] = [
            inngest.TriggerEvent(event=job.actor_name)
        ]
        schedule = cron.get(job.actor_name)
        if schedule is not None and schedule.enabled:
            zone = cron.timezone.key
            prefix = "" if zone == "UTC" else f"TZ={zone} "  # Inngest's time-zone prefix
            triggers.append(inngest.TriggerCron(cron=f"{prefix}{schedule.expression}"))
        retries = int(job.options.get("max_retries", default_retries))
        functions.append(
            client.create_function(
                fn_id=job.actor_name,
                name=job.display_name,
                trigger=triggers,
                retries=retries,
                cancel=[
                    inngest.Cancel(
                        event=CANCEL_EVENT,
                        if_exp=f"event.data.{MESSAGE_ID_FIELD} == async.data.{MESSAGE_ID_FIELD}",
                    )
                ],
            )(_handler(job, retries, recorder, paused))
        )
    if recorder.history is not None and app_id is not None:
        functions.append(
            client.create_function(
                fn_id=FAILURE_FUNCTION_ID,
                name="Record the runs Inngest gave up on",
                trigger=inngest.TriggerEvent(event=FAILED_EVENT),
                retries=FAILURE_FUNCTION_RETRIES,
            )(_failure_handler({job.actor_name: job for job in actors}, recorder, app_id))
        )
    return functions


def _handler(job: JobActor[Any, Any], retries: int, recorder: _Recorder, paused: PausedCheck | None) -> Any:
    def run(ctx: inngest.ContextSync) -> Any:
        data = dict(ctx.event.data)
        message_id = str(data.pop(MESSAGE_ID_FIELD, None) or ctx.event.id or ctx.run_id)
        run_at = data.pop(RUN_AT_FIELD, None)
        if isinstance(run_at, str):
            _delay(ctx, datetime.fromisoformat(run_at))
        if paused is not None:
            _hold_while_paused(ctx, job.queue_name, paused)
        if ctx.event.name == SCHEDULED_EVENT:
            data = dict(job.firing_payload)  # the schedule's (an app's may have one)
        # Actors may ask for their message (its id, its attempt) as on the other providers.
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=job.queue_name,
            actor_name=job.actor_name,
            args=(),
            kwargs=data,
            options={"retries": ctx.attempt, RUN_ID_OPTION: ctx.run_id},
            message_id=message_id,
        )
        proxy = dramatiq.MessageProxy(message)
        recorder.started(proxy)
        step_token = tasks.inngest_step.set(_Steps(ctx, retries, recorder, proxy))
        message_token = CurrentMessage._MESSAGE.set(message)
        try:
            result = job(**data)
        except NON_RETRYABLE as exc:
            recorder.failed(proxy, exc, final=True)
            raise inngest.NonRetriableError(f"{type(exc).__name__}: {exc}") from exc
        except inngest.NonRetriableError as exc:  # from a step, wrapping docjobs' error
            recorder.failed(proxy, exc.__cause__ or exc, final=True)
            raise
        except inngest.StepError as exc:  # a step out of retries, not caught by the job
            recorder.failed(proxy, _stepped(exc), final=True)
            raise
        except Exception as exc:
            recorder.failed(proxy, exc, final=ctx.attempt >= retries)
            raise
        finally:
            CurrentMessage._MESSAGE.reset(message_token)
            tasks.inngest_step.reset(step_token)
        # Reached only by the call that finishes the function (a new step interrupts).
        recorder.finished(proxy, result)
        return result

    run.__name__ = job.fn.__name__
    return run


def _failure_handler(actors: dict[str, JobActor[Any, Any]], recorder: _Recorder, app_id: str) -> Any:
    def record_failed_run(ctx: inngest.ContextSync) -> None:
        data = ctx.event.data
        function_id = str(data.get("function_id") or "")
        prefix = f"{app_id}-"
        # Inngest sends every app's failures (this function's own too): only docjobs' jobs are recorded.
        job = actors.get(function_id[len(prefix) :]) if function_id.startswith(prefix) else None
        original = data.get("event")
        if job is None or not isinstance(original, dict):
            return
        payload = dict(original.get("data") or {})
        message_id = str(payload.pop(MESSAGE_ID_FIELD, None) or original.get("id") or data.get("run_id"))
        payload.pop(RUN_AT_FIELD, None)
        error = data.get("error")
        if not isinstance(error, dict):
            error = {}
        reason = f"Inngest gave up on the run: {error.get('name') or 'Error'}: {error.get('message') or ''}"
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=job.queue_name,
            actor_name=job.actor_name,
            args=(),
            kwargs={} if original.get("name") == SCHEDULED_EVENT else payload,
            options={RUN_ID_OPTION: data.get("run_id")},
            message_id=message_id,
        )
        recorder.gave_up(message, reason.strip())

    return record_failed_run


def _delay(ctx: inngest.ContextSync, run_at: datetime) -> None:
    """Wait until ``run_at``, or until the board's "run it now" event for this job.

    Inngest waits for an event a whole number of seconds, at least one: a shorter
    delay (counted from the send, so every call of the run takes the same kind of
    step) is a plain sleep.
    """
    sent_ms = ctx.event.ts or int(datetime.now(UTC).timestamp() * 1000)
    if run_at - datetime.fromtimestamp(sent_ms / 1000, UTC) < MIN_WAIT:
        ctx.step.sleep_until("delay", run_at)
        return
    ctx.step.wait_for_event(
        "delay",
        event=PROMOTE_EVENT,
        if_exp=f"event.data.{MESSAGE_ID_FIELD} == async.data.{MESSAGE_ID_FIELD}",
        # Inngest takes whole seconds: the job may start up to a second late.
        timeout=timedelta(seconds=max(math.ceil((run_at - datetime.now(UTC)).total_seconds()), 1)),
    )


def _hold_while_paused(ctx: inngest.ContextSync, queue: str, paused: PausedCheck) -> None:
    """Wait while ``queue`` is paused on the board, before the job starts (or between two steps).

    The state is read on each call, not in a step: a run resumed and paused
    again waits again, under a new step id, and a call that finds the queue
    running passes by the waits it memoised earlier.
    """
    rounds = 0
    resumed = False
    while paused(queue, fresh=resumed):  # after a resume event, not what was read before it
        resumed = None is not ctx.step.wait_for_event(
            f"paused-{rounds}",
            event=RESUME_EVENT,
            if_exp=f"async.data.{QUEUE_FIELD} == {json.dumps(queue)}",
            timeout=PAUSED_RECHECK,
        )
        rounds += 1


class _Steps:
    """``run_task`` as ``step.run``: final failures stay final inside steps; failures are recorded."""

    def __init__(
        self,
        ctx: inngest.ContextSync,
        retries: int,
        recorder: _Recorder,
        proxy: dramatiq.MessageProxy,
    ) -> None:
        self.ctx = ctx
        self.retries = retries
        self.recorder = recorder
        self.proxy = proxy

    def run(self, key: str, fn: Callable[[], Any]) -> Any:
        def guarded() -> Any:
            try:
                return fn()
            except NON_RETRYABLE as exc:
                raise inngest.NonRetriableError(f"{type(exc).__name__}: {exc}") from exc
            except Exception as exc:
                # Inngest retries the step, and after the last attempt hands the job a StepError,
                # which it may catch and go on: only the job's own end is final.
                last = self.ctx.attempt >= self.retries
                self.recorder.failed(self.proxy, exc, then="the job decides" if last else RETRIED)
                raise

        return self.ctx.step.run(key, guarded)


class _Recorder:
    """A function's outcomes as log lines and, with a history, rows of ``background_job``.

    The lines are the worker's (``JobLog``) for a job's end; there is no start line,
    since Inngest calls a function again for each step and a line per call would
    say the job started several times.
    """

    def __init__(self, history: JobHistory | None, broker: dramatiq.Broker | None) -> None:
        # The history's hooks need the broker the actors are declared on.
        self.history = (history, broker) if history is not None and broker is not None else None

    def started(self, proxy: dramatiq.MessageProxy) -> None:
        if self.history is not None:
            history, broker = self.history
            history.before_process_message(broker, proxy)

    def finished(self, proxy: dramatiq.MessageProxy, result: Any) -> None:
        logger.info(
            "Job %s (%s) completed, attempt %d.",
            proxy.message_id,
            proxy.actor_name,
            _attempt(proxy),
            extra=_fields(proxy, "job_completed"),
        )
        if self.history is not None:
            history, broker = self.history
            history.after_process_message(broker, proxy, result=result)
            _written_before_answer(history)

    def gave_up(self, message: dramatiq.Message[Any], reason: str) -> None:
        """The job FAILED with ``reason`` unless it ended already; raises until that is written."""
        logger.info(  # a warning came already if the job itself failed
            "Job %s (%s): %s.",
            message.message_id,
            message.actor_name,
            reason,
            extra={"action": "job_given_up", "message_id": message.message_id, "actor": message.actor_name},
        )
        assert self.history is not None
        history, broker = self.history
        history.record_given_up(broker, message, reason)

    def failed(
        self, proxy: dramatiq.MessageProxy, exc: BaseException, *, final: bool = False, then: str = RETRIED
    ) -> None:
        """FAILED when Inngest will not try again, else PENDING with the error (``then`` says what comes)."""
        logger.log(
            logging.WARNING if final else logging.INFO,
            "Job %s (%s) raised %s on attempt %d%s.",
            proxy.message_id,
            proxy.actor_name,
            type(exc).__name__,
            _attempt(proxy),
            ", no retry left" if final else f"; {then}",
            extra=_fields(proxy, "job_failed_permanently" if final else "job_raised"),
        )
        if self.history is None:
            return
        history, broker = self.history
        trace = traceback.format_exc(limit=30)
        if final:
            proxy.options["traceback"] = trace
            proxy.fail()
            history.after_process_message(broker, proxy, exception=exc)
            _written_before_answer(history)
            return
        retry = proxy.copy(options={"retries": _attempt(proxy), "traceback": trace})
        history.after_enqueue(broker, retry, None)


def _written_before_answer(history: JobHistory) -> None:
    """Write a job's end now: once Inngest has the answer, a killed process must not lose it.

    While the database is away the answer goes anyway (the writer keeps the event):
    holding it would make Inngest run the job again.
    """
    try:
        history.flush()
    except psycopg.Error:
        pass  # said by the history, which keeps the events for its next round


def _stepped(error: inngest.StepError) -> Exception:
    """The job's own error inside a StepError (which Inngest hands back by name and message)."""
    named: type[Exception] = type(error.name or "StepError", (Exception,), {})
    return named(error.message)


def _attempt(proxy: dramatiq.MessageProxy) -> int:
    return int(proxy.options.get("retries", 0)) + 1


def _fields(proxy: dramatiq.MessageProxy, action: str) -> dict[str, Any]:
    return {"action": action, "message_id": proxy.message_id, "actor": proxy.actor_name}
